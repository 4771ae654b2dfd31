"""provision: declarative, idempotent set-up of OHIF viewers against cloud DICOM archives."""

__version__ = "0.1.0"
__all__ = ["__version__"]
