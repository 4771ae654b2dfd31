"""The DICOM data plane's routes: `{url}/dicom/{workspace}-{dicom}/{v1|v2}/...`, each service's `serviceUrl`.

A request finds its service (provisioned through ARM), gets CORS (`cors.py`), authentication and authorization
(`auth.py`); extended query tags and their operations are answered here (`query_tags.py`), and so is the
change feed (`changefeed.py`); DICOMweb goes to the service's Orthanc (`provision/sandbox/orthanc_pool.py`)
with URLs rewritten (`qido.py`). Where Orthanc answers otherwise than Azure, the answer is Azure's: STOW checks
every part itself and answers per instance (`stow.py`); QIDO matches the Azure way (`matching.py`), an empty
search or an offset past the end is 204 with no body; `DELETE` of a study, series or instance is supported
(204) and recorded in the change feed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from provision.dicom.synthetic import multipart_related

from ... import orthanc_pool
from ...dicomweb import FORWARDED_HOST, orthanc_query, rewrite_urls
from ...routing import json_response
from .. import arm_state
from ..health_data_services import DICOM_TYPE
from . import changefeed, query_tags, stow
from .auth import authenticate, authorize
from .cors import preflight_headers, response_cors_headers
from .errors import DicomError
from .matching import finish, plan_search
from .qido import TAG_VR, check_qido, qido_target, tag_of

if TYPE_CHECKING:
    from provision.dicom import Orthanc

    from ...tokens import TokenSigner
    from ...world import World

API_VERSIONS = ("v1", "v2")
DICOM_JSON = "application/dicom+json; charset=utf-8"
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
    #: instance keys being stored by a request that has not been answered yet, by storage key
    in_flight: dict[str, set[str]] = {}
    journals = changefeed.Journals()

    def feed_of(record: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """The service's change feed, and its storage directory (where its journal is)."""
        storage = pool.root / storage_key(record)
        return journals.feed(storage), storage

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
        first = parts[0].lower() if parts else ""
        if first == "extendedquerytags":
            return await query_tags.handle(world, request, record, parts[1:], service_root)
        if first == "operations" and len(parts) == 2:
            return query_tags.operation(world, record, parts[1], service_root)
        if first == "changefeed" and request.method == "GET" and len(parts) <= 2:
            return await change_feed(request, record, version, parts[1:], service_root)
        if first not in ("studies", "series", "instances"):
            raise DicomError(404, None)
        orthanc = await pool.orthanc(storage_key(record))
        if request.method == "DELETE":
            return await delete(orthanc, record, rest)
        if request.method == "POST" and first == "studies" and len(parts) <= 2:
            return await store(orthanc, request, record, parts[1] if len(parts) == 2 else None, service_root)
        target = qido_target(parts) if request.method == "GET" else None
        if target is not None:
            return await search(orthanc, request, record, rest, target, service_root)
        return await forward(orthanc, request, rest, service_root)

    async def forward(orthanc: Orthanc, request: Request, rest: str, service_root: str) -> Response:
        """WADO-RS and anything else: Orthanc's answer, with its URLs turned into the service's."""
        body = await request.body() if request.method in ("POST", "PUT") else None
        upstream = await orthanc_request(orthanc, request.method, rest, request.headers.get("accept"),
                                         orthanc_query(request.query_params.multi_items()), body,
                                         request.headers.get("content-type"))
        content = upstream.content
        if "json" in upstream.headers.get("content-type", "") or "xml" in upstream.headers.get("content-type", ""):
            content = rewrite_urls(content, service_root)
        out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        return Response(content, status_code=upstream.status_code, headers=out_headers)

    async def orthanc_request(orthanc: Orthanc, method: str, rest: str, accept: str | None, query: str,
                              body: bytes | None, content_type: str | None) -> httpx.Response:
        headers = {"Authorization": orthanc.authorization, "Forwarded": f"host={FORWARDED_HOST};proto=https"}
        if accept:
            headers["accept"] = accept
        if content_type:
            headers["content-type"] = content_type
        url = f"{orthanc.dicomweb_url}/{rest}" + (f"?{query}" if query else "")
        try:
            return await pool.client.request(method, url, headers=headers, content=body)
        except httpx.TransportError:  # Orthanc stopped (the sandbox is stopping) or crashed
            raise DicomError(503, "The service is unavailable or busy. Please try again later.") from None

    async def search(orthanc: Orthanc, request: Request, record: dict[str, Any], rest: str, target: str,
                     service_root: str) -> Response:
        params = request.query_params.multi_items()
        ready = query_tags.ready_tags(record)
        check_qido(target, params, ready)
        vrs = {**TAG_VR, **{tag: entry["vr"] for tag, entry in (record.get(query_tags.TAGS_KEY) or {}).items()}}
        planned = plan_search(params, tag_of, vrs)
        upstream = await orthanc_request(orthanc, "GET", rest, "application/dicom+json", planned.orthanc_query(),
                                         None, None)
        if upstream.status_code != 200:
            return Response(upstream.content, status_code=upstream.status_code,
                            media_type=upstream.headers.get("content-type"))
        items = finish(planned, upstream.json() if upstream.content.strip() else [])
        if not items:
            return Response(b"", status_code=204)
        return Response(rewrite_urls(json.dumps(items).encode(), service_root), status_code=200,
                        media_type=DICOM_JSON)

    async def store(orthanc: Orthanc, request: Request, record: dict[str, Any], study: str | None,
                    service_root: str) -> Response:
        parts = [stow.inspect(data) for data in stow.split_parts(request.headers.get("content-type", ""),
                                                                 await request.body())]
        if not parts:
            return Response(b"", status_code=204)
        feed, storage = feed_of(record)
        storing = in_flight.setdefault(storage_key(record), set())
        sorted_parts = stow.triage(parts, stored=feed["current"], storing=storing, study_in_path=study)
        keys = {part.key for part in sorted_parts.forward}
        storing.update(keys)
        try:
            referenced: list[dict[str, Any]] = []
            failed = list(sorted_parts.failed)
            if sorted_parts.forward:
                body, content_type = multipart_related([part.data for part in sorted_parts.forward])
                upstream = await orthanc_request(orthanc, "POST", "studies", "application/dicom+json", "", body,
                                                 content_type)
                referenced, orthanc_failed = stow.orthanc_outcome(upstream.status_code, upstream.content,
                                                                  sorted_parts.forward)
                failed += orthanc_failed
                stored = {str(((item.get("00081155") or {}).get("Value") or [""])[0]) for item in referenced}
                journals.append(storage, changefeed.record_created(feed, [
                    (p.uids["StudyInstanceUID"], p.uids["SeriesInstanceUID"], p.uids["SOPInstanceUID"])
                    for p in sorted_parts.forward if p.uids["SOPInstanceUID"] in stored], world.now()))
        finally:
            storing.difference_update(keys)
        status, content = stow.answer(referenced, failed, f"{service_root}/studies/{study}" if study else None)
        return Response(rewrite_urls(content, service_root), status_code=status, media_type=DICOM_JSON)

    async def delete(orthanc: Orthanc, record: dict[str, Any], rest: str) -> Response:
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
        feed, storage = feed_of(record)
        journals.append(storage, changefeed.record_deleted(feed, "/".join(u for u in match.groups() if u),
                                                           world.now()))
        return Response(b"", status_code=204)

    async def change_feed(request: Request, record: dict[str, Any], version: str, rest: list[str],
                          service_root: str) -> Response:
        feed, _storage = feed_of(record)
        params = {k.lower(): v for k, v in request.query_params.items()}
        if rest and rest[0].lower() != "latest":
            raise DicomError(404, None)
        if rest:
            entry = changefeed.latest(feed)
            if entry is None:
                return Response(b"", status_code=204)
            with_metadata = changefeed.select(feed, version, {"includemetadata": params.get("includemetadata",
                                                                                              "true")})[1]
            entries = [entry]
        else:
            entries, with_metadata = changefeed.select(feed, version, params)
        metadata = await instance_metadata(record, entries, service_root) if with_metadata else {}
        bodies = [changefeed.rendered(feed, e, metadata.get(changefeed.instance_key(e[3], e[4], e[5])),
                                      with_metadata) for e in entries]
        return json_response(bodies[0] if rest else bodies)

    async def instance_metadata(record: dict[str, Any], entries: list[Any],
                                service_root: str) -> dict[str, dict[str, Any]]:
        """The current DICOM JSON of the entries' instances that exist (one metadata request per study)."""
        feed, _storage = feed_of(record)
        studies = {e[3] for e in entries if changefeed.state_of(feed, e) != "deleted"}
        orthanc = await pool.orthanc(storage_key(record)) if studies else None
        found: dict[str, dict[str, Any]] = {}
        for study in studies:
            assert orthanc is not None
            upstream = await orthanc_request(orthanc, "GET", f"studies/{study}/metadata", "application/dicom+json",
                                             "", None, None)
            if upstream.status_code != 200:
                continue
            for item in json.loads(rewrite_urls(upstream.content, service_root)):
                key = changefeed.instance_key(study, _first(item, "0020000E"), _first(item, "00080018"))
                found[key] = item
        return found

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return [
        Route("/dicom/{service}/{version}", endpoint, methods=methods),
        Route("/dicom/{service}/{version}/{rest:path}", endpoint, methods=methods),
    ]


def _first(item: dict[str, Any], tag: str) -> str:
    return str(((item.get(tag) or {}).get("Value") or [""])[0])
