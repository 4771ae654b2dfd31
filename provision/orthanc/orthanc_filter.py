"""The orthanc-python script of the self-hosted target: every HTTP request to Orthanc goes through `Authorizer`.

This file runs inside Orthanc (orthanc-python 4.0, Debian bookworm), not in provision: `provision orthanc apply`
copies it, with `sharetoken.py` beside it, into the target directory, and the rendered `orthanc.json` names it
as `PythonScript`. It is AGPL territory (orthanc-python is AGPL-3.0): its source is published here.

Orthanc's own `AuthenticationEnabled` is false because Orthanc checks HTTP Basic *before* the filter and answers
401 to every request carrying a Bearer token, so the filter never saw share tokens. This script does all the
authentication: the admin by HTTP Basic (its password hash is in the configuration), share tokens by signature.

The filter contract observed with Orthanc 1.10.1 and orthanc-python 4.0:
`filter(uri, method=int, ip=str, headers={lower-case names}, get={...})`; `uri` is the percent-decoded path with
the DICOMweb root; `get` is present for GET only, its values are not decoded and a repeated key keeps only its
last value; returning False makes Orthanc answer 403; anything but a bool, or an exception, makes a 500.

Anything wrong at start-up (no signing key in the environment, PyJWT missing) raises, and Orthanc stops: a
deployment never runs without the filter.
"""

from __future__ import annotations

import json
import os
from typing import Any

import orthanc
import sharetoken

SECTION = "ProvisionShares"
_METHODS = {
    orthanc.HttpMethod.GET: "GET",
    orthanc.HttpMethod.POST: "POST",
    orthanc.HttpMethod.PUT: "PUT",
    orthanc.HttpMethod.DELETE: "DELETE",
}


def _authorizer() -> tuple[sharetoken.Authorizer, bool]:
    config = json.loads(orthanc.GetConfiguration()).get(SECTION)
    if not isinstance(config, dict):
        raise RuntimeError(f"provision share filter: the configuration has no {SECTION} section")
    key_name = str(config.get("SigningKeyEnv", ""))
    key = os.environ.get(key_name, "").encode("utf-8")
    if len(key) < sharetoken.MIN_KEY_BYTES:
        raise RuntimeError(f"provision share filter: the environment variable {key_name} must hold the share "
                           f"signing key (at least {sharetoken.MIN_KEY_BYTES} bytes)")
    revoked = sharetoken.RevocationList(str(config["RevocationFile"]))
    tokens = sharetoken.TokenVerifier(key, revoked)
    admins = sharetoken.AdminCheck(dict(config.get("Admins", {})))
    authorizer = sharetoken.Authorizer(admins=admins, tokens=tokens, root=str(config.get("Root", "/dicom-web/")))
    return authorizer, bool(config.get("LogRefusals", True))


AUTHORIZER, LOG_REFUSALS = _authorizer()


def share_filter(uri: str, **request: Any) -> bool:
    method = _METHODS.get(request.get("method"), "OTHER")
    try:
        decision = AUTHORIZER.authorize(method, uri, request.get("get") or {}, request.get("headers") or {})
    except Exception as error:  # fail closed with a 403 rather than Orthanc's 500
        orthanc.LogError(f"provision share filter: {type(error).__name__}: {error}")
        return False
    if not decision.granted and LOG_REFUSALS:
        orthanc.LogWarning(f"provision share filter refused {method} {uri}: {decision.reason}")
    return bool(decision.granted)


def validate_token(output: Any, uri: str, **request: Any) -> None:
    """The Advanced Authorization plugin's `POST /tokens/validate`, for a plugin pointed at this Orthanc."""
    if request.get("method") != "POST":
        output.SendMethodNotAllowed("POST")
        return
    try:
        body = json.loads(request.get("body") or b"{}")
    except ValueError:
        body = {}
    answer = AUTHORIZER.validate(body if isinstance(body, dict) else {})
    output.AnswerBuffer(json.dumps(answer), "application/json")


orthanc.RegisterIncomingHttpRequestFilter(share_filter)
orthanc.RegisterRestCallback(sharetoken.Authorizer.CONTRACT_PATH, validate_token)
orthanc.LogWarning(f"provision share filter active (PyJWT {sharetoken.jwt.__version__})")
