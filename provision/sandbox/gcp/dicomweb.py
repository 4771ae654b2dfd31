"""Each DICOM store's DICOMweb root, `/v1/projects/P/locations/L/datasets/D/dicomStores/S/dicomWeb/...`.

Backed by one real Orthanc per store (the sandbox's shared `orthanc_pool`, storage under `STATE/gcp-dicom/`,
one area per store incarnation: a store deleted and created again starts empty), in front of which the sandbox
does what the Healthcare API does:

- **authentication**: a Google access token of the sandbox (`oauth.py`, `accounts.py`), else 401
  UNAUTHENTICATED; a token without the `cloud-healthcare` or `cloud-platform` scope is 403 "Request had
  insufficient authentication scopes.";
- **authorization by IAM**: reading (GET: QIDO, WADO) needs `healthcare.dicomStores.dicomWebRead`, STOW
  `...dicomWebWrite`, DELETE `...dicomWebDelete`, granted by a binding on the store or its dataset whose role
  includes it (`roles/healthcare.dicomViewer`: read; `dicomEditor`, `dicomStoreAdmin`, `healthcare.admin`:
  all) to a member covering the caller (`user:`, `serviceAccount:`, `group:`, `domain:`, `allUsers`,
  `allAuthenticatedUsers`); conditional bindings grant nothing here; the ADC account owns the project and may
  do anything. Otherwise 403 PERMISSION_DENIED "Permission '...' denied on resource '...' (or it may not
  exist).", checked before the store's existence as Google does; a permitted caller of a missing store gets 404;
- **STOW of an instance the store holds**: identical bytes are answered as stored again (200, nothing
  changes); different bytes under the same UIDs fail with 409, FailureReason 272 and the private
  FailureDetail (0009,0097) "already exists" (Google's documentation; the attribute's exact text is
  unverified); a part that is not DICOM fails with 0xC000; 200 / 202 / 409 as in PS3.18;
- **CORS**: the Healthcare API answers browsers from any origin: preflights are 200 with the origin, methods
  and requested headers allowed, and every answer carries `Access-Control-Allow-Origin: <origin>`.

QIDO goes to Orthanc with `includefield` lists split; unlike Azure's emulation, Google's matching rules are not
emulated: a value that needs percent-encoding does not match (Orthanc does not decode it), wildcards are
Orthanc's. DELETE is not emulated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from provision.dicom.synthetic import multipart_related

from .. import orthanc_pool
from ..dicomweb import FORWARDED_HOST, multipart_boundary, orthanc_query, read_uids, rewrite_urls, split_parts
from .accounts import member_matches
from .healthcare import RpcError, authenticate, state_of
from .oauth import ADC_ACCOUNT, CLOUD_PLATFORM

if TYPE_CHECKING:
    from provision.dicom import Orthanc

    from ..tokens import TokenSigner
    from ..world import World

STORAGE_DIR = "gcp-dicom"
HEALTHCARE_SCOPE = "https://www.googleapis.com/auth/cloud-healthcare"
READ = "healthcare.dicomStores.dicomWebRead"
WRITE = "healthcare.dicomStores.dicomWebWrite"
DELETE = "healthcare.dicomStores.dicomWebDelete"
_ALL = frozenset({READ, WRITE, DELETE})
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "roles/healthcare.dicomViewer": frozenset({READ}),
    "roles/healthcare.dicomEditor": _ALL,
    "roles/healthcare.dicomStoreAdmin": _ALL,
    "roles/healthcare.admin": _ALL,
    "roles/owner": _ALL,
    "roles/editor": _ALL,
    "roles/viewer": frozenset({READ}),
}
PROCESSING_FAILURE = 272
CANNOT_UNDERSTAND = 0xC000
FAILURE_DETAIL = "00090097"
_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
                         "server", "date"})
_STORE_PREFIX = "/v1/projects/{project}/locations/{location}/datasets/{dataset}/dicomStores/{store}/dicomWeb"


def storage_key(record: Mapping[str, Any]) -> str:
    """One storage area per store incarnation (its name and creation time)."""
    digest = hashlib.sha256(f"{record['name']}|{record.get('_created', '')}".encode()).hexdigest()[:16]
    return f"store-{digest}"


def permissions_of(world: World, email: str, store_name: str) -> set[str]:
    """What the account may do with the store's DICOMweb, from the store's and its dataset's IAM policies."""
    if email.lower() == ADC_ACCOUNT:
        return set(_ALL)
    policies = state_of(world)["policies"]
    dataset_name = store_name.split("/dicomStores/", 1)[0]
    granted: set[str] = set()
    for resource in (store_name, dataset_name):
        for binding in (policies.get(resource) or {}).get("bindings") or []:
            if binding.get("condition"):
                continue
            if any(member_matches(member, email) for member in binding.get("members") or []):
                granted |= ROLE_PERMISSIONS.get(binding["role"], frozenset())
    return granted


