"""Extended query tags of a DICOM service (`/extendedquerytags`, `/operations/{id}`).

Add (202 with an operation that completes after `Config.lro_seconds`), list, get, update `queryStatus`,
delete; kept in the DICOM service's record in the world, so they survive a restart and vanish with the
service. A tag becomes searchable (see `qido.py`) once its operation has completed and while it is enabled.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from ...clock import iso
from .errors import DicomError
from .qido import SEARCHABLE, TAG_VR, tag_of

if TYPE_CHECKING:
    from starlette.requests import Request

    from ...world import World

TAGS_KEY = "_extendedQueryTags"
OPERATIONS_KEY = "_dataOperations"
MAX_QUERY_TAGS = 128
QUERY_TAG_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "PN", "SH", "SL", "SS",
                           "TM", "UI", "UL", "US"})
QUERY_TAG_LEVELS = {"study": "Study", "series": "Series", "instance": "Instance"}


def ready_tags(record: Mapping[str, Any]) -> set[str]:
    """The tags of the service one may search on: added (operation completed) and enabled."""
    return {t for t, e in (record.get(TAGS_KEY) or {}).items()
            if e["status"] == "Ready" and e["queryStatus"] == "Enabled"}


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
        vr = TAG_VR.get(tag)
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


async def handle(world: World, request: Request, record: dict[str, Any], parts: list[str], root: str) -> Response:
    """`{serviceUrl}/{version}/extendedquerytags[/{tag}[/errors]]` (`parts`: the path after `extendedquerytags`)."""
    tags: dict[str, dict[str, Any]] = record.setdefault(TAGS_KEY, {})
    settle_operations(world, record)
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


def settle_operations(world: World, record: dict[str, Any]) -> None:
    """Complete the service's operations whose time has come: their tags become Ready."""
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


def operation(world: World, record: dict[str, Any], op_id: str, root: str) -> Response:
    """`{serviceUrl}/{version}/operations/{id}`: 202 while it runs, 200 once it has succeeded."""
    settle_operations(world, record)
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


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body).encode(), status_code=status, media_type="application/json; charset=utf-8")
