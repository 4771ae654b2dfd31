"""Entra ID objects through Microsoft Graph: the viewer's app registration, its service principal, admin
consent for the DICOM scope, the tenant's "Azure API for DICOM" principal, and read-only principal lookups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from provision.azure import normalise
from provision.azure.normalise import DICOM_API_APP_ID, DICOM_SCOPE, is_guid
from provision.azure.ownership import CREATED_TAG, owner_in_graph_tags
from provision.azure.plan import AzureApp
from provision.azure.resources.base import Azure, AzureResource, known, outputs_of
from provision.core import UNKNOWN, Compare, Context, FieldPolicy, TemporaryError, Timeouts, Update, with_retry
from provision.core.gc import parse_created
from provision.core.polling import wait_gone
from provision.errors import CloudError

GRAPH_TIMEOUTS = Timeouts(read=120.0, create=10 * 60.0, update=10 * 60.0, delete=10 * 60.0)


class DicomApiPrincipal(AzureResource):
    """The tenant's service principal of the first-party "Azure API for DICOM" app.

    Created from its appId when the tenant never used DICOM. It is shared by every DICOM consumer in the tenant,
    so destroy keeps it. Its `Dicom.ReadWrite` scope id is resolved here at run time.
    """

    kind = "azure.dicom_api_principal"
    timeouts = GRAPH_TIMEOUTS

    def __init__(self, azure: Azure) -> None:
        super().__init__(azure, "Azure API for DICOM")

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"app_id": DICOM_API_APP_ID}

    def kept_on_destroy(self, actual: dict[str, Any]) -> str | None:
        return "kept: the tenant's Azure API for DICOM principal serves every DICOM client"

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        bodies = await self.azure.graph.find_service_principals(DICOM_API_APP_ID)
        if not bodies:
            return None
        principal = normalise.service_principal(oldest(bodies))
        if DICOM_SCOPE not in principal["scopes"]:
            raise CloudError(
                f"the tenant's Azure API for DICOM service principal ({principal['id']}) offers no "
                f"{DICOM_SCOPE} scope"
            )
        return principal

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        # the engine has just read that there is none; a racing run's "already exists" is read again
        await self.azure.graph.create_service_principal(DICOM_API_APP_ID)
        return None  # read it back: the scope list is what matters

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        scopes = actual.get("scopes")
        return {
            "id": actual.get("id"),
            "scope_id": scopes.get(DICOM_SCOPE) if isinstance(scopes, Mapping) else UNKNOWN,
        }


def app_spec(app: AzureApp, scope_id: Any) -> dict[str, Any]:
    """The managed fields of the viewer app (the plan's `azure.app`) in the normaliser's shape.

    Both platforms are managed so switching the flow leaves nothing behind: `spa` = authorization code + PKCE,
    `implicit` = web redirect URIs with ID and access token issuance.
    """
    spa = app.flow == "spa"
    uris = sorted(app.redirect_uris)
    spec: dict[str, Any] = {
        "display_name": app.display_name,
        "sign_in_audience": app.sign_in_audience,
        "spa_redirect_uris": uris if spa else [],
        "web_redirect_uris": [] if spa else uris,
        "id_token_issuance": not spa,
        "access_token_issuance": not spa,
        "permissions": [normalise.permission(DICOM_API_APP_ID, scope_id)] if known(scope_id) else UNKNOWN,
    }
    if app.logout_redirect_uri:
        spec["logout_url"] = app.logout_redirect_uri
    return spec


class Application(AzureResource):
    """The viewer's app registration, found and written through its `uniqueName` (never a duplicate)."""

    kind = "azure.app"
    schema: ClassVar[Mapping[str, FieldPolicy]] = {
        "spa_redirect_uris": FieldPolicy(compare=Compare.SET),
        "web_redirect_uris": FieldPolicy(compare=Compare.SET),
        "permissions": FieldPolicy(compare=Compare.SET_CASEFOLD),
    }
    timeouts = GRAPH_TIMEOUTS

    def __init__(self, azure: Azure, unique_name: str, *, app: AzureApp | None, dicom_api_address: str | None) -> None:
        """`app` is the plan's declaration; None for an app found by `provision gc`, which only deletes it."""
        super().__init__(azure, unique_name, (dicom_api_address,) if dicom_api_address else ())
        self.app = app
        self.dicom_api_address = dicom_api_address
        #: permission (`{resourceAppId}/{id}/{type}`) -> its name, as learnt from the DICOM API's principal
        self._permission_names: dict[str, str] = {}

    def desired(self, ctx: Context) -> dict[str, Any]:
        if self.app is None or self.dicom_api_address is None:
            return {}
        scope_id = ctx.inputs(self.dicom_api_address).get("scope_id")
        if known(scope_id):
            self._permission_names[normalise.permission(DICOM_API_APP_ID, str(scope_id))] = (
                f"{DICOM_SCOPE} (Azure API for DICOM, delegated)")
        return app_spec(self.app, scope_id)

    def shown(self, path: str, value: Any) -> Any:
        if path == "permissions" and isinstance(value, list):
            return [self._permission_names.get(str(item).lower(), item) for item in value]
        return value

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        body = await self.azure.graph.get_application(self.name)
        return None if body is None else normalise.application(body)

    def _write(self, desired: dict[str, Any], tags: list[str]) -> dict[str, Any]:
        return {**desired, "tags": tags, "notes": self.azure.owner.notes()}

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        tags = [*self.azure.owner.graph_tags(), self.azure.owner.created_graph_tag()]
        body = await self.azure.graph.upsert_application(self.name, self._write(desired, tags))
        return None if body is None else normalise.application(body)

    async def update(
        self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any], action: Update
    ) -> dict[str, Any] | None:
        tags = self.azure.owner.merged_graph_tags(actual.get("tags"))
        body = await self.azure.graph.upsert_application(self.name, self._write(desired, tags))
        return None if body is None else normalise.application(body)  # 204: the engine reads it back

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        await self.azure.graph.delete_application(self.name)
        await wait_gone(f"app {self.name}", lambda: self.azure.graph.get_application(self.name), ctx.progress)

    def owned(self, actual: dict[str, Any]) -> bool:
        return self.azure.owner.owns_graph_tags(actual.get("tags"))

    def owner_of(self, actual: dict[str, Any]) -> str | None:
        return owner_in_graph_tags(actual.get("tags"))

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return outputs_of(actual, "id", "app_id", "unique_name")


