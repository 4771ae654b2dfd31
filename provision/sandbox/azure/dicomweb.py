"""The DICOM data plane: each DICOM service's `serviceUrl` answers DICOMweb the way Azure's DICOM service does.

`{url}/dicom/{workspace}-{dicom}/v2/...` (and `/v1/...`) is forwarded to a real Orthanc with the DICOMweb
plugin, one Orthanc and one storage area per DICOM service, started on the first request. In front of
Orthanc this module does what the Azure service does and Orthanc does not:

- **authentication**: a bearer token of the sandbox's Entra ID for the DICOM audience
  (`https://dicom.healthcareapis.azure.com`, with or without the trailing slash) in the sandbox tenant, else 401
  with a `WWW-Authenticate` challenge naming the authority and resource;
- **authorization** from the role assignments in the world: a principal (the token's `oid`, or a group it is a
  member of) needs an assignment at the service or an enclosing scope whose role's `dataActions` cover the
  request: read (GET/HEAD), write (STOW), delete (DELETE), manage extended query tags. DICOM Data Owner has
  `.../dicomservices/resources/*`, DICOM Data Reader only `.../resources/read`; none gives 403;
- **CORS**: exactly the service's `corsConfiguration`, with ASP.NET Core's semantics (the service is ASP.NET
  Core): a preflight from a listed origin (or with `*`) whose method and headers are allowed gets
  `Access-Control-Allow-*` headers; any other preflight gets 204 without them, so the browser blocks the call.
  Actual responses, errors included, carry `Access-Control-Allow-Origin` only for allowed origins;
- **URLs**: `RetrieveURL`/`BulkDataURI` point at the service URL (`{serviceUrl}/v2/...`), never at Orthanc;
- **Azure's answers** where Orthanc differs: an empty search or an offset past the end is 204 with no body;
  `limit` must be 1-200; searching on an attribute that is neither in the conformance statement's searchable
  list nor a ready extended query tag is 400; STOW answers 202 when some instances failed and 409 when all did;
  `DELETE` of a study, series or instance is supported (204);
- **extended query tags** (`/extendedquerytags`, `/operations/{id}`): add (202 with an operation that
  completes after `Config.lro_seconds`), list, get, update `queryStatus`, delete; kept in the DICOM
  service's record in the world, so they survive a restart and vanish with the service.

Facts not confirmed against a live service are marked "unverified".
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import json
import re
import shutil
import uuid
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..clock import iso
from ..tokens import TokenError, bearer_token
from . import arm_state, directory
from .authorization import BUILTIN_ROLES
from .authorization import _covers as covers  # one definition of 'this scope includes that resource'
from .health_data_services import DICOM_AUDIENCES, DICOM_TYPE

if TYPE_CHECKING:
    from provision.orthanc import Orthanc

    from ..tokens import TokenSigner
    from ..world import World

API_VERSIONS = ("v1", "v2")
DATA_ACTION_PREFIX = "Microsoft.HealthcareApis/workspaces/dicomservices/resources/"
READ, WRITE, DELETE, MANAGE_TAGS = "read", "write", "delete", "extendedQueryTags/write"
#: the host Orthanc is told it is reached by (RFC 7239 `Forwarded`), replaced by the service URL in bodies
FORWARDED_HOST = "orthanc.sandbox.invalid"
STORAGE_DIR = "dicom"
TAGS_KEY = "_extendedQueryTags"
OPERATIONS_KEY = "_dataOperations"
MAX_QUERY_TAGS = 128
QIDO_LIMIT_MAX = 200
# ASP.NET Core's CorsConstants.SimpleRequestHeaders: allowed in a preflight whatever the policy says.
SIMPLE_REQUEST_HEADERS = frozenset({"origin", "accept", "accept-language", "content-language"})
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authenticate",
    "proxy-authorization", "content-length", "content-encoding", "server", "date",
})

# --- attributes ---------------------------------------------------------------------------------------------

#: keyword -> (tag, VR) for the attributes the service can search on and a few common extended query tags.
#: (The sandbox carries no full DICOM dictionary; other standard tags are accepted by hex path with a VR.)
KEYWORDS: dict[str, tuple[str, str]] = {
    "StudyInstanceUID": ("0020000D", "UI"), "PatientName": ("00100010", "PN"), "PatientID": ("00100020", "LO"),
    "PatientBirthDate": ("00100030", "DA"), "AccessionNumber": ("00080050", "SH"),
    "ReferringPhysicianName": ("00080090", "PN"), "StudyDate": ("00080020", "DA"),
    "StudyDescription": ("00081030", "LO"), "ModalitiesInStudy": ("00080061", "CS"),
    "SeriesInstanceUID": ("0020000E", "UI"), "Modality": ("00080060", "CS"),
    "PerformedProcedureStepStartDate": ("00400244", "DA"), "ManufacturerModelName": ("00081090", "LO"),
    "SOPInstanceUID": ("00080018", "UI"), "PatientSex": ("00100040", "CS"), "PatientAge": ("00101010", "AS"),
    "Manufacturer": ("00080070", "LO"), "InstitutionName": ("00080080", "LO"), "StationName": ("00081010", "SH"),
    "BodyPartExamined": ("00180015", "CS"), "ProtocolName": ("00181030", "LO"),
    "SeriesDescription": ("0008103E", "LO"), "StudyID": ("00200010", "SH"), "SeriesNumber": ("00200011", "IS"),
    "InstanceNumber": ("00200013", "IS"), "SOPClassUID": ("00080016", "UI"), "StudyTime": ("00080030", "TM"),
    "SeriesDate": ("00080021", "DA"), "Laterality": ("00200060", "CS"), "PatientWeight": ("00101030", "DS"),
}
_TAG_VR = {tag: vr for tag, vr in KEYWORDS.values()}
_STUDY_ATTRS = ("StudyInstanceUID", "PatientName", "PatientID", "PatientBirthDate", "AccessionNumber",
                "ReferringPhysicianName", "StudyDate", "StudyDescription", "ModalitiesInStudy")
_SERIES_ATTRS = ("SeriesInstanceUID", "Modality", "PerformedProcedureStepStartDate", "ManufacturerModelName")
#: searchable attributes per QIDO target (conformance statement, "Searchable Attributes")
SEARCHABLE: dict[str, frozenset[str]] = {
    name: frozenset(KEYWORDS[k][0] for k in keys)
    for name, keys in {
        "studies": _STUDY_ATTRS,
        "series": (*_STUDY_ATTRS, *_SERIES_ATTRS),
        "instances": (*_STUDY_ATTRS, *_SERIES_ATTRS, "SOPInstanceUID"),
        "study-series": (*_SERIES_ATTRS, "SeriesInstanceUID"),
        "study-instances": (*_SERIES_ATTRS, "SOPInstanceUID"),
        "series-instances": ("SOPInstanceUID",),
    }.items()
}
_QIDO_CONTROL = frozenset({"includefield", "limit", "offset", "fuzzymatching"})
QUERY_TAG_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "PN", "SH", "SL", "SS",
                           "TM", "UI", "UL", "US"})
QUERY_TAG_LEVELS = {"study": "Study", "series": "Series", "instance": "Instance"}


def tag_of(path: str) -> str | None:
    """`00100020` or `PatientID` (any case) -> `00100020`; None when neither."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}", path):
        return path.upper()
    lowered = path.lower()
    return next((tag for keyword, (tag, _vr) in KEYWORDS.items() if keyword.lower() == lowered), None)


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


