"""What the emulated DICOMweb services (Azure's DICOM service, Google's DICOM stores) share in front of Orthanc.

- `FORWARDED_HOST` and `rewrite_urls`: Orthanc is told (RFC 7239 `Forwarded`) it is reached at a host that
  cannot exist, and every URL it writes with that host is replaced by the service's public root;
- `orthanc_query`: a client's query string as Orthanc needs it;
- `split_parts` and `read_uids`: a STOW-RS body's parts, and each part's identifiers read from its header
  (never its pixels), so a service can answer per instance before Orthanc sees anything.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlencode

#: the host Orthanc is told it is reached by (RFC 7239 `Forwarded`), replaced by the service URL in bodies
FORWARDED_HOST = "orthanc.sandbox.invalid"
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def rewrite_urls(body: bytes, public_root: str, dicomweb_root: str = "/dicom-web") -> bytes:
    """Orthanc's URLs (built from the `Forwarded` host) -> the service's public DICOMweb root (pure)."""
    for scheme in ("https", "http"):
        body = body.replace(f"{scheme}://{FORWARDED_HOST}{dicomweb_root}".encode(), public_root.encode())
    return body


def orthanc_query(params: Iterable[tuple[str, str]]) -> str:
    """The query string for Orthanc: `includefield=a,b` becomes `includefield=a&includefield=b` (the DICOM
    standard, Azure and Google accept a comma-separated list; the DICOMweb plugin 1.7 answers it with "Unknown
    DICOM tag" and leaves the attributes out)."""
    items: list[tuple[str, str]] = []
    for key, value in params:
        if key.lower() == "includefield":
            items.extend((key, v.strip()) for v in value.split(",") if v.strip())
        else:
            items.append((key, value))
    return urlencode(items)


def multipart_boundary(content_type: str) -> str | None:
    found = _BOUNDARY.search(content_type)
    return found.group(1) if found is not None else None


def split_parts(boundary: str, body: bytes) -> list[bytes]:
    """The parts of a `multipart/related` body (headers dropped; a missing closing delimiter is tolerated)."""
    delimiter = b"--" + boundary.encode("latin-1")
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):  # the closing delimiter
            break
        chunk = chunk.removeprefix(b"\r\n")
        _headers, separator, content = chunk.partition(b"\r\n\r\n")
        if separator:
            parts.append(content.removesuffix(b"\r\n"))
    return parts


def read_uids(data: bytes, keywords: Sequence[str]) -> dict[str, str | None] | None:
    """The `keywords` of a Part 10 file (None for an element that is absent, "" for one without a value), or
    None when the bytes are not DICOM."""
    import pydicom

    try:
        dataset = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=list(keywords))
    except Exception:  # pydicom raises many kinds (InvalidDicomError, struct.error, ...) for what is not DICOM
        return None
    return {k: (str(dataset.get(k) or "").strip() if k in dataset else None) for k in keywords}


__all__ = ["FORWARDED_HOST", "multipart_boundary", "orthanc_query", "read_uids", "rewrite_urls", "split_parts"]
