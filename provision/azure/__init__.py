"""The Azure target: Entra ID app registration, Health Data Services workspace and DICOM service with CORS, role
assignments, and the OHIF configuration that points at them.

`open_session(plan, options)` is the whole public surface the CLI needs; cloud SDKs are imported only when it runs.
"""

from provision.azure.session import AzureSession, open_session

__all__ = ["AzureSession", "open_session"]