def cors_headers(request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}


def failed_item(uids: Mapping[str, str | None] | None, reason: int, detail: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if uids and uids.get("SOPClassUID"):
        item["00081150"] = {"vr": "UI", "Value": [uids["SOPClassUID"]]}
    if uids and uids.get("SOPInstanceUID"):
        item["00081155"] = {"vr": "UI", "Value": [uids["SOPInstanceUID"]]}
    item["00081197"] = {"vr": "US", "Value": [reason]}
    if detail:
        item[FAILURE_DETAIL] = {"vr": "LO", "Value": [detail]}
    return item


def referenced_item(uids: Mapping[str, str | None], root: str) -> dict[str, Any]:
    url = f"{root}/studies/{uids['StudyInstanceUID']}/series/{uids['SeriesInstanceUID']}/instances/" \
          f"{uids['SOPInstanceUID']}"
    return {"00081150": {"vr": "UI", "Value": [uids["SOPClassUID"]]},
            "00081155": {"vr": "UI", "Value": [uids["SOPInstanceUID"]]}, "00081190": {"vr": "UR", "Value": [url]}}


def stow_status(referenced: Iterable[Any], failed: Iterable[Any]) -> int:
    stored, refused = bool(list(referenced)), bool(list(failed))
    return 409 if refused and not stored else 202 if refused else 200


def routes(world: World, signer: TokenSigner) -> list[BaseRoute]:
    pool = orthanc_pool.pool_for(world, STORAGE_DIR, lambda: {storage_key(r) for r in
                                                               state_of(world)["dicomStores"].values()})

    async def endpoint(request: Request) -> Response:
        import httpx

        extra = cors_headers(request)
        if request.method == "OPTIONS" and request.headers.get("access-control-request-method"):
            return Response(b"", status_code=200, headers={
                **extra, "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, PATCH, DELETE",
                "Access-Control-Allow-Headers": request.headers.get("access-control-request-headers", ""),
                "Access-Control-Max-Age": "3600"})
        try:
            response = await handle(request)
        except RpcError as error:
            response = error.response()
        except httpx.TransportError:  # Orthanc stopped (the sandbox is stopping) or crashed
            response = RpcError(503, "UNAVAILABLE", "The service is currently unavailable.").response()
        response.headers.update(extra)
        return response

    async def handle(request: Request) -> Response:
        p = request.path_params
        store_name = (f"projects/{p['project']}/locations/{p['location']}/datasets/{p['dataset']}/"
                      f"dicomStores/{p['store']}")
        claims = authenticate(signer, request)
        scopes = str(claims.get("scope", "")).split()
        if HEALTHCARE_SCOPE not in scopes and CLOUD_PLATFORM not in scopes:
            raise RpcError(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.")
        needed = READ if request.method in ("GET", "HEAD") else DELETE if request.method == "DELETE" else WRITE
        if needed not in permissions_of(world, str(claims.get("email", "")), store_name):
            raise RpcError(403, "PERMISSION_DENIED",
                           f"Permission '{needed}' denied on resource '{store_name}' (or it may not exist).")
        record = state_of(world)["dicomStores"].get(store_name)
        if record is None:
            raise RpcError(404, "NOT_FOUND", f"DICOM store {store_name} not found")
        root = f"{str(request.base_url).rstrip('/')}/v1/{store_name}/dicomWeb"
        orthanc = await pool.orthanc(storage_key(record))
        rest = p.get("rest", "").strip("/")
        if request.method == "POST" and rest.split("/")[0] == "studies":
            return await store(orthanc, request, root)
        return await forward(orthanc, request, rest, root)

    async def forward(orthanc: Orthanc, request: Request, rest: str, root: str) -> Response:
        headers = {"Authorization": orthanc.authorization, "Forwarded": f"host={FORWARDED_HOST};proto=https"}
        for name in ("accept", "content-type"):
            if name in request.headers:
                headers[name] = request.headers[name]
        body = await request.body() if request.method in ("POST", "PUT") else None
        query = orthanc_query(request.query_params.multi_items())
        url = f"{orthanc.dicomweb_url}/{rest}" + (f"?{query}" if query else "")
        upstream = await pool.client.request(request.method, url, headers=headers, content=body)
        content = upstream.content
        if "json" in upstream.headers.get("content-type", "") or "xml" in upstream.headers.get("content-type", ""):
            content = rewrite_urls(content, root)
        out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        return Response(content, status_code=upstream.status_code, headers=out)

    async def stored_md5(orthanc: Orthanc, sop_uid: str) -> str | None:
        """The MD5 of the stored file of this SOP Instance UID, or None when the store does not hold it."""
        auth = {"Authorization": orthanc.authorization}
        found = await pool.client.post(f"{orthanc.url}/tools/lookup", content=sop_uid, headers=auth)
        for item in found.json() if found.status_code == 200 else []:
            if item.get("Type") == "Instance":
                md5 = await pool.client.get(f"{orthanc.url}/instances/{item['ID']}/attachments/dicom/md5",
                                            headers=auth)
                return md5.text.strip().strip('"') if md5.status_code == 200 else ""
        return None

    async def store(orthanc: Orthanc, request: Request, root: str) -> Response:
        boundary = multipart_boundary(request.headers.get("content-type", ""))
        if boundary is None:
            raise RpcError(400, "INVALID_ARGUMENT", "Content-Type must be multipart/related with a boundary.")
        referenced: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        forward_parts: list[tuple[bytes, dict[str, str | None]]] = []
        for data in split_parts(boundary, await request.body()):
            uids = read_uids(data, _UIDS)
            if uids is None or not all(uids.values()):
                failed.append(failed_item(uids, CANNOT_UNDERSTAND))
                continue
            held = await stored_md5(orthanc, str(uids["SOPInstanceUID"]))
            if held is None:
                forward_parts.append((data, uids))
            elif held == hashlib.md5(data).hexdigest():
                referenced.append(referenced_item(uids, root))
            else:
                failed.append(failed_item(uids, PROCESSING_FAILURE, "an instance with this SOP Instance UID "
                                          "already exists with different content"))
        if forward_parts:
            body, content_type = multipart_related([data for data, _ in forward_parts])
            upstream = await pool.client.post(f"{orthanc.dicomweb_url}/studies", content=body, headers={
                "Authorization": orthanc.authorization, "Content-Type": content_type,
                "Accept": "application/dicom+json", "Forwarded": f"host={FORWARDED_HOST};proto=https"})
            try:
                doc = json.loads(upstream.content) if upstream.content else {}
            except ValueError:
                doc = {}
            stored = {str(((i.get("00081155") or {}).get("Value") or [""])[0])
                      for i in ((doc or {}).get("00081199") or {}).get("Value") or []}
            for _data, uids in forward_parts:
                if uids["SOPInstanceUID"] in stored:
                    referenced.append(referenced_item(uids, root))
                else:
                    failed.append(failed_item(uids, PROCESSING_FAILURE))
        document: dict[str, Any] = {}
        if failed:
            document["00081198"] = {"vr": "SQ", "Value": failed}
        if referenced:
            document["00081199"] = {"vr": "SQ", "Value": referenced}
        return Response(json.dumps(document).encode(), status_code=stow_status(referenced, failed),
                        media_type="application/dicom+json")

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return [Route(_STORE_PREFIX, endpoint, methods=methods),
            Route(_STORE_PREFIX + "/{rest:path}", endpoint, methods=methods)]


def shutdown(world: World) -> None:
    """Stop the Orthancs behind the DICOM stores."""
    orthanc_pool.shutdown(world, STORAGE_DIR)


__all__ = ["ROLE_PERMISSIONS", "permissions_of", "routes", "shutdown", "storage_key"]
