"""The DICOM data plane's routes: `{url}/dicom/{workspace}-{dicom}/{v1|v2}/...`, each service's `serviceUrl`.

A request finds its service (provisioned through ARM), gets CORS (`cors.py`), authentication and authorization
(`auth.py`); extended query tags and their operations are answered here (`query_tags.py`); DICOMweb is
forwarded to the service's Orthanc (`provision/sandbox/orthanc_pool.py`) with QIDO checked and URLs rewritten
(`qido.py`). Where Orthanc answers otherwise than Azure, the answer is Azure's: an empty search or an offset
past the end is 204 with no body; STOW answers 202 when some instances failed and 409 when all did; `DELETE`
of a study, series or instance is supported (204).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ... import orthanc_pool
from .. import arm_state
from ..health_data_services import DICOM_TYPE
from . import query_tags
from .auth import authenticate, authorize
from .cors import preflight_headers, response_cors_headers
from .errors import DicomError
from .qido import FORWARDED_HOST, check_qido, orthanc_query, qido_target, rewrite_urls

if TYPE_CHECKING:
    from provision.dicom import Orthanc

    from ...tokens import TokenSigner
    from ...world import World

API_VERSIONS = ("v1", "v2")
STORAGE_DIR = "dicom"
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authenticate",
    "proxy-authorization", "content-length", "content-encoding", "server", "date",
})
_UID = r"[0-9.]{1,64}"
_DELETE_PATH = re.compile(rf"^studies/({_UID})(?:/series/({_UID})(?:/instances/({_UID}))?)?/?$")


# --- which service ------------------------------------------------------------------------------------------

def find_service(world: World, label: str) -> dict[str, Any] | None:
    """The DICOM service whose URL label is `{workspace}-{dicom}` and that has finished provisioning."""
    wanted = label.lower()
    for record in arm_state.records(world).values():
        if record.get("type", "").lower() != DICOM_TYPE.lower() or not record.get("_ready"):
            continue
        if f"{record['workspace']}-{record['name']}".lower() == wanted:
            return record
    return None


def storage_key(record: Mapping[str, Any]) -> str:
    """One storage area per DICOM service *incarnation*: a service deleted and created again starts empty."""
    created = (record.get("systemData") or {}).get("createdAt", "")
    digest = hashlib.sha256(f"{record['id'].lower()}|{created}".encode()).hexdigest()[:10]
    return f"{record['workspace']}-{record['name']}-{digest}"


def _live_storage_keys(world: World) -> set[str]:
    """The storage keys of the DICOM services that exist (deleted ones lose their storage)."""
    return {storage_key(r) for r in arm_state.records(world).values()
            if r.get("type", "").lower() == DICOM_TYPE.lower()}


def shutdown(world: World) -> None:
    """Stop the Orthancs serving this world's DICOM services (call when the sandbox stops)."""
    orthanc_pool.shutdown(world, STORAGE_DIR)


# --- the endpoint ---------------------------------------------------------------------------------------------