# --- authorization --------------------------------------------------------------------------------------------

def principal_ids(world: World, object_id: str) -> set[str]:
    """The principal and the groups it belongs to (groups list members as ids under `members`)."""
    oid = object_id.lower()
    ids = {oid}
    for group in directory.collection(world, "groups").values():
        members = {str(m).lower() for m in group.get("members", []) or []}
        if oid in members:
            ids.add(str(group["id"]).lower())
    return ids


def granted_data_actions(world: World, resource_id: str, object_id: str) -> list[str]:
    """Data actions (patterns) the principal holds on the resource through role assignments."""
    who = principal_ids(world, object_id)
    patterns: list[str] = []
    for assignment in arm_state.role_assignments(world).values():
        if assignment["principalId"].lower() not in who or not covers(assignment["scope"], resource_id):
            continue
        role = BUILTIN_ROLES.get(assignment["roleDefinition"].lower())
        for permission in (role or {}).get("permissions", []):
            patterns.extend(permission.get("dataActions", []))
    return patterns


def allows(patterns: Iterable[str], action: str) -> bool:
    wanted = (DATA_ACTION_PREFIX + action).lower()
    return any(fnmatch.fnmatchcase(wanted, p.lower()) for p in patterns)


# --- CORS -----------------------------------------------------------------------------------------------------

