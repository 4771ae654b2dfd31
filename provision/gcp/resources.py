"""Cloud Healthcare resources in the engine's terms: dataset, DICOM store, and one IAM policy per resource.

Ownership without a state file:
- A DICOM store belongs to the plan when it carries the labels `provision-plan=<name>` and
  `provision-env=<env>` (written on create, checked before any change or deletion).
- A dataset cannot carry labels (the v1 `Dataset` has only `name`, `timeZone`, `encryptionSpec`). It belongs to
  the plan when the plan says `create: true` **and** everything it holds is the plan's: every DICOM store carries
  the plan's labels and there is no FHIR, HL7v2 or consent store. Deleting a dataset deletes all its data, so
  this is checked again right before the delete.
- IAM bindings cannot carry labels either. `destroy` revokes the members the plan grants, except on a dataset
  or store that is deleted anyway.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from provision.core import (
    Compare,
    Context,
    FieldPolicy,
    Resource,
    TemporaryError,
    Timeouts,
    Update,
)
from provision.core.limits import idle
from provision.errors import CloudError, OwnershipError
from provision.gcp.client import AlreadyExists, HealthcareClient, NotFound
from provision.gcp.iam import (
    RoleGrant,
    binding_view,
    desired_view,
    merge_policy,
    nest_roles,
)
from provision.gcp.names import (
    ENV_LABEL,
    PLAN_LABEL,
    HealthcareName,
    carries_labels,
    created_labels,
    ownership_labels,
)

#: stores of other kinds a dataset can hold; any of them makes the dataset not ours to delete
_OTHER_STORES = ("fhirStores", "hl7V2Stores", "consentStores")


def datasets_api(service: Any) -> Any:
    return service.projects().locations().datasets()


async def _list_all(
    client: HealthcareClient, make_page: Callable[..., Any], key: str, what: str
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = await client.call(functools.partial(make_page, token=token), what)
        items.extend(page.get(key) or [])
        token = page.get("nextPageToken")
        if not token:
            return items


class DatasetResource(Resource):
    timeouts = Timeouts(read=300.0, create=600.0, update=60.0, delete=600.0)

    def __init__(
        self, client: HealthcareClient, name: HealthcareName, *, create: bool, plan_name: str, env: str
    ) -> None:
        super().__init__(f"gcp.dataset[{name.dataset}]")
        self.client = client
        self.name = name
        self.managed = create
        self.plan_name = plan_name
        self.env = env

    @property
    def label(self) -> str:
        return f"dataset {self.name.dataset}"

    async def contents(self) -> tuple[list[str], list[str]]:
        """(ids of the DICOM stores, names of everything this plan does not own); the four lists in parallel."""
        dataset = self.name.dataset_name

        def list_page(service: Any, token: str | None, kind: str) -> Any:
            return getattr(datasets_api(service), kind)().list(parent=dataset, pageSize=100, pageToken=token)

        kinds = ("dicomStores", *_OTHER_STORES)
        listed = await asyncio.gather(
            *(
                _list_all(self.client, functools.partial(list_page, kind=kind), kind, f"listing {kind} of {dataset}")
                for kind in kinds
            )
        )
        stores, others = listed[0], dict(zip(kinds[1:], listed[1:], strict=True))
        foreign = [
            "dicomStores/" + store["name"].rsplit("/", 1)[-1]
            for store in stores
            if not carries_labels(store.get("labels"), self.plan_name, self.env)
        ]
        for kind, items in others.items():
            foreign += [f"{kind}/" + item["name"].rsplit("/", 1)[-1] for item in items]
        return sorted(s["name"].rsplit("/", 1)[-1] for s in stores), sorted(foreign)

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        try:
            found = await self.client.call(
                lambda s: datasets_api(s).get(name=self.name.dataset_name), f"reading {self.label}"
            )
        except NotFound:
            return None
        actual: dict[str, Any] = {"name": found.get("name", self.name.dataset_name)}
        if self.managed:  # what it holds only matters for a dataset the plan may delete
            actual["stores"], actual["foreign"] = await self.contents()
        if found.get("timeZone"):
            actual["timeZone"] = found["timeZone"]
        return actual

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"name": self.name.dataset_name}

    def owned(self, actual: dict[str, Any]) -> bool:
        return self.managed and not actual.get("foreign")

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return {"name": self.name.dataset_name, "owned": self.owned(actual) if "foreign" in actual else False}

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        parent = f"projects/{self.name.project}/locations/{self.name.location}"
        try:
            operation = await self.client.call(
                lambda s: datasets_api(s).create(parent=parent, datasetId=self.name.dataset, body={}),
                f"creating {self.label}",
            )
        except AlreadyExists:
            # a retried create whose first attempt went through (its answer was lost): wait until the dataset
            # is visible, then let the engine re-read it
            try:
                await self.client.call(
                    lambda s: datasets_api(s).get(name=self.name.dataset_name), f"reading {self.label}"
                )
            except NotFound:
                raise TemporaryError(f"{self.label} is still being created by an earlier attempt") from None
            return None
        await wait_for_operation(self.client, operation, ctx, f"creating {self.label}")
        return None

    async def update(
        self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any], action: Update
    ) -> dict[str, Any] | None:
        return actual  # nothing of a dataset is managed beyond its existence (reached with --adopt)

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        _, foreign = await self.contents()
        if foreign:
            raise OwnershipError(
                f"refusing to delete {self.label}: it holds {', '.join(foreign)}, which this plan does not own",
                hint="deleting a dataset deletes everything in it; remove those stores first, "
                "or set gcp.dataset.create: false",
            )
        try:
            await self.client.call(
                lambda s: datasets_api(s).delete(name=self.name.dataset_name), f"deleting {self.label}"
            )
        except NotFound:
            return


def _get_operation(service: Any, name: str) -> Any:
    return datasets_api(service).operations().get(name=name)


async def wait_for_operation(client: HealthcareClient, operation: dict[str, Any], ctx: Context, what: str) -> Any:
    """Poll a `google.longrunning.Operation` until done; return its response or raise its error."""
    delay = 0.1
    while not operation.get("done"):
        await idle(delay)
        delay = min(delay * 1.5, 2.0)  # datasets take seconds: poll often enough not to add much to that
        name: str = operation["name"]
        operation = await client.call(functools.partial(_get_operation, name=name), what)
        if not operation.get("done"):
            ctx.progress(f"waiting for operation {name.rsplit('/', 1)[-1]}")
    if "error" in operation:
        error = operation["error"]
        raise CloudError(f"{what}: {error.get('code')} {error.get('message', '')}".strip())
    return operation.get("response")


def normalise_store(body: Mapping[str, Any]) -> dict[str, Any]:
    """A DICOM store as plain data, with proto3 defaults filled in (false booleans are omitted on the wire)."""
    store: dict[str, Any] = {"name": body.get("name", ""), "labels": dict(body.get("labels") or {})}
    notification = body.get("notificationConfig")
    if notification:
        store["notificationConfig"] = {
            "pubsubTopic": notification.get("pubsubTopic", ""),
            "sendForBulkImport": bool(notification.get("sendForBulkImport", False)),
        }
    return store


class DicomStoreResource(Resource):
    timeouts = Timeouts(read=300.0, create=300.0, update=300.0, delete=300.0)

    def __init__(
        self,
        client: HealthcareClient,
        name: HealthcareName,
        *,
        plan_name: str,
        env: str,
        labels: Mapping[str, str] | None = None,
        notification: Mapping[str, Any] | None = None,
        depends_on: tuple[str, ...] = (),
        managed: bool = True,
        dataset_owned: bool = False,
    ) -> None:
        super().__init__(f"gcp.dicom_store[{name.store}]", depends_on)
        self.client = client
        self.name = name
        self.plan_name = plan_name
        self.env = env
        self.labels = dict(labels or {})
        self.notification = dict(notification) if notification else None
        self.managed = managed
        #: the plan creates (and may delete) the dataset: recorded on the store when it is created
        self.dataset_owned = dataset_owned

    @property
    def label(self) -> str:
        return f"DICOM store {self.name.store}"

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        try:
            body = await self.client.call(
                lambda s: datasets_api(s).dicomStores().get(name=self.name.name), f"reading {self.label}"
            )
        except NotFound:
            return None
        return normalise_store(body)

    def desired(self, ctx: Context) -> dict[str, Any]:
        if not self.managed:
            return {}
        desired: dict[str, Any] = {"labels": {**self.labels, **ownership_labels(self.plan_name, self.env)}}
        if self.notification is not None:
            desired["notificationConfig"] = {
                "pubsubTopic": self.notification["pubsub_topic"],
                "sendForBulkImport": bool(self.notification.get("send_for_bulk_import", False)),
            }
        return desired

    def owned(self, actual: dict[str, Any]) -> bool:
        return carries_labels(actual.get("labels"), self.plan_name, self.env)

    def owner_of(self, actual: dict[str, Any]) -> str | None:
        labels = actual.get("labels") or {}
        plan = labels.get(PLAN_LABEL)
        return f"plan {plan}, env {labels.get(ENV_LABEL, '?')}" if plan else None

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": self.name.name,
            "dicomweb_root": f"{self.client.api_base}/{self.name.name}/dicomWeb",
            "owned": self.owned(actual) if "labels" in actual else False,
            # False while planning the store's creation (the engine's stand-in has no name yet)
            "exists": isinstance(actual.get("name"), str) and bool(actual.get("name")),
        }

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        labels = {**desired.get("labels", {}), **created_labels(dataset_owned=self.dataset_owned)}
        body_sent = {**desired, "labels": labels}
        try:
            body = await self.client.call(
                lambda s: datasets_api(s).dicomStores().create(
                    parent=self.name.dataset_name, dicomStoreId=self.name.store, body=body_sent
                ),
                f"creating {self.label}",
            )
        except AlreadyExists:
            # created by a retried request (fine) or by someone else at the same moment (not ours)
            actual = await self.read(ctx)
            if actual is None or not self.owned(actual):
                raise OwnershipError(
                    f"{self.label} appeared while it was being created, without this plan's labels"
                ) from None
            return actual
        return normalise_store(body)

    async def update(
        self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any], action: Update
    ) -> dict[str, Any] | None:
        fields = sorted({change.path.split(".", 1)[0] for change in action.changes} or {"labels"})
        body: dict[str, Any] = {}
        if "labels" in fields:
            body["labels"] = {**actual.get("labels", {}), **desired.get("labels", {})}  # keep foreign labels
        if "notificationConfig" in fields:
            body["notificationConfig"] = desired["notificationConfig"]
        result = await self.client.call(
            lambda s: datasets_api(s).dicomStores().patch(name=self.name.name, updateMask=",".join(fields), body=body),
            f"updating {self.label}",
        )
        return normalise_store(result)

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        try:
            await self.client.call(lambda s: datasets_api(s).dicomStores().delete(name=self.name.name),
                                   f"deleting {self.label}")
        except NotFound:
            return


def iam_address(name: HealthcareName) -> str:
    return f"gcp.iam[{name.dataset}]" if name.store is None else f"gcp.iam[{name.dataset}/{name.store}]"


class IamPolicyResource(Resource):
    """The plan's bindings on one dataset or store. Read-modify-write with the etag; never a blind overwrite."""

    schema = {"bindings": FieldPolicy(compare=Compare.SET_CASEFOLD)}
    timeouts = Timeouts(read=120.0, create=300.0, update=300.0, delete=300.0)

    def __init__(
        self,
        client: HealthcareClient,
        name: HealthcareName,
        grants: Sequence[RoleGrant],
        *,
        depends_on: tuple[str, ...] = (),
        parent: str | None = None,
    ) -> None:
        super().__init__(iam_address(name), depends_on)
        self.client = client
        self.name = name
        self.grants = list(grants)
        #: the dataset/store resource whose deletion takes these bindings with it
        self.parent = parent
        #: policies written: setIamPolicy calls that succeeded (a write refused with 409 ABORTED and redone is
        #: counted once, when it goes through), for reports and tests
        self.writes = 0

    @property
    def label(self) -> str:
        return f"IAM policy of {self.name.kind} {self.name.store or self.name.dataset}"

    def _service(self, service: Any) -> Any:
        return datasets_api(service) if self.name.store is None else datasets_api(service).dicomStores()

    async def get_policy(self) -> dict[str, Any]:
        return dict(
            await self.client.call(
                lambda s: self._service(s).getIamPolicy(
                    resource=self.name.name, options_requestedPolicyVersion=3
                ),
                f"reading the {self.label}",
            )
        )

    def _view(self, policy: Mapping[str, Any]) -> dict[str, Any]:
        return {"bindings": nest_roles(binding_view(policy, self.grants)), "etag": policy.get("etag", "")}

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        try:
            return self._view(await self.get_policy())
        except NotFound:
            return None  # the dataset or store does not exist (yet)

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"bindings": nest_roles(desired_view(self.grants))}

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return {"resource": self.name.name}

    async def reconcile(self, ctx: Context, grants: Sequence[RoleGrant]) -> dict[str, Any]:
        """One read-modify-write cycle: read with version 3, merge, write with the etag only if something
        changes, then re-read to confirm. A stale etag (409 ABORTED) raises TemporaryError, so the engine runs
        the whole cycle again after a backoff."""
        policy = await self.get_policy()
        merged = merge_policy(policy, grants)
        if not merged.changed:
            return self._view(policy)
        for role, (added, removed) in merged.changes.items():
            parts = [f"+{m}" for m in added] + [f"-{m}" for m in removed]
            ctx.progress(f"{role}: {' '.join(parts)}")
        await self.client.call(
            lambda s: self._service(s).setIamPolicy(resource=self.name.name, body={"policy": merged.policy}),
            f"writing the {self.label}",
        )
        self.writes += 1
        confirmed = await self.get_policy()
        if merge_policy(confirmed, grants).changed:
            raise TemporaryError(f"{self.label}: the change is not visible yet")
        return self._view(confirmed)

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        return await self.reconcile(ctx, self.grants)

    async def update(
        self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any], action: Update
    ) -> dict[str, Any] | None:
        return await self.reconcile(ctx, self.grants)

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        if self.parent is not None and ctx.inputs(self.parent).get("owned"):
            return  # the dataset or store is deleted, and its policy with it
        revoke = [RoleGrant(g.role, (), g.present) for g in self.grants if g.present]
        if not revoke:
            return
        try:
            await self.reconcile(ctx, revoke)
        except NotFound:
            return


__all__ = [
    "DatasetResource",
    "DicomStoreResource",
    "IamPolicyResource",
    "iam_address",
    "normalise_store",
    "wait_for_operation",
]
