"""A DICOM store's DICOMweb (`{api}/projects/P/locations/L/datasets/D/dicomStores/S/dicomWeb`) as an `Endpoint`.

- credentials: the session's google-auth credentials (ADC, or the sandbox's), refreshed at their token
  endpoint from the upload's threads five minutes before the token expires;
- STOW answers read Google's way: ReferencedSOPSequence stored (a second STOW of identical bytes is answered
  200 and stored again as the same instance); an instance whose UIDs are taken by different bytes fails with
  409, FailureReason 272 and the private FailureDetail (0009,0097) saying "already exists" - counted as
  already present (the store keeps what it has); any other reason is a failure;
- QIDO pages of 1000 (Google's limits are not published in a form verified here; 1000 is accepted for
  instances).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.dicom.dicomweb import (
    BearerToken,
    Endpoint,
    StowAnswer,
    StowOutcome,
    account_for,
    failure_text,
    referenced,
    trusted_session,
)

if TYPE_CHECKING:
    from provision.gcp.client import HealthcareClient

QIDO_PAGE = 1000
PROCESSING_FAILURE = 272
FAILURE_DETAIL = 0x00090097
ACCESS_HINT = ("the identity the tool runs as needs roles/healthcare.dicomEditor (upload) or dicomViewer (search) "
               "on the store or its dataset: add it to gcp.access and apply")


def classify(answer: StowAnswer, sent: Sequence[str]) -> StowOutcome:
    """Google's STOW answer, instance by instance (see the module docstring)."""
    outcome = StowOutcome()
    for item in referenced(answer.dataset, "ReferencedSOPSequence"):
        outcome.stored.add(str(item.get("ReferencedSOPInstanceUID", "")))
    for item in referenced(answer.dataset, "FailedSOPSequence"):
        uid = str(item.get("ReferencedSOPInstanceUID", ""))
        detail = str(item[FAILURE_DETAIL].value) if FAILURE_DETAIL in item else ""
        if item.get("FailureReason") == PROCESSING_FAILURE and "already exists" in detail.lower():
            outcome.present.add(uid)
        else:
            outcome.failed[uid] = failure_text(item.get("FailureReason")) + (f": {detail}" if detail else "")
    return account_for(outcome, answer, sent)


def google_token(credentials: Any, ca_bundles: Sequence[Path]) -> Any:
    """A `TokenSource` refreshing google-auth `credentials` at their token endpoint (trusting `ca_bundles`)."""
    from google.auth.transport.requests import Request

    lock = threading.Lock()
    http = trusted_session(ca_bundles)

    def fetch() -> tuple[str, float]:
        with lock:
            credentials.refresh(Request(session=http))
            expiry = credentials.expiry
            expires = expiry.replace(tzinfo=UTC).timestamp() if expiry is not None else 0.0
            return str(credentials.token), expires

    return fetch


def endpoint_for(client: HealthcareClient, ca: Sequence[Path], store_name: str) -> Endpoint:
    """The endpoint of the store `projects/P/locations/L/datasets/D/dicomStores/S` (the Healthcare client's
    credentials and API base; `ca`: the CA bundles to trust besides the system's)."""
    store_id = store_name.rsplit("/", 1)[-1]
    return Endpoint(name=f"Google DICOM store {store_id}", base_url=f"{client.api_base}/{store_name}/dicomWeb",
                    auth=BearerToken(google_token(client.credentials, ca)), ca_bundles=tuple(ca),
                    qido_page_size=QIDO_PAGE, classify=classify, access_hint=ACCESS_HINT)


__all__ = ["ACCESS_HINT", "classify", "endpoint_for", "google_token"]