def _listed(values: Iterable[str], value: str, *, casefold: bool = True) -> bool:
    items = list(values)
    if "*" in items:
        return True
    return value.lower() in {v.lower() for v in items} if casefold else value in items


def origin_allowed(cors: Mapping[str, Any], origin: str) -> bool:
    return bool(origin) and _listed(cors.get("origins") or [], origin)


def _allow_origin_value(cors: Mapping[str, Any], origin: str) -> str:
    # AllowAnyOrigin answers "*" unless credentials are allowed (then the origin is echoed, as ASP.NET does).
    if "*" in (cors.get("origins") or []) and not cors.get("allowCredentials"):
        return "*"
    return origin


def preflight_headers(
    cors: Mapping[str, Any], origin: str, request_method: str, request_headers: str | None
) -> dict[str, str] | None:
    """The CORS headers of a preflight answer, or None when the policy refuses it (pure)."""
    if not origin_allowed(cors, origin):
        return None
    if not _listed(cors.get("methods") or [], request_method, casefold=False):
        return None
    requested = [h.strip() for h in (request_headers or "").split(",") if h.strip()]
    allowed_headers = cors.get("headers") or []
    if "*" not in allowed_headers:
        permitted = {h.lower() for h in allowed_headers} | SIMPLE_REQUEST_HEADERS
        if any(h.lower() not in permitted for h in requested):
            return None
    headers = {
        "Access-Control-Allow-Origin": _allow_origin_value(cors, origin),
        "Access-Control-Allow-Methods": request_method,
    }
    if requested:
        headers["Access-Control-Allow-Headers"] = ",".join(requested)
    if cors.get("allowCredentials"):
        headers["Access-Control-Allow-Credentials"] = "true"
    if cors.get("maxAge") is not None:
        headers["Access-Control-Max-Age"] = str(cors["maxAge"])
    if headers["Access-Control-Allow-Origin"] != "*":
        headers["Vary"] = "Origin"
    return headers


def response_cors_headers(cors: Mapping[str, Any], origin: str | None) -> dict[str, str]:
    """CORS headers of an actual (non-preflight) response (pure)."""
    if not origin or not origin_allowed(cors, origin):
        return {}
    headers = {"Access-Control-Allow-Origin": _allow_origin_value(cors, origin)}
    if cors.get("allowCredentials"):
        headers["Access-Control-Allow-Credentials"] = "true"
    if headers["Access-Control-Allow-Origin"] != "*":
        headers["Vary"] = "Origin"
    return headers


# --- rewriting ------------------------------------------------------------------------------------------------

def rewrite_urls(body: bytes, public_root: str, dicomweb_root: str = "/dicom-web") -> bytes:
    """Orthanc's URLs (built from the `Forwarded` host) -> the service's `{serviceUrl}/v2` (pure)."""
    for scheme in ("https", "http"):
        body = body.replace(f"{scheme}://{FORWARDED_HOST}{dicomweb_root}".encode(), public_root.encode())
    return body


# --- Orthanc per service ---------------------------------------------------------------------------------------

class OrthancPool:
    """Starts one Orthanc per DICOM service on first use and stops them all on `close()`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._running: dict[str, Orthanc] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=5.0))
        return self._client

    async def orthanc(self, world: World, record: Mapping[str, Any]) -> Orthanc:
        key = storage_key(record)
        running = self._running.get(key)
        if running is not None and running.alive():
            return running
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            running = self._running.get(key)
            if running is not None and running.alive():
                return running
            from provision.orthanc.process import spawn_orthanc, wait_previous

            storage = self.root / key
            await asyncio.to_thread(self._collect_garbage, world)
            await asyncio.to_thread(wait_previous, storage)
            # Spawned from the event loop's thread: with PR_SET_PDEATHSIG it stops when the sandbox does.
            orthanc = spawn_orthanc(storage, name=key)
            await orthanc.wait_ready_async()
            self._running[key] = orthanc
            return orthanc

    def _collect_garbage(self, world: World) -> None:
        """Remove the storage of DICOM services that no longer exist (deleted through ARM)."""
        if not self.root.is_dir():
            return
        live = {storage_key(r) for r in arm_state.records(world).values()
                if r.get("type", "").lower() == DICOM_TYPE.lower()}
        for child in self.root.iterdir():
            if child.is_dir() and child.name not in live and child.name not in self._running:
                shutil.rmtree(child, ignore_errors=True)

    def running(self) -> dict[str, Orthanc]:
        return dict(self._running)

    def close(self, timeout: float = 10.0) -> None:
        """Stop every Orthanc (SIGTERM to all first, so the ~3.5 s graceful stops overlap)."""
        running = list(self._running.values())
        self._running.clear()
        for orthanc in running:
            orthanc.terminate()
        for orthanc in running:
            orthanc.stop(timeout)
        self._client = None  # bound to the sandbox's event loop, which is gone by now


_POOLS: weakref.WeakKeyDictionary[World, OrthancPool] = weakref.WeakKeyDictionary()


def pool_for(world: World) -> OrthancPool:
    pool = _POOLS.get(world)
    if pool is None:
        pool = _POOLS[world] = OrthancPool(Path(world.state_dir) / STORAGE_DIR)
    return pool


def shutdown(world: World) -> None:
    """Stop the Orthancs serving this world's DICOM services (call when the sandbox stops)."""
    pool = _POOLS.pop(world, None)
    if pool is not None:
        pool.close()