def created_at(body: Mapping[str, Any]) -> float:
    """When a directory object was created, as far as can be told: the time the tool wrote in its created tag
    (`provision-created:T`, microseconds), else Graph's `createdDateTime`; infinity when unknown."""
    for tag in body.get("tags") or []:
        if isinstance(tag, str) and tag.startswith(f"{CREATED_TAG}:"):
            moment = parse_created(tag.split(":", 1)[1])
            if moment is not None:
                return moment.timestamp()
    moment = parse_created(body.get("createdDateTime"))
    return moment.timestamp() if moment is not None else float("inf")


def oldest(bodies: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The one of several service principals of an app that every run keeps: the oldest (the object id breaks
    ties). A run sees its own new principal only once the directory has replicated it, and an older one by then
    too, so each run of a race picks the same one."""
    return min(bodies, key=lambda body: (created_at(body), str(body.get("id"))))


class AppPrincipal(AzureResource):
    """The viewer app's service principal in the tenant (what consent and role assignments refer to).

    One per app: when runs at the same time each got one through (Graph may let that happen while it replicates),
    the oldest is kept and the run whose principal is younger deletes its own before anything refers to it;
    any left over (a run stopped in between) shows as `duplicates` and is deleted by the next apply.
    """

    kind = "azure.app_principal"
    schema: ClassVar[Mapping[str, FieldPolicy]] = {
        "app_id": FieldPolicy(compare=Compare.CASEFOLD, force_new=True),
        "duplicates": FieldPolicy(compare=Compare.SET),
    }
    timeouts = GRAPH_TIMEOUTS

    def __init__(self, azure: Azure, name: str, *, app_address: str) -> None:
        super().__init__(azure, name, (app_address,))
        self.app_address = app_address

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"app_id": ctx.inputs(self.app_address).get("app_id"), "duplicates": []}

    def _normalised(self, bodies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        keep = oldest(bodies)
        principal = normalise.service_principal(keep)
        owner = self.azure.owner
        principal["duplicates"] = sorted(
            str(body["id"]) for body in bodies
            if body is not keep and owner.owns_graph_tags(body.get("tags")) and created_at(body) < float("inf")
        )
        return principal

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        app_id = ctx.inputs(self.app_address).get("app_id")
        if not known(app_id):
            return None
        bodies = await self.azure.graph.find_service_principals(str(app_id))
        return self._normalised(bodies) if bodies else None

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        graph, owner, app_id = self.azure.graph, self.azure.owner, desired["app_id"]
        # the engine has just read that there is none (and reads again before any retry): POST
        created = await graph.create_service_principal(
            app_id, tags=[*owner.graph_tags(), owner.precise_created_graph_tag()], notes=owner.notes()
        )
        ours = str(created.get("id") or "")
        if not ours:
            return None
        bodies = await self._listed(app_id, ours, ctx)
        keep = oldest(bodies)
        if keep.get("id") != ours:
            # a run at the same time created one first: delete ours before consent or a role refers to it
            await self._delete_principal(ours, ctx)
            bodies = [body for body in bodies if body.get("id") != ours]
        return self._normalised(bodies)

    async def _listed(self, app_id: str, ours: str, ctx: Context) -> list[dict[str, Any]]:
        """The app's principals once the directory lists the one just created (replication)."""

        async def listing() -> list[dict[str, Any]]:
            bodies = await self.azure.graph.find_service_principals(app_id)
            if not any(body.get("id") == ours for body in bodies):
                raise TemporaryError(f"service principal {ours} is not listed yet (directory replication)",
                                     routine=True)
            return bodies

        return await with_retry(listing, what=f"listing the service principals of app {app_id}",
                                limit=self.timeouts.read, base=0.2, cap=2.0)

    async def _delete_principal(self, object_id: str, ctx: Context) -> None:
        await self.azure.graph.delete_service_principal(object_id)
        await wait_gone(
            f"service principal {object_id}",
            lambda: self.azure.graph.get_service_principal(object_id),
            ctx.progress,
        )

    async def update(
        self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any], action: Update
    ) -> dict[str, Any] | None:
        for duplicate in actual.get("duplicates") or []:
            await self._delete_principal(duplicate, ctx)
        if not self.owned(actual):  # adoption: mark it as the plan's
            await self.azure.graph.update_service_principal_tags(
                actual["id"], self.azure.owner.merged_graph_tags(actual.get("tags"))
            )
        return None

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        for object_id in [actual["id"], *(actual.get("duplicates") or [])]:
            await self._delete_principal(object_id, ctx)

    def owned(self, actual: dict[str, Any]) -> bool:
        return self.azure.owner.owns_graph_tags(actual.get("tags"))

    def owner_of(self, actual: dict[str, Any]) -> str | None:
        return owner_in_graph_tags(actual.get("tags"))

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        tags = actual.get("tags")
        owned = self.owned(actual) if isinstance(tags, list) else UNKNOWN
        return {**outputs_of(actual, "id", "app_id"), "owned": owned, "principal_type": "ServicePrincipal"}


