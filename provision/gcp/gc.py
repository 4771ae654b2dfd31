"""`provision gc` for Google Cloud: everything in one project and location that carries provision's labels, and
the teardown of one environment's share of it.

- **DICOM stores** are found by their labels `provision-plan` and `provision-env` (every dataset's stores are
  listed); their creation time is the label `provision-created` the tool writes on create.
- **Datasets** cannot carry labels. A dataset belongs to an environment when its stores say so: every DICOM
  store in it carries the environment's labels and at least one says `provision-dataset=owned` (the plan
  declared `dataset.create: true`). A dataset the plan only uses (`create: false`) is never deleted.

Teardown runs the engine's destroy on the target's own resources built from what was found: the environment's
stores (their IAM policies go with them), then each of its datasets. A dataset that holds anything the
environment does not own (another environment's DICOM store, a FHIR, HL7v2 or consent store) is kept and
reported; `DatasetResource.delete` checks again right before the delete (deleting a dataset deletes all its
data).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from provision.core import Action, Delete, Engine, NoOp, Plan, Step
from provision.core.commands import GcCall
from provision.core.gc import Environment, Found, Inventory, Progress, Retrier, Teardown, parse_created
from provision.errors import ConfigurationError
from provision.gcp.client import HealthcareClient, open_client
from provision.gcp.names import CREATED_LABEL, DATASET_LABEL, ENV_LABEL, PLAN_LABEL, HealthcareName, parse_name
from provision.gcp.resources import DatasetResource, DicomStoreResource, datasets_api
from provision.plan import validators as v

__all__ = ["GcpInventory", "gc_places"]

Body = dict[str, Any]



class GcpInventory:
    """Implements `provision.core.gc.Inventory` for one project and location."""

    cloud = "gcp"

    def __init__(self, client: HealthcareClient, project: str, location: str) -> None:
        self.client = client
        self.project = project
        self.location = location
        self.scope = f"projects/{project}/locations/{location}"

    async def aclose(self) -> None:
        self.client.close()

    async def _pages(self, make: Callable[..., Any], key: str, what: str, retrier: Retrier) -> list[Body]:
        items: list[Body] = []
        token: str | None = None
        while True:
            request = functools.partial(make, token=token)
            page = await retrier.call(functools.partial(self.client.call, request, what), what=what,
                                      limit=DatasetResource.timeouts.read)
            items.extend(page.get(key) or [])
            token = page.get("nextPageToken")
            if not token:
                return items

    async def _stores(self, dataset: str, kind: str, retrier: Retrier) -> list[Body]:
        def page(service: Any, token: str | None) -> Any:
            return getattr(datasets_api(service), kind)().list(parent=dataset, pageSize=100, pageToken=token)

        return await self._pages(page, kind, f"listing the {kind} of {dataset}", retrier)

    async def discover(self, retrier: Retrier) -> list[Found]:
        def page(service: Any, token: str | None) -> Any:
            return datasets_api(service).list(parent=self.scope, pageSize=100, pageToken=token)

        datasets = await self._pages(page, "datasets", f"listing the datasets of {self.scope}", retrier)
        names = [str(body["name"]) for body in datasets]
        contents = await asyncio.gather(*(self._stores(name, "dicomStores", retrier) for name in names))
        found: list[Found] = []
        for dataset, stores in zip(names, contents, strict=True):
            marks = set()
            owned = False
            for store in stores:
                labels = store.get("labels") or {}
                plan, env = labels.get(PLAN_LABEL), labels.get(ENV_LABEL)
                marks.add((plan, env))
                if not (plan and env):
                    continue
                owned = owned or labels.get(DATASET_LABEL) == "owned"
                name = parse_name(str(store["name"]), require_store=True)
                found.append(Found(self.cloud, self.scope, "dicom_store", str(name.store), name.name, plan, env,
                                   parse_created(labels.get(CREATED_LABEL)), {"name": name}))
            if owned and len(marks) == 1:
                plan, env = next(iter(marks))
                dataset_id = dataset.rsplit("/", 1)[-1]
                found.append(Found(self.cloud, self.scope, "dataset", dataset_id, dataset, str(plan), str(env), None,
                                   {"name": parse_name(dataset)}))
        return found

    async def teardown(self, environment: Environment, retrier: Retrier, progress: Progress) -> Teardown:
        """The engine's destroy of the environment's stores, then of its datasets that hold nothing else."""
        key = environment.key
        found: dict[str, tuple[Found, DatasetResource | DicomStoreResource]] = {}
        for item in environment.resources:
            name: HealthcareName = item.detail["name"]
            resource: DatasetResource | DicomStoreResource
            if item.kind == "dataset":
                resource = DatasetResource(self.client, name, create=True, plan_name=key.plan, env=key.env)
            else:
                resource = DicomStoreResource(self.client, name, plan_name=key.plan, env=key.env)
            found[resource.address] = (item, resource)
        for _, store in found.values():
            if isinstance(store, DicomStoreResource):  # a store goes before its dataset, when both go
                dataset = f"gcp.dataset[{store.name.dataset}]"
                store.depends_on = (dataset,) if dataset in found else ()
        done = Teardown()
        steps = []
        for _, member in found.values():
            action: Action = Delete()
            if isinstance(member, DatasetResource):
                _, left = await retrier.call(member.contents, what=f"listing {member.label}",
                                             limit=member.timeouts.read, progress=progress)
                if left:  # deleting a dataset deletes everything in it
                    done.kept.append(f"dataset {member.name.dataset}: still holds {', '.join(left[:3])}"
                                     f"{' ...' if len(left) > 3 else ''}")
                    action = NoOp("holds what this environment does not own")
            steps.append(Step(member, action, {"name": member.name.name}))
        engine = Engine([r for _, r in found.values()], concurrency=TEARDOWN_CONCURRENCY,
                        on_event=retrier.events(progress))
        outcome = await engine.destroy(Plan(steps))
        done.deleted = [found[step.resource.address][0] for step in outcome.done]
        return done


#: deletes in flight at once within one environment
TEARDOWN_CONCURRENCY = 8


def gc_places(call: GcCall, *, gcp_project: str | None, gcp_location: list[str] | None) -> list[Inventory]:
    """Google Cloud is searched in each --gcp-location of --gcp-project (or GOOGLE_CLOUD_PROJECT, or the
    sandbox's project): datasets live in one location each (the options are declared in `provision.gcp.target`)."""
    locations = tuple(dict.fromkeys(loc.strip() for loc in gcp_location or () if loc.strip()))
    sandbox = call.connection.sandbox
    project = (gcp_project or "").strip() or (sandbox.gcp_project if sandbox is not None else None)
    if not locations:
        if call.required:
            raise ConfigurationError("--cloud gcp: no location to search", hint="pass --gcp-location (repeatable)")
        return []
    if not project:
        raise ConfigurationError("no Google Cloud project to search",
                                 hint="pass --gcp-project or set GOOGLE_CLOUD_PROJECT")
    checks = [("--gcp-project (or GOOGLE_CLOUD_PROJECT)", v.check_gcp_project, project)]
    checks += [("--gcp-location", v.check_gcp_location, location) for location in locations]
    for flag, check, value in checks:
        try:
            check(value)
        except ValueError as error:
            raise ConfigurationError(f"{flag}: {error}") from None
    return [GcpInventory(open_client(call.connection), project, location) for location in locations]
