"""Google Cloud Healthcare API v1 (healthcare.googleapis.com/v1), as the tool's Google client sees it.

Routes: `/v1/projects/{p}/locations/{l}/datasets[...]`: datasets (create is a `google.longrunning.Operation`,
polled at `.../operations/{id}`; get, list, patch, delete), DICOM stores (create returns the store; get, list,
patch with `updateMask`, delete), the FHIR, HL7v2 and consent store lists (always empty), `:getIamPolicy` /
`:setIamPolicy` on datasets and DICOM stores; and `GET|POST /_sandbox/gcp/config` (control). Requests carry
an access token of the sandbox's Google OAuth endpoint (`oauth.py`). Errors are `google.rpc.Status` bodies:
`{"error": {"code", "message", "status"}}`.

Behaviour emulated on purpose (see shared facts/gcp-orthanc.md):
- Every project exists and the caller may do anything in it (no resource-manager emulation).
- A created dataset appears when its operation ends (`Config.lro_seconds`) and then answers requests for its
  stores and policy with **404 "dataset not initialized"** for `dataset_init_seconds` more (default 1 s;
  `POST /_sandbox/gcp/config {"dataset_init_seconds": 0}` turns the window off).
- IAM: the etag changes on every write; a `setIamPolicy` whose etag is not the current one fails with
  **409 ABORTED**; without an etag the write is unconditional (as Google's is). Members and bindings are
  normalised (sorted, duplicates merged) the way Google returns them. A policy with conditions needs
  version 3 to be written, and reading it with `requestedPolicyVersion` < 3 returns version 1 with
  `_withcond_` role names and no conditions, as Google does.
- Concurrent policy changes can be injected: `POST /_sandbox/gcp/config` with
  `{"iam_races": [{"resource": "<name suffix>", "member": "user:x@example.org", "role": "roles/...",
  "count": 1}]}` makes "someone else" add that member (and so change the etag) just before the sandbox
  processes the next matching setIamPolicy: the change lands between the caller's read and its write, and the
  write fails with 409 ABORTED as it would on Google.
- Each DICOM store's `dicomWeb` root answers DICOMweb (`dicomweb.py`), with the caller's IAM role enforced.
- Not emulated: FHIR/HL7v2/consent stores, streaming/BigQuery configs, deidentify/import/export, dataset
  encryption, permission checks on the administrative calls above (the caller may do anything in a project).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..routing import json_response
from ..tokens import TokenError, bearer_token
from .oauth import GOOGLE_AUDIENCE, GOOGLE_TENANT, TOKEN_PREFIX

if TYPE_CHECKING:
    from ..tokens import TokenSigner
    from ..world import World

OP_METADATA = "type.googleapis.com/google.cloud.healthcare.v1.OperationMetadata"
EMPTY_ETAG = "ACAB"  # what Google returns for a resource that never had a policy

_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")
_PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z0-9.-]+:[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_LOCATION_RE = re.compile(r"^[a-z]+(?:-[a-z]+[0-9]*)*$")
_LABEL_KEY_RE = re.compile(r"^[\w-]{1,63}$")
_LABEL_VALUE_RE = re.compile(r"^[\w-]{0,63}$")
_TOPIC_RE = re.compile(r"^projects/[^/]+/topics/[^/]+$")
_MEMBER_RE = re.compile(
    r"^(?:allUsers|allAuthenticatedUsers|(?:user|group|serviceAccount):[^@\s]+@[^@\s]+\.[^@\s]+"
    r"|domain:[A-Za-z0-9.-]+\.[A-Za-z]{2,}|deleted:(?:user|group|serviceAccount):[^@\s]+@[^@\s]+\?uid=\d+"
    r"|principal(?:Set)?://\S+)$"
)
_ROLE_RE = re.compile(r"^(?:roles/[A-Za-z0-9_.]+|(?:projects|organizations)/[^/]+/roles/[A-Za-z0-9_.]+)$")
_STORE_KINDS = ("fhirStores", "hl7V2Stores", "consentStores")


@dataclass
class IamRace:
    """A concurrent policy change the sandbox makes just before processing a matching setIamPolicy."""

    resource: str
    member: str = "user:racer@example.org"
    role: str = "roles/healthcare.dicomViewer"
    count: int = 1


@dataclass
class OAuthClient:
    """A browser OAuth client as registered by hand in the console (no public API creates one): the sandbox's
    Google sign-in (`accounts.py`) accepts only registered clients, redirect URIs and JavaScript origins."""

    client_id: str
    redirect_uris: list[str]
    javascript_origins: list[str]


DEFAULT_DATASET_INIT_SECONDS = 1.0


def config_of(world: World) -> dict[str, Any]:
    """The Google routes' knobs, kept in the world (so the API and control routes share them; reset clears them).

    `dataset_init_seconds`: how long a new dataset answers "dataset not initialized" after its operation ends.
    `iam_races`: pending concurrent policy changes (see `IamRace`).
    `oauth_clients`: the browser OAuth clients registered by hand (see `OAuthClient`).
    """
    config = _state(world).setdefault("config", {})
    config.setdefault("dataset_init_seconds", DEFAULT_DATASET_INIT_SECONDS)
    config.setdefault("iam_races", [])
    config.setdefault("oauth_clients", [])
    return config


def update_config(world: World, values: dict[str, Any]) -> list[str]:
    """Apply known keys; return the unknown ones (nothing is applied when there are any)."""
    unknown = sorted(k for k in values if k not in ("dataset_init_seconds", "iam_races", "oauth_clients"))
    if unknown:
        return unknown
    config = config_of(world)
    if "dataset_init_seconds" in values:
        seconds = float(values["dataset_init_seconds"])
        if seconds < 0:
            raise ValueError("dataset_init_seconds must not be negative")
        config["dataset_init_seconds"] = seconds
    if "iam_races" in values:
        config["iam_races"] = [asdict(IamRace(**race)) for race in values["iam_races"] or []]
    if "oauth_clients" in values:
        config["oauth_clients"] = [asdict(OAuthClient(**client)) for client in values["oauth_clients"] or []]
    world.mark_dirty()
    return []


class RpcError(Exception):
    """Rendered as a `google.rpc.Status` error body."""

    def __init__(self, code: int, status: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.headers = headers or {}

    def response(self) -> Response:
        body = {"error": {"code": self.code, "message": self.message, "status": self.status}}
        return json_response(body, self.code, headers=self.headers)


def _invalid(message: str) -> RpcError:
    return RpcError(400, "INVALID_ARGUMENT", message)


def _not_found(what: str) -> RpcError:
    return RpcError(404, "NOT_FOUND", f"{what} not found")


def _now_iso(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}Z"


def _new_etag() -> str:
    return base64.b64encode(b"\x07" + secrets.token_bytes(7)).decode("ascii")


def state_of(world: World) -> dict[str, Any]:
    """The Google part of the world: `datasets`, `dicomStores`, `policies`, `operations`, `config`."""
    return _state(world)


def _state(world: World) -> dict[str, Any]:
    """`world.state["gcp"]`, created on first use (a reset world has none)."""
    state = world.state.get("gcp")
    if state is None:
        state = world.state["gcp"] = {"datasets": {}, "dicomStores": {}, "policies": {}, "operations": {}}
        world.mark_dirty()
    return state


def _normalise_bindings(bindings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge bindings of the same role and condition, sort members and bindings (as Google returns them)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for binding in bindings:
        condition = binding.get("condition")
        key = (binding["role"], json.dumps(condition, sort_keys=True) if condition else "")
        slot = merged.setdefault(key, {"role": binding["role"], "members": set(), "condition": condition})
        slot["members"].update(binding.get("members") or [])
    out = []
    for (_role, _cond), slot in sorted(merged.items()):
        if not slot["members"]:
            continue
        item: dict[str, Any] = {"role": slot["role"], "members": sorted(slot["members"])}
        if slot["condition"]:
            item["condition"] = slot["condition"]
        out.append(item)
    return out


def _validate_policy(policy: Any) -> dict[str, Any]:
    if not isinstance(policy, dict):
        raise _invalid("Invalid JSON payload received. 'policy' must be an object.")
    bindings = policy.get("bindings") or []
    if not isinstance(bindings, list):
        raise _invalid("Invalid JSON payload received. 'policy.bindings' must be a list.")
    version = int(policy.get("version") or 0)
    if version not in (0, 1, 3):
        raise _invalid(f"Invalid policy version {version}; valid versions are 0, 1 and 3.")
    for binding in bindings:
        if not isinstance(binding, dict) or not isinstance(binding.get("role"), str):
            raise _invalid("Invalid argument: every binding needs a role.")
        role = binding["role"]
        if not _ROLE_RE.match(role) or "_withcond_" in role:
            raise _invalid(f"Role {role} is not supported for this resource.")
        members = binding.get("members") or []
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise _invalid("Invalid argument: members must be a list of strings.")
        for member in members:
            if not _MEMBER_RE.match(member):
                raise _invalid(f"Invalid argument: invalid member {member!r}.")
        condition = binding.get("condition")
        if condition:
            if not isinstance(condition, dict) or not condition.get("expression") or not condition.get("title"):
                raise _invalid("Invalid argument: a condition needs an expression and a title.")
            if version < 3:
                raise _invalid(
                    "Policy with conditional bindings must be of version 3 or higher; set policy.version to 3."
                )
    return policy


def _policy_for_version(policy: dict[str, Any], requested: int) -> dict[str, Any]:
    """What getIamPolicy answers: conditional bindings are hidden from callers that did not ask for version 3."""
    bindings = policy.get("bindings") or []
    has_conditions = any(b.get("condition") for b in bindings)
    out: dict[str, Any] = {}
    if has_conditions and requested >= 3:
        out["version"] = 3
        out["bindings"] = bindings
    elif has_conditions:
        out["version"] = 1
        shown = []
        for binding in bindings:
            if binding.get("condition"):
                tag = hashlib.sha1(json.dumps(binding["condition"], sort_keys=True).encode()).hexdigest()[:20]
                shown.append({"role": f"{binding['role']}_withcond_{tag}", "members": binding["members"]})
            else:
                shown.append(binding)
        out["bindings"] = shown
    elif bindings:
        out["version"] = 1
        out["bindings"] = bindings
    out["etag"] = policy.get("etag", EMPTY_ETAG)
    return out


_PATH_RE = re.compile(
    r"^/v1/projects/(?P<project>[^/:]+)/locations/(?P<location>[^/:]+)"
    r"(?:/datasets(?:/(?P<dataset>[^/:]+)"
    r"(?:/(?:(?P<kind>dicomStores|fhirStores|hl7V2Stores|consentStores)(?:/(?P<store>[^/:]+))?"
    r"|operations/(?P<operation>[^/:]+)))?)?)?"
    r"(?::(?P<verb>[A-Za-z]+))?$"
)


def control_routes(world: World) -> list[BaseRoute]:
    """`GET|POST /_sandbox/gcp/config`: read or change `dataset_init_seconds`, `iam_races`, `oauth_clients`."""

    async def control(request: Request) -> Response:
        if request.method == "POST":
            try:
                values = json.loads(await request.body() or b"{}")
                if not isinstance(values, dict):
                    raise ValueError("expected a JSON object")
                unknown = update_config(world, values)
            except (ValueError, TypeError) as exc:
                return json_response({"error": f"bad config: {exc}"}, 400)
            if unknown:
                return json_response({"error": f"unknown gcp config keys: {', '.join(unknown)}"}, 400)
            world.save_if_dirty()
        return json_response(config_of(world))

    return [Route("/_sandbox/gcp/config", control, methods=["GET", "POST"])]


def authenticate(signer: TokenSigner, request: Request) -> dict[str, Any]:
    """The claims of the request's Google access token (`ya29.` + a sandbox JWT), else 401 UNAUTHENTICATED."""
    try:
        raw = bearer_token(request.headers.get("authorization"))
        if not raw.startswith(TOKEN_PREFIX):
            raise TokenError("malformed")
        return signer.verify(raw[len(TOKEN_PREFIX):], audiences=(GOOGLE_AUDIENCE,), tenant_id=GOOGLE_TENANT)
    except TokenError:
        raise RpcError(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
            "other valid authentication credential. See "
            "https://developers.google.com/identity/sign-in/web/devconsole-project.",
            headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'},
        ) from None