# --- errors ---------------------------------------------------------------------------------------------------

class DicomError(Exception):
    def __init__(self, status: int, message: str | None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message or "")
        self.status = status
        self.message = message
        self.headers = headers or {}

    def response(self) -> Response:
        if self.message is None:
            return Response(b"", status_code=self.status, headers=self.headers)
        body = json.dumps({"message": self.message})
        return Response(body.encode(), status_code=self.status, headers=self.headers,
                        media_type="application/json; charset=utf-8")


def _challenge(base: str, tenant_id: str, reason: str) -> DicomError:
    # The challenge shape follows Azure's resource servers (unverified for DICOM).
    error = "" if reason == "missing" else ', error="invalid_token"'
    return DicomError(401, None, {
        "WWW-Authenticate": f'Bearer authorization_uri="{base}/{tenant_id}", '
                            f'resource_id="{DICOM_AUDIENCES[0]}", realm="{DICOM_AUDIENCES[0]}"{error}',
    })


# --- extended query tags --------------------------------------------------------------------------------------

def _tag_body(entry: Mapping[str, Any], service_root: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "path": entry["path"],
        "vr": entry["vr"],
        "level": entry["level"],
        "status": entry["status"],
        "queryStatus": entry["queryStatus"],
    }
    if entry.get("privateCreator"):
        body["privateCreator"] = entry["privateCreator"]
    if entry["status"] == "Adding" and entry.get("operation"):
        body["operation"] = {"id": entry["operation"], "href": f"{service_root}/operations/{entry['operation']}"}
    return body


def validate_query_tag(item: Any, existing: Mapping[str, Any]) -> dict[str, Any]:
    """One element of an add-tags request body, normalised; raises DicomError 400/409 (pure)."""
    if not isinstance(item, dict):
        raise DicomError(400, "The extended query tag entry is not a JSON object.")
    path = item.get("path")
    if not isinstance(path, str) or not path:
        raise DicomError(400, "The field 'path' in the extended query tag entry is required.")
    tag = tag_of(path)
    if tag is None:
        raise DicomError(400, f"The tag path '{path}' is invalid; use 8 hex digits (e.g. 00081090) or a keyword.")
    private = int(tag[:4], 16) % 2 == 1
    vr = item.get("vr")
    if vr is None:
        if private:
            raise DicomError(400, f"The VR of private tag '{path}' is required.")
        vr = _TAG_VR.get(tag)
        if vr is None:
            raise DicomError(400, f"The sandbox does not know the VR of tag '{path}'; send 'vr' with it.")
    if not isinstance(vr, str) or vr.upper() not in QUERY_TAG_VRS:
        raise DicomError(400, f"The VR '{vr}' of tag '{path}' is not supported for extended query tags.")
    level = item.get("level")
    if not isinstance(level, str) or level.lower() not in QUERY_TAG_LEVELS:
        raise DicomError(400, f"The level '{level}' of tag '{path}' is invalid; use Study, Series or Instance.")
    creator = item.get("privateCreator")
    if private and not creator:
        raise DicomError(400, f"The private creator of private tag '{path}' is required.")
    if not private and creator:
        raise DicomError(400, f"The private creator is only allowed for private tags, not '{path}'.")
    if tag in existing or tag in SEARCHABLE["instances"]:
        raise DicomError(409, f"The extended query tag '{path}' has already been added or is already supported.")
    entry = {"path": tag, "vr": vr.upper(), "level": QUERY_TAG_LEVELS[level.lower()], "status": "Adding",
             "queryStatus": "Enabled"}
    if creator:
        entry["privateCreator"] = str(creator)
    return entry


