"""Extended query tags of a DICOM service, reconciled through the DICOM data-plane API (not ARM).

`{serviceUrl}/v2/extendedquerytags`: POST a list to add (202 + a reindex operation to poll at
`/v2/operations/{id}`), GET one or all, PATCH `{"queryStatus": "Enabled"|"Disabled"}`, DELETE. VR, level and
private creator cannot change: a changed tag is deleted and added again.

One resource per DICOM service, `azure.extended_query_tags[<dicom>]`, owns the service's whole set when the plan
declares it: tags on the service that the plan does not list are deleted (an empty list removes them all);
a plan without `extended_query_tags` leaves them alone. Paths are 8 hex digits (`00081090`), as the service
reports them, so the plan and the service compare without a DICOM dictionary.

Managing tags needs a DICOM data role that includes it (DICOM Data Owner) for the identity the tool runs as.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from provision.azure.resources.base import Azure, AzureResource, known
from provision.core import Context, FieldPolicy, TemporaryError, Timeouts, Update
from provision.core.diff import Compare
from provision.errors import CloudError, PlanError

LEVELS = {"study": "Study", "series": "Series", "instance": "Instance"}
QUERY_STATUSES = {"enabled": "Enabled", "disabled": "Disabled"}
_PATH = re.compile(r"^[0-9A-Fa-f]{8}$")


@dataclass(frozen=True)
class QueryTag:
    """One declared extended query tag (the plan's entry, normalised)."""

    path: str
    level: str
    vr: str | None = None
    private_creator: str | None = None
    query_status: str = "Enabled"

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> QueryTag:
        """From a plan entry `{path, level, vr?, private_creator?, query_status?}`; raises PlanError."""
        path = str(entry.get("path", ""))
        if not _PATH.match(path):
            raise PlanError(f"extended query tag path {path!r}: use 8 hex digits, e.g. 00081090")
        level = LEVELS.get(str(entry.get("level", "")).lower())
        if level is None:
            raise PlanError(f"extended query tag {path}: level must be Study, Series or Instance")
        status = QUERY_STATUSES.get(str(entry.get("query_status", "Enabled")).lower())
        if status is None:
            raise PlanError(f"extended query tag {path}: query_status must be Enabled or Disabled")
        vr = entry.get("vr")
        return cls(path.upper(), level, str(vr).upper() if vr else None, entry.get("private_creator"), status)

    def spec(self) -> dict[str, Any]:
        """The compared fields (only what the plan declares; the VR of a standard tag comes from the service)."""
        spec: dict[str, Any] = {"level": self.level, "query_status": self.query_status}
        if self.vr:
            spec["vr"] = self.vr
        if self.private_creator:
            spec["private_creator"] = self.private_creator
        return spec

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"path": self.path, "level": self.level}
        if self.vr:
            body["vr"] = self.vr
        if self.private_creator:
            body["privateCreator"] = self.private_creator
        return body