def routes(world: World, signer: TokenSigner) -> list[BaseRoute]:
    pool = orthanc_pool.pool_for(world, STORAGE_DIR, lambda: _live_storage_keys(world))

    async def endpoint(request: Request) -> Response:
        label = request.path_params["service"]
        record = find_service(world, label)
        if record is None:
            # A real serviceUrl that does not exist has no DNS name; the closest an emulator gets is a 404.
            return Response(b"", status_code=404)
        cors = record["properties"].get("corsConfiguration") or {}
        origin = request.headers.get("origin")
        if request.method == "OPTIONS" and origin and request.headers.get("access-control-request-method"):
            allowed = preflight_headers(cors, origin, request.headers["access-control-request-method"],
                                        request.headers.get("access-control-request-headers"))
            return Response(b"", status_code=204, headers=allowed or {})
        extra = response_cors_headers(cors, origin)
        try:
            response = await handle(request, record, label)
        except DicomError as error:
            response = error.response()
        response.headers.update(extra)
        return response

    async def handle(request: Request, record: dict[str, Any], label: str) -> Response:
        version = request.path_params["version"]
        if version not in API_VERSIONS:
            raise DicomError(400, f"The API version '{version}' is not supported.")  # wording unverified
        base = str(request.base_url).rstrip("/")
        service_root = f"{base}/dicom/{label}/{version}"
        claims = authenticate(world, signer, request, base)
        rest = request.path_params.get("rest", "").strip("/")
        parts = [p for p in rest.split("/") if p]
        authorize(world, record["id"], claims, request.method, parts)
        if parts and parts[0].lower() == "extendedquerytags":
            return await query_tags.handle(world, request, record, parts[1:], service_root)
        if parts and parts[0].lower() == "operations" and len(parts) == 2:
            return query_tags.operation(world, record, parts[1], service_root)
        if not parts or parts[0].lower() not in ("studies", "series", "instances"):
            raise DicomError(404, None)
        orthanc = await pool.orthanc(storage_key(record))
        if request.method == "DELETE":
            return await delete(orthanc, rest)
        target = qido_target(parts) if request.method == "GET" else None
        if target is not None:
            check_qido(target, request.query_params.multi_items(), query_tags.ready_tags(record))
        return await forward(orthanc, request, rest, service_root, qido=target is not None)

    async def forward(orthanc: Orthanc, request: Request, rest: str, service_root: str, *, qido: bool) -> Response:
        headers = {"Authorization": orthanc.authorization, "Forwarded": f"host={FORWARDED_HOST};proto=https"}
        for name in ("accept", "content-type"):
            if name in request.headers:
                headers[name] = request.headers[name]
        body = await request.body() if request.method in ("POST", "PUT") else None
        query = orthanc_query(request.query_params.multi_items())
        url = f"{orthanc.dicomweb_url}/{rest}" + (f"?{query}" if query else "")
        upstream = await pool.client.request(request.method, url, headers=headers, content=body)
        content = upstream.content
        content_type = upstream.headers.get("content-type", "")
        if "json" in content_type or "xml" in content_type:
            content = rewrite_urls(content, service_root)
        status = upstream.status_code
        if qido and status == 200 and content.strip() in (b"", b"[]"):
            return Response(b"", status_code=204)
        if request.method == "POST" and status == 200 and "json" in content_type:
            status = _stow_status(content)
        out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        return Response(content, status_code=status, headers=out_headers)

    async def delete(orthanc: Orthanc, rest: str) -> Response:
        match = _DELETE_PATH.match(rest)
        if match is None:
            raise DicomError(405, None)
        uid = next(u for u in reversed(match.groups()) if u)
        auth = {"Authorization": orthanc.authorization}
        found = await pool.client.post(f"{orthanc.url}/tools/lookup", content=uid, headers=auth)
        levels = {"studies": "Study", "series": "Series", "instances": "Instance"}
        wanted = levels["instances" if match.group(3) else "series" if match.group(2) else "studies"]
        items = [i for i in found.json() if i.get("Type") == wanted] if found.status_code == 200 else []
        if not items:
            raise DicomError(404, None)
        for item in items:
            await pool.client.delete(f"{orthanc.url}{item['Path']}", headers=auth)
        return Response(b"", status_code=204)

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return [
        Route("/dicom/{service}/{version}", endpoint, methods=methods),
        Route("/dicom/{service}/{version}/{rest:path}", endpoint, methods=methods),
    ]


def _stow_status(content: bytes) -> int:
    """Azure's STOW status from the response body: 200 all stored, 202 some failed, 409 none stored."""
    try:
        doc = json.loads(content)
    except ValueError:
        return 200
    if not isinstance(doc, dict):
        return 200
    failed = (doc.get("00081198") or {}).get("Value") or []
    stored = (doc.get("00081199") or {}).get("Value") or []
    if failed and not stored:
        return 409
    return 202 if failed else 200