class AdminConsent(AzureResource):
    """Tenant-wide consent (an `AllPrincipals` oauth2PermissionGrant) of the app for `Dicom.ReadWrite`.

    A grant carries no tags: it belongs to the plan when its client, the app's principal, does.
    """

    kind = "azure.admin_consent"
    schema: ClassVar[Mapping[str, FieldPolicy]] = {
        "client_id": FieldPolicy(compare=Compare.CASEFOLD, force_new=True),
        "resource_id": FieldPolicy(compare=Compare.CASEFOLD, force_new=True),
        "scopes": FieldPolicy(compare=Compare.SET),
    }
    timeouts = GRAPH_TIMEOUTS

    def __init__(self, azure: Azure, name: str, *, principal_address: str, dicom_api_address: str) -> None:
        super().__init__(azure, name, (principal_address, dicom_api_address))
        self.principal_address = principal_address
        self.dicom_api_address = dicom_api_address

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {
            "client_id": ctx.inputs(self.principal_address).get("id"),
            "resource_id": ctx.inputs(self.dicom_api_address).get("id"),
            "consent_type": "AllPrincipals",
            "scopes": [DICOM_SCOPE],
        }

    async def _find(self, client_id: str, resource_id: str) -> dict[str, Any] | None:
        for body in await self.azure.graph.list_grants(client_id):
            grant = normalise.permission_grant(body)
            if grant["consent_type"] == "AllPrincipals" and (grant["resource_id"] or "").lower() == resource_id.lower():
                return grant
        return None

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        principal = ctx.inputs(self.principal_address)
        client_id, resource_id = principal.get("id"), ctx.inputs(self.dicom_api_address).get("id")
        if not known(client_id, resource_id):
            return None
        grant = await self._find(str(client_id), str(resource_id))
        if grant is not None:
            grant["client_owned"] = principal.get("owned") is not False
        return grant

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        # the engine has just read that there is none, and reads again before any retry (a lost answer); a run
        # at the same time may POST it first: "Permission entry already exists" is read again (graph.py)
        await self.azure.graph.create_grant(
            client_id=desired["client_id"], resource_id=desired["resource_id"], scope=" ".join(desired["scopes"])
        )
        return None

    async def update(
        self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any], action: Update
    ) -> dict[str, Any] | None:
        await self.azure.graph.update_grant(actual["id"], " ".join(desired["scopes"]))
        return None

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        await self.azure.graph.delete_grant(actual["id"])
        await wait_gone(
            f"consent grant {actual['id']}",
            lambda: self._find(str(actual["client_id"]), str(actual["resource_id"])),
            ctx.progress,
        )

    def owned(self, actual: dict[str, Any]) -> bool:
        return bool(actual.get("client_owned", True))

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return outputs_of(actual, "id")