def normalise(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The service's tag list -> `{paths, tags: {path: {level, query_status, vr, private_creator?, status}}}`."""
    tags: dict[str, Any] = {}
    for item in items:
        path = str(item["path"]).upper()
        tag = {"level": LEVELS.get(str(item.get("level", "")).lower(), item.get("level")),
               "query_status": QUERY_STATUSES.get(str(item.get("queryStatus", "")).lower(), item.get("queryStatus")),
               "vr": str(item.get("vr", "")).upper(), "status": item.get("status")}
        if item.get("privateCreator"):
            tag["private_creator"] = item["privateCreator"]
        tags[path] = tag
    return {"paths": sorted(tags), "tags": tags}


@dataclass
class Changes:
    """What an update does: delete first (frees changed paths), then add, then set query statuses."""

    delete: list[str]
    add: list[QueryTag]
    set_status: list[QueryTag]


def plan_changes(declared: Sequence[QueryTag], actual: Mapping[str, Any]) -> Changes:
    """The data-plane calls that turn `actual` (normalised) into `declared` (pure)."""
    live: Mapping[str, Any] = actual.get("tags") or {}
    wanted = {tag.path: tag for tag in declared}
    delete = [path for path in live if path not in wanted]
    add: list[QueryTag] = []
    set_status: list[QueryTag] = []
    for path, tag in wanted.items():
        current = live.get(path)
        fixed = {k: v for k, v in tag.spec().items() if k != "query_status"}
        if current is None:
            add.append(tag)
        elif any(current.get(k) != v for k, v in fixed.items()):
            delete.append(path)
            add.append(tag)
        elif current.get("query_status") != tag.query_status:
            set_status.append(tag)
    set_status += [t for t in add if t.query_status != "Enabled"]  # added tags start Enabled
    return Changes(sorted(delete), add, set_status)


class DicomDataPlane:
    """A small client of one DICOM service's data plane: bearer token for the DICOM audience, Azure's errors
    mapped to the tool's (429/5xx temporary; 401/403 permanent, with the fix)."""

    def __init__(self, credential: Any, audience: str, context: ssl.SSLContext) -> None:
        self.credential = credential
        self.audience = audience.rstrip("/")
        self.context = context

    async def call(self, method: str, url: str, *, json: Any = None) -> Any:
        import httpx

        token = await self.credential.get_token(f"{self.audience}/.default")
        headers = {"Authorization": f"Bearer {token.token}", "Accept": "application/json"}
        async with httpx.AsyncClient(verify=self.context, timeout=60) as http:
            try:
                response = await http.request(method, url, json=json, headers=headers)
            except httpx.TransportError as error:
                raise TemporaryError(f"{method} {url}: {error}") from error
        if response.status_code == 429 or response.status_code >= 500:
            retry = response.headers.get("retry-after")
            raise TemporaryError(f"{method} {url}: {response.status_code}",
                                 retry_after=float(retry) if retry and retry.isdigit() else None,
                                 throttled=response.status_code == 429)
        if response.status_code in (401, 403):
            raise CloudError(
                f"{method} {url}: {response.status_code} {response.text[:200]}".strip(),
                hint="managing extended query tags needs DICOM Data Owner on the service for the identity the "
                "tool runs as: add it to azure.access",
            )
        return response


class ExtendedQueryTags(AzureResource):
    """The DICOM service's set of extended query tags, exactly as the plan lists them."""

    kind = "azure.extended_query_tags"
    schema: ClassVar[Mapping[str, FieldPolicy]] = {"paths": FieldPolicy(compare=Compare.SET)}
    timeouts = Timeouts(create=60 * 60.0, update=60 * 60.0, delete=30 * 60.0)  # a reindex can take long
    poll_interval = 2.0

    def __init__(self, azure: Azure, dicom_name: str, tags: Sequence[QueryTag], *, data_plane: DicomDataPlane,
                 dicom_address: str, after: tuple[str, ...] = ()) -> None:
        super().__init__(azure, dicom_name, (dicom_address, *after), deleted_with=dicom_address)
        self.tags = list(tags)
        self.data_plane = data_plane
        self.dicom_address = dicom_address

    def _root(self, ctx: Context) -> str | None:
        url = ctx.inputs(self.dicom_address).get("service_url")
        return f"{str(url).rstrip('/')}/v2/extendedquerytags" if known(url) and url else None

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"paths": sorted(t.path for t in self.tags), "tags": {t.path: t.spec() for t in self.tags}}

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        root = self._root(ctx)
        if root is None:
            return None
        response = await self.data_plane.call("GET", root)
        if response.status_code != 200:
            raise CloudError(f"GET {root}: {response.status_code} {response.text[:200]}")
        return normalise(response.json())  # an empty set is a set: nothing to create when none are declared

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        return await self._reconcile(ctx, {"paths": [], "tags": {}})

    async def update(self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any],
                     action: Update) -> dict[str, Any] | None:
        return await self._reconcile(ctx, actual)

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        root = self._root(ctx)
        if root is None:
            return
        declared = {t.path for t in self.tags}
        for path in actual.get("paths", []):
            if path in declared:
                await self._delete(root, path)

    async def _delete(self, root: str, path: str) -> None:
        response = await self.data_plane.call("DELETE", f"{root}/{path}")
        if response.status_code not in (204, 404):
            raise CloudError(f"DELETE {root}/{path}: {response.status_code} {response.text[:200]}")

    async def _reconcile(self, ctx: Context, actual: Mapping[str, Any]) -> dict[str, Any] | None:
        root = self._root(ctx)
        if root is None:
            raise CloudError(f"{self.label}: the DICOM service has no serviceUrl yet")
        changes = plan_changes(self.tags, actual)
        for path in changes.delete:
            await self._delete(root, path)
        if changes.add:
            response = await self.data_plane.call("POST", root, json=[t.body() for t in changes.add])
            if response.status_code != 202:
                raise CloudError(f"POST {root}: {response.status_code} {response.text[:300]}")
            await self._wait(ctx, response.json()["href"])
        for tag in changes.set_status:
            response = await self.data_plane.call("PATCH", f"{root}/{tag.path}", json={"queryStatus": tag.query_status})
            if response.status_code != 200:
                raise CloudError(f"PATCH {root}/{tag.path}: {response.status_code} {response.text[:200]}")
        return None  # the engine reads the set back

    async def _wait(self, ctx: Context, operation: str) -> None:
        """Poll the reindex operation (202 while running, 200 when done)."""
        started = time.monotonic()
        while True:
            response = await self.data_plane.call("GET", operation)
            body = response.json() if response.content else {}
            status = str(body.get("status", "")).lower()
            if response.status_code == 200 and status in ("succeeded", "completed"):
                return
            if status in ("failed", "canceled", "cancelled"):
                raise CloudError(f"reindexing for {self.label} {status}: {body}")
            ctx.progress(f"reindexing: {body.get('percentComplete', '?')}%, {time.monotonic() - started:.0f} s")
            await asyncio.sleep(self.poll_interval)

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return {"paths": actual.get("paths")}


__all__ = ["DicomDataPlane", "ExtendedQueryTags", "QueryTag", "normalise", "plan_changes"]