# --- the endpoint ---------------------------------------------------------------------------------------------

_UID = r"[0-9.]{1,64}"
_DELETE_PATH = re.compile(rf"^studies/({_UID})(?:/series/({_UID})(?:/instances/({_UID}))?)?/?$")


def _qido_target(parts: list[str]) -> str | None:
    """Which QIDO search a GET path is (None: not a search)."""
    shapes = {
        ("studies",): "studies", ("series",): "series", ("instances",): "instances",
        ("studies", "*", "series"): "study-series", ("studies", "*", "instances"): "study-instances",
        ("studies", "*", "series", "*", "instances"): "series-instances",
    }
    key = tuple("*" if i % 2 else p.lower() for i, p in enumerate(parts))
    return shapes.get(key)


def routes(world: World, signer: TokenSigner) -> list[BaseRoute]:
    pool = pool_for(world)
    audiences = tuple(DICOM_AUDIENCES)

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
        tenant = world.identity.tenant_id
        try:
            claims = signer.verify(bearer_token(request.headers.get("authorization")), audiences=audiences,
                                   tenant_id=tenant)
        except TokenError as exc:
            raise _challenge(base, tenant, exc.reason) from None
        rest = request.path_params.get("rest", "").strip("/")
        parts = [p for p in rest.split("/") if p]
        action = _action(request.method, parts)
        patterns = granted_data_actions(world, record["id"], str(claims.get("oid", "")))
        if not allows(patterns, action):
            raise DicomError(403, "Authorization failed.")  # body unverified
        if parts and parts[0].lower() == "extendedquerytags":
            return await query_tags(request, record, parts[1:], service_root)
        if parts and parts[0].lower() == "operations" and len(parts) == 2:
            return operation(record, parts[1], service_root)
        if not parts or parts[0].lower() not in ("studies", "series", "instances"):
            raise DicomError(404, None)
        orthanc = await pool.orthanc(world, record)
        if request.method == "DELETE":
            return await delete(orthanc, rest)
        target = _qido_target(parts) if request.method == "GET" else None
        if target is not None:
            check_qido(record, target, request.query_params.multi_items())
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

    def check_qido(record: Mapping[str, Any], target: str, params: Iterable[tuple[str, str]]) -> None:
        ready = {t for t, e in (record.get(TAGS_KEY) or {}).items()
                 if e["status"] == "Ready" and e["queryStatus"] == "Enabled"}
        for key, value in params:
            lowered = key.lower()
            if lowered == "limit":
                if not value.isdigit() or not 1 <= int(value) <= QIDO_LIMIT_MAX:
                    raise DicomError(400, f"The limit value '{value}' is invalid; it must be between 1 and "
                                          f"{QIDO_LIMIT_MAX}.")  # wording unverified
            elif lowered == "offset":
                if not value.isdigit():
                    raise DicomError(400, f"The offset value '{value}' is invalid.")
            elif lowered not in _QIDO_CONTROL:
                tag = tag_of(key)
                if tag is None or (tag not in SEARCHABLE[target] and tag not in ready):
                    raise DicomError(400, f"The query tag '{key}' is not supported.")  # wording unverified

    async def query_tags(request: Request, record: dict[str, Any], parts: list[str], root: str) -> Response:
        tags: dict[str, dict[str, Any]] = record.setdefault(TAGS_KEY, {})
        settle_operations(record)
        if not parts:
            if request.method == "GET":
                return _json([_tag_body(e, root) for e in tags.values()])
            if request.method == "POST":
                try:
                    items = json.loads(await request.body() or b"null")
                except ValueError:
                    raise DicomError(400, "The request body is not valid JSON.") from None
                if not isinstance(items, list) or not items:
                    raise DicomError(400, "The request body must be a non-empty array of extended query tags.")
                entries: dict[str, dict[str, Any]] = {}
                for item in items:
                    added = validate_query_tag(item, {**tags, **entries})
                    entries[added["path"]] = added
                if len(tags) + len(entries) > MAX_QUERY_TAGS:
                    raise DicomError(400, f"At most {MAX_QUERY_TAGS} extended query tags can be added.")
                op_id = uuid.uuid4().hex
                for added in entries.values():
                    added["operation"] = op_id
                tags.update(entries)
                record.setdefault(OPERATIONS_KEY, {})[op_id] = {
                    "id": op_id, "type": "reindex", "created": world.now(),
                    "end": world.now() + world.config.lro_seconds, "tags": list(entries),
                }
                world.mark_dirty()
                return _json({"id": op_id, "href": f"{root}/operations/{op_id}"}, 202)
            raise DicomError(405, None)
        tag = tag_of(parts[0])
        if tag is None:
            raise DicomError(400, f"The tag path '{parts[0]}' is invalid.")
        entry = tags.get(tag)
        if entry is None:
            raise DicomError(404, f"The specified extended query tag with tag path {parts[0]} cannot be found.")
        if len(parts) == 2 and parts[1].lower() == "errors" and request.method == "GET":
            return _json([])
        if len(parts) != 1:
            raise DicomError(404, None)
        if request.method == "GET":
            return _json(_tag_body(entry, root))
        if request.method == "DELETE":
            del tags[tag]
            world.mark_dirty()
            return Response(b"", status_code=204)
        if request.method == "PATCH":
            try:
                body = json.loads(await request.body() or b"null")
            except ValueError:
                raise DicomError(400, "The request body is not valid JSON.") from None
            status = body.get("queryStatus") if isinstance(body, dict) else None
            if not isinstance(status, str) or status.lower() not in ("enabled", "disabled") or len(body) != 1:
                raise DicomError(400, "The request body must set 'queryStatus' to Enabled or Disabled.")
            if entry["status"] != "Ready":
                raise DicomError(409, f"The extended query tag '{tag}' is not ready yet.")  # unverified
            entry["queryStatus"] = status.capitalize()
            world.mark_dirty()
            return _json(_tag_body(entry, root))
        raise DicomError(405, None)

    def settle_operations(record: dict[str, Any]) -> None:
        now = world.now()
        tags = record.get(TAGS_KEY) or {}
        for op in (record.get(OPERATIONS_KEY) or {}).values():
            if op.get("done") or op["end"] > now:
                continue
            op["done"] = True
            for tag in op["tags"]:
                if tag in tags and tags[tag]["status"] == "Adding":
                    tags[tag]["status"] = "Ready"
            world.mark_dirty()

    def operation(record: dict[str, Any], op_id: str, root: str) -> Response:
        settle_operations(record)
        op = (record.get(OPERATIONS_KEY) or {}).get(op_id)
        if op is None:
            raise DicomError(404, f"The specified operation '{op_id}' cannot be found.")
        done = bool(op.get("done"))
        body = {
            "operationId": op_id,
            "type": "reindex",
            "createdTime": iso(op["created"]),
            "lastUpdatedTime": iso(op["end"] if done else world.now()),
            "status": "succeeded" if done else "running",
            "percentComplete": 100 if done else 50,
            "resources": [f"{root}/extendedquerytags/{t}" for t in op["tags"]],
        }
        return _json(body, 200 if done else 202)

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return [
        Route("/dicom/{service}/{version}", endpoint, methods=methods),
        Route("/dicom/{service}/{version}/{rest:path}", endpoint, methods=methods),
    ]


def _action(method: str, parts: list[str]) -> str:
    first = parts[0].lower() if parts else ""
    if first in ("extendedquerytags", "operations"):
        return READ if method in ("GET", "HEAD") else MANAGE_TAGS
    if method in ("GET", "HEAD", "OPTIONS"):
        return READ
    if method == "DELETE":
        return DELETE
    return WRITE


def orthanc_query(params: Iterable[tuple[str, str]]) -> str:
    """The query string for Orthanc: `includefield=a,b` becomes `includefield=a&includefield=b` (the DICOM
    standard and Azure accept a comma-separated list; the DICOMweb plugin 1.7 answers it with "Unknown DICOM
    tag" and leaves the attributes out)."""
    items: list[tuple[str, str]] = []
    for key, value in params:
        if key.lower() == "includefield":
            items.extend((key, v.strip()) for v in value.split(",") if v.strip())
        else:
            items.append((key, value))
    return urlencode(items)


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


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body).encode(), status_code=status, media_type="application/json; charset=utf-8")