# --- principals the plan refers to but does not manage ---------------------------------------------------------


class UserPrincipal(AzureResource):
    """A user by object id, userPrincipalName, or e-mail (one request either way)."""

    kind = "azure.user"
    managed = False

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {}

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        if is_guid(self.name):
            body = await self.azure.graph.get_user(self.name)
            return None if body is None else normalise.user(body)
        users = [normalise.user(body) for body in await self.azure.graph.find_users(self.name)]
        wanted = self.name.casefold()
        by_upn = [u for u in users if (u["user_principal_name"] or "").casefold() == wanted]
        matches = by_upn or users
        if len(matches) > 1:
            raise CloudError(
                f"{len(matches)} users have the e-mail address {self.name}",
                hint="name the user by userPrincipalName in the plan",
            )
        return matches[0] if matches else None

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return {**outputs_of(actual, "id"), "principal_type": "User"}


class GroupPrincipal(AzureResource):
    kind = "azure.group"
    managed = False

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {}

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        body = await self.azure.graph.get_group(self.name)
        return None if body is None else normalise.group(body)

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return {**outputs_of(actual, "id"), "principal_type": "Group"}


class ServicePrincipalRef(AzureResource):
    kind = "azure.service_principal"
    managed = False

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {}

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        body = await self.azure.graph.get_service_principal(self.name)
        return None if body is None else normalise.service_principal(body)

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return {**outputs_of(actual, "id"), "principal_type": "ServicePrincipal"}
