"""The DICOM service's data plane as the upload, search, change feed and seeding see it: an `Endpoint`.

- base URL `{serviceUrl}/v2`, found through ARM (the plan's DICOM service);
- a bearer token for the DICOM audience from the session's credential (azure-identity, async), fetched from the
  upload's worker threads on the session's event loop and refreshed five minutes before it expires;
- QIDO pages of 200 (Azure refuses a `limit` above 200);
- STOW answers read Azure's way (conformance statement v2, "Store Response Status Codes" and "Store Failure
  Reason Codes"): 200 all stored, 202 some failed or stored with a warning, 409 none stored; an instance in
  ReferencedSOPSequence is stored (a WarningReason is only a warning), FailureReason 45070 means the same
  Study/Series/SOP Instance UIDs are stored already (counted as present), any other reason is a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.dicom.dicomweb import (
    BearerToken,
    Endpoint,
    StowAnswer,
    StowOutcome,
    account_for,
    failure_text,
    referenced,
)

QIDO_PAGE = 200
ALREADY_STORED = 45070
ACCESS_HINT = ("the identity the tool runs as needs a DICOM data role on the service (DICOM Data Owner to upload, "
               "DICOM Data Reader to search): add it to azure.access and apply; a new role assignment can take a "
               "few minutes to apply in Azure")


def classify(answer: StowAnswer, sent: Sequence[str]) -> StowOutcome:
    """Azure's STOW answer, instance by instance (see the module docstring)."""
    outcome = StowOutcome()
    for item in referenced(answer.dataset, "ReferencedSOPSequence"):
        outcome.stored.add(str(item.get("ReferencedSOPInstanceUID", "")))
    for item in referenced(answer.dataset, "FailedSOPSequence"):
        uid = str(item.get("ReferencedSOPInstanceUID", ""))
        reason = item.get("FailureReason")
        if reason == ALREADY_STORED:
            outcome.present.add(uid)
        else:
            outcome.failed[uid] = failure_text(reason)
    return account_for(outcome, answer, sent)


@dataclass(frozen=True)
class DicomAccess:
    """How the session reaches its DICOM services' data plane: the credential, the audience, the CAs."""

    credential: Any
    audience: str
    ca_bundles: tuple[Path, ...]

    def endpoint(self, service_url: str, dicom_name: str) -> Endpoint:
        """The endpoint of one DICOM service. Call it on the session's event loop: tokens are fetched there."""
        loop = asyncio.get_running_loop()
        scope = f"{self.audience.rstrip('/')}/.default"

        def token() -> tuple[str, float]:
            fetched = asyncio.run_coroutine_threadsafe(self.credential.get_token(scope), loop).result(timeout=120)
            return str(fetched.token), float(fetched.expires_on)

        return Endpoint(name=f"Azure DICOM service {dicom_name}", base_url=f"{service_url.rstrip('/')}/v2",
                        auth=BearerToken(token), ca_bundles=self.ca_bundles, qido_page_size=QIDO_PAGE,
                        classify=classify, access_hint=ACCESS_HINT)


__all__ = ["ACCESS_HINT", "DicomAccess", "classify"]
