"""Everything in one Google Cloud project and location that carries provision's labels, and the teardown of one
environment's share of it. The reaper's (`provision gc`) view of Cloud Healthcare.

- **DICOM stores** are found by their labels `provision-plan` and `provision-env` (every dataset's stores are
  listed); their creation time is the label `provision-created` the tool writes on create.
- **Datasets** cannot carry labels. A dataset belongs to an environment when its stores say so: every DICOM
  store in it carries the environment's labels and at least one says `provision-dataset=owned` (the plan
  declared `dataset.create: true`). A dataset the plan only uses (`create: false`) is never deleted.

Teardown deletes the environment's stores (their IAM policies go with them), then each of its datasets after
checking, right before the delete, that nothing is left in it: no DICOM store, and no FHIR, HL7v2 or consent
store (deleting a dataset deletes all its data). A dataset that still holds something is kept and reported.
The client, its error classes and retries are the GCP target's own (`HealthcareClient`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from provision.core.target import TargetOptions
from provision.gcp.client import HealthcareClient, NotFound, open_client
from provision.gcp.names import CREATED_LABEL, DATASET_LABEL, ENV_LABEL, PLAN_LABEL, HealthcareName, parse_name
from provision.gcp.resources import DatasetResource, DicomStoreResource, datasets_api
from provision.reaper.model import Environment, Found, parse_created
from provision.reaper.run import Progress, Retrier, Teardown

__all__ = ["GcpInventory", "open_inventory"]

Body = dict[str, Any]

#: the store kinds a dataset can hold besides DICOM stores
OTHER_STORES = ("fhirStores", "hl7V2Stores", "consentStores")


class GcpInventory:
    """Implements `provision.reaper.run.Inventory` for one project and location."""

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

    async def _delete_dataset(self, name: HealthcareName) -> None:
        try:
            await self.client.call(lambda service: datasets_api(service).delete(name=name.name),
                                   f"deleting dataset {name.name}")
        except NotFound:
            return

    async def teardown(self, environment: Environment, retrier: Retrier, progress: Progress) -> Teardown:
        done = Teardown()

        async def delete_store(item: Found) -> None:
            name: HealthcareName = item.detail["name"]
            progress(f"deleting DICOM store {name.store}")

            async def call() -> None:
                try:
                    await self.client.call(lambda s: datasets_api(s).dicomStores().delete(name=name.name),
                                           f"deleting DICOM store {name.name}")
                except NotFound:
                    return

            await retrier.call(call, what=f"deleting DICOM store {name.store}",
                               limit=DicomStoreResource.timeouts.delete, progress=progress)
            done.deleted.append(item)

        await asyncio.gather(*(delete_store(item) for item in environment.of_kind("dicom_store")))

        for item in environment.of_kind("dataset"):
            name: HealthcareName = item.detail["name"]
            left: list[str] = []
            for kind in ("dicomStores", *OTHER_STORES):
                stores = await self._stores(name.name, kind, retrier)
                left += [f"{kind}/{store['name'].rsplit('/', 1)[-1]}" for store in stores]
            if left:
                done.kept.append(f"dataset {name.dataset}: still holds {', '.join(left[:3])}"
                                 f"{' ...' if len(left) > 3 else ''}")
                continue
            progress(f"deleting dataset {name.dataset}")
            await retrier.call(functools.partial(self._delete_dataset, name), what=f"deleting dataset {name.dataset}",
                               limit=DatasetResource.timeouts.delete, progress=progress)
            done.deleted.append(item)
        return done


def open_inventory(*, project: str, location: str, sandbox: Any = None, ca_bundle: Any = None) -> GcpInventory:
    """A Healthcare client for the project (the sandbox's endpoint when `sandbox` is given, else Google with
    Application Default Credentials: a user login, a key file, or an external account in CI)."""
    parse_name(f"projects/{project}/locations/{location}/datasets/x")  # refuses a malformed project or location
    client = open_client(TargetOptions(sandbox=sandbox, ca_bundle=ca_bundle))
    return GcpInventory(client, project, location)