def routes(world: World, signer: TokenSigner) -> list[BaseRoute]:
    """The Healthcare API v1 (see the module docstring)."""

    # --- datasets -------------------------------------------------------------------------------------

    def settle(state: dict[str, Any]) -> None:
        """Finish the dataset operations whose time has come (the dataset appears then)."""
        now = world.now()
        for op in state["operations"].values():
            if not op["done"] and op["end"] <= now:
                op["done"] = True
                state["datasets"][op["target"]] = {
                    "name": op["target"],
                    "timeZone": op.get("timeZone", ""),
                    "ready": op["end"] + config_of(world)["dataset_init_seconds"],
                }
                world.mark_dirty()

    def dataset_of(state: dict[str, Any], name: str, *, usable: bool) -> dict[str, Any]:
        record = state["datasets"].get(name)
        if record is None:
            raise _not_found(f"dataset {name}")
        if usable and world.now() < record.get("ready", 0):
            raise RpcError(404, "NOT_FOUND", "dataset not initialized")
        return record

    def dataset_body(record: dict[str, Any]) -> dict[str, Any]:
        body = {"name": record["name"]}
        if record.get("timeZone"):
            body["timeZone"] = record["timeZone"]
        return body

    def operation_body(op: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": op["name"],
            "metadata": {
                "@type": OP_METADATA,
                "apiMethodName": "google.cloud.healthcare.v1.dataset.DatasetService.CreateDataset",
                "createTime": _now_iso(op["start"]),
            },
        }
        if op["done"]:
            body["metadata"]["endTime"] = _now_iso(op["end"])
            body["done"] = True
            body["response"] = {
                "@type": "type.googleapis.com/google.cloud.healthcare.v1.Dataset",
                **dataset_body({"name": op["target"], "timeZone": op.get("timeZone", "")}),
            }
        return body

    def page(items: list[dict[str, Any]], key: str, query: dict[str, str]) -> dict[str, Any]:
        try:
            size = int(query.get("pageSize") or 100)
            start = int(query.get("pageToken") or 0)
        except ValueError:
            raise _invalid("Invalid pageSize or pageToken.") from None
        size = max(1, min(size, 1000))
        chunk = items[start : start + size]
        body: dict[str, Any] = {key: chunk} if chunk else {}
        if start + size < len(items):
            body["nextPageToken"] = str(start + size)
        return body

    # --- DICOM stores --------------------------------------------------------------------------------

    def store_body(record: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"name": record["name"]}
        if record.get("labels"):
            body["labels"] = dict(record["labels"])
        notification = record.get("notificationConfig")
        if notification and notification.get("pubsubTopic"):
            shown = {"pubsubTopic": notification["pubsubTopic"]}
            if notification.get("sendForBulkImport"):
                shown["sendForBulkImport"] = True  # proto3: a false boolean is not sent
            body["notificationConfig"] = shown
        return body

    def validate_store_fields(body: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        for name in fields:
            if name == "labels":
                labels = body.get("labels") or {}
                if not isinstance(labels, dict) or len(labels) > 64:
                    raise _invalid("labels must be a map of at most 64 entries")
                for key, value in labels.items():
                    if not _LABEL_KEY_RE.match(str(key)) or not key[0].islower():
                        raise _invalid(f"invalid label key {key!r}")
                    if not isinstance(value, str) or not _LABEL_VALUE_RE.match(value):
                        raise _invalid(f"invalid label value {value!r} for key {key!r}")
                clean["labels"] = dict(labels)
            elif name == "notificationConfig":
                notification = body.get("notificationConfig") or {}
                if not isinstance(notification, dict):
                    raise _invalid("notificationConfig must be an object")
                topic = notification.get("pubsubTopic", "")
                if topic and not _TOPIC_RE.match(topic):
                    raise _invalid(f"invalid Pub/Sub topic {topic!r}; expected projects/PROJECT/topics/TOPIC")
                clean["notificationConfig"] = {
                    "pubsubTopic": topic,
                    "sendForBulkImport": bool(notification.get("sendForBulkImport", False)),
                }
            elif name in ("streamConfigs", "notificationConfigs"):
                clean[name] = body.get(name) or []
            else:
                raise _invalid(f"Invalid update mask path: {name}")
        return clean

    # --- IAM -----------------------------------------------------------------------------------------

    def get_policy(state: dict[str, Any], resource: str, query: dict[str, str]) -> dict[str, Any]:
        try:
            requested = int(query.get("options.requestedPolicyVersion") or 0)
        except ValueError:
            raise _invalid("options.requestedPolicyVersion must be an integer") from None
        if requested not in (0, 1, 3):
            raise _invalid(f"Invalid requested policy version {requested}; valid versions are 0, 1 and 3.")
        policy = state["policies"].get(resource, {"etag": EMPTY_ETAG})
        return _policy_for_version(policy, requested)

    def race(state: dict[str, Any], resource: str) -> None:
        for item in config_of(world)["iam_races"]:
            if item["count"] > 0 and resource.endswith(item["resource"]):
                item["count"] -= 1
                current = state["policies"].get(resource, {})
                bindings = [*current.get("bindings", []), {"role": item["role"], "members": [item["member"]]}]
                state["policies"][resource] = {"bindings": _normalise_bindings(bindings), "etag": _new_etag()}
                world.mark_dirty()
                return

    def set_policy(state: dict[str, Any], resource: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _invalid("Invalid JSON payload received.")
        policy = _validate_policy(body.get("policy"))
        race(state, resource)
        current = state["policies"].get(resource, {"etag": EMPTY_ETAG})
        etag = policy.get("etag")
        if etag and etag != current.get("etag", EMPTY_ETAG):
            raise RpcError(
                409,
                "ABORTED",
                "There were concurrent policy changes. Please retry the whole read-modify-write with "
                "exponential backoff.",
            )
        bindings = _normalise_bindings(policy.get("bindings") or [])
        stored = {"bindings": bindings, "etag": _new_etag()}
        state["policies"][resource] = stored
        world.mark_dirty()
        return _policy_for_version(stored, 3)

    # --- the front door ------------------------------------------------------------------------------

    async def healthcare(request: Request) -> Response:
        try:
            authenticate(signer, request)
            match = _PATH_RE.match(request.url.path)
            if match is None:
                raise RpcError(404, "NOT_FOUND", f"The requested URL {request.url.path} was not found.")
            parts = match.groupdict()
            if not _PROJECT_RE.match(parts["project"]):
                raise RpcError(403, "PERMISSION_DENIED",
                               f"Permission denied on resource project {parts['project']}.")
            if not _LOCATION_RE.match(parts["location"]):
                raise _invalid(f"Invalid location {parts['location']!r}.")
            body: Any = None
            if request.method in ("POST", "PATCH"):
                raw = await request.body()
                try:
                    body = json.loads(raw) if raw.strip() else {}
                except ValueError:
                    raise _invalid("Invalid JSON payload received.") from None
            # from here on: no awaits, so the world is read and written in one step
            query = {k: v[-1] for k, v in parse_qs(request.url.query, keep_blank_values=True).items()}
            return dispatch(request.method, parts, query, body)
        except RpcError as err:
            return err.response()

    def dispatch(method: str, parts: dict[str, Any], query: dict[str, str], body: Any) -> Response:
        state = _state(world)
        settle(state)
        location_name = f"projects/{parts['project']}/locations/{parts['location']}"
        dataset_id, kind, store_id = parts["dataset"], parts["kind"], parts["store"]
        verb = parts["verb"]
        if dataset_id is None:
            if verb or parts["operation"]:
                raise RpcError(404, "NOT_FOUND", "Unknown method.")
            return dispatch_datasets(state, method, location_name, query, body)
        dataset_name = f"{location_name}/datasets/{dataset_id}"
        if parts["operation"]:
            if method != "GET":
                raise RpcError(405, "UNIMPLEMENTED", "Method not allowed.")
            op = state["operations"].get(f"{dataset_name}/operations/{parts['operation']}")
            if op is None:
                raise _not_found(f"operation {parts['operation']}")
            return json_response(operation_body(op))
        if kind is None:
            return dispatch_dataset(state, method, dataset_name, verb, query, body)
        if kind != "dicomStores":
            dataset_of(state, dataset_name, usable=True)
            if store_id is None and method == "GET" and not verb:
                return json_response({})  # no FHIR, HL7v2 or consent stores are ever held by the sandbox
            raise RpcError(501, "UNIMPLEMENTED", f"The sandbox does not emulate {kind}.")
        dataset_of(state, dataset_name, usable=True)
        if store_id is None:
            return dispatch_store_collection(state, method, dataset_name, verb, query, body)
        return dispatch_store(state, method, f"{dataset_name}/dicomStores/{store_id}", verb, query, body)

    def dispatch_datasets(
        state: dict[str, Any], method: str, parent: str, query: dict[str, str], body: Any
    ) -> Response:
        if method == "GET":
            items = [dataset_body(r) for n, r in sorted(state["datasets"].items()) if n.startswith(parent + "/")]
            return json_response(page(items, "datasets", query))
        if method != "POST":
            raise RpcError(405, "UNIMPLEMENTED", "Method not allowed.")
        dataset_id = query.get("datasetId", "")
        if not dataset_id:
            raise _invalid("datasetId is required")
        if not _ID_RE.match(dataset_id):
            raise _invalid(f"Invalid dataset ID {dataset_id!r}: must match [\\p{{L}}\\p{{N}}_\\-\\.]{{1,256}}")
        name = f"{parent}/datasets/{dataset_id}"
        pending = any(op["target"] == name and not op["done"] for op in state["operations"].values())
        if name in state["datasets"] or pending:
            raise RpcError(409, "ALREADY_EXISTS", f"already exists: {name}")
        if not isinstance(body, dict):
            raise _invalid("Invalid JSON payload received.")
        now = world.now()
        op_name = f"{name}/operations/{uuid.uuid4().int % 10**19}"
        op = {
            "name": op_name,
            "target": name,
            "start": now,
            "end": now + world.config.lro_seconds,
            "done": False,
            "timeZone": body.get("timeZone", ""),
        }
        state["operations"][op_name] = op
        world.mark_dirty()
        settle(state)
        return json_response(operation_body(op))

    def dispatch_dataset(
        state: dict[str, Any], method: str, name: str, verb: str | None, query: dict[str, str], body: Any
    ) -> Response:
        if verb == "getIamPolicy" and method == "GET":
            dataset_of(state, name, usable=True)
            return json_response(get_policy(state, name, query))
        if verb == "setIamPolicy" and method == "POST":
            dataset_of(state, name, usable=True)
            return json_response(set_policy(state, name, body))
        if verb:
            raise RpcError(404, "NOT_FOUND", f"Unknown method {verb}.")
        record = dataset_of(state, name, usable=False)
        if method == "GET":
            return json_response(dataset_body(record))
        if method == "PATCH":
            mask = [m for m in (query.get("updateMask") or "").split(",") if m]
            for path in mask:
                if path != "timeZone":
                    raise _invalid(f"Invalid update mask path: {path}")
                record["timeZone"] = (body or {}).get("timeZone", "")
            world.mark_dirty()
            return json_response(dataset_body(record))
        if method == "DELETE":
            prefix = name + "/"
            del state["datasets"][name]
            for store in [s for s in state["dicomStores"] if s.startswith(prefix)]:
                del state["dicomStores"][store]
            for resource in [r for r in state["policies"] if r == name or r.startswith(prefix)]:
                del state["policies"][resource]
            world.mark_dirty()
            return json_response({})
        raise RpcError(405, "UNIMPLEMENTED", "Method not allowed.")

    def dispatch_store_collection(
        state: dict[str, Any], method: str, parent: str, verb: str | None, query: dict[str, str], body: Any
    ) -> Response:
        if verb:
            raise RpcError(404, "NOT_FOUND", f"Unknown method {verb}.")
        if method == "GET":
            if query.get("filter"):
                raise _invalid("The sandbox does not emulate list filters.")
            prefix = parent + "/dicomStores/"
            items = [store_body(r) for n, r in sorted(state["dicomStores"].items()) if n.startswith(prefix)]
            return json_response(page(items, "dicomStores", query))
        if method != "POST":
            raise RpcError(405, "UNIMPLEMENTED", "Method not allowed.")
        store_id = query.get("dicomStoreId", "")
        if not store_id:
            raise _invalid("dicomStoreId is required")
        if not _ID_RE.match(store_id):
            raise _invalid(f"Invalid DICOM store ID {store_id!r}: must match [\\p{{L}}\\p{{N}}_\\-\\.]{{1,256}}")
        if not isinstance(body, dict):
            raise _invalid("Invalid JSON payload received.")
        name = f"{parent}/dicomStores/{store_id}"
        if name in state["dicomStores"]:
            raise RpcError(409, "ALREADY_EXISTS", f"already exists: {name}")
        unknown = set(body) - {"name", "labels", "notificationConfig", "streamConfigs", "notificationConfigs"}
        if unknown:
            raise _invalid(f"Invalid JSON payload received. Unknown name {sorted(unknown)[0]!r}.")
        record = {"name": name, **validate_store_fields(body, [k for k in body if k != "name"]),
                  "_created": world.now()}  # never shown: which incarnation of the store its DICOM data is
        state["dicomStores"][name] = record
        world.mark_dirty()
        return json_response(store_body(record))

    def dispatch_store(
        state: dict[str, Any], method: str, name: str, verb: str | None, query: dict[str, str], body: Any
    ) -> Response:
        record = state["dicomStores"].get(name)
        if record is None:
            raise _not_found(f"DICOM store {name}")
        if verb == "getIamPolicy" and method == "GET":
            return json_response(get_policy(state, name, query))
        if verb == "setIamPolicy" and method == "POST":
            return json_response(set_policy(state, name, body))
        if verb:
            raise RpcError(404, "NOT_FOUND", f"Unknown method {verb}.")
        if method == "GET":
            return json_response(store_body(record))
        if method == "PATCH":
            mask = [m.strip() for m in (query.get("updateMask") or "").split(",") if m.strip()]
            if not mask:
                raise _invalid("updateMask is required")
            if not isinstance(body, dict):
                raise _invalid("Invalid JSON payload received.")
            record.update(validate_store_fields(body, mask))
            world.mark_dirty()
            return json_response(store_body(record))
        if method == "DELETE":
            del state["dicomStores"][name]
            state["policies"].pop(name, None)
            world.mark_dirty()
            return json_response({})
        raise RpcError(405, "UNIMPLEMENTED", "Method not allowed.")

    return [
        Route("/v1/{rest:path}", healthcare, methods=["GET", "POST", "PATCH", "DELETE"]),
    ]


__all__ = [
    "IamRace",
    "OAuthClient",
    "RpcError",
    "authenticate",
    "config_of",
    "control_routes",
    "routes",
    "state_of",
    "update_config",
]
