"""Pure functions from provisioned facts to OHIF 3.x configuration (see shared facts/ohif.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from provision.core.files import PUBLIC, write_atomically

DICOMWEB_NAMESPACE = "@ohif/extension-default.dataSourcesModule.dicomweb"
GOOGLE_AUTHORITY = "https://accounts.google.com"
GOOGLE_SCOPE = (
    "email profile openid https://www.googleapis.com/auth/cloudplatformprojects.readonly "
    "https://www.googleapis.com/auth/cloud-healthcare"
)
GOOGLE_REVOKE_URI = "https://accounts.google.com/o/oauth2/revoke?token="
GOOGLE_DICOMWEB_BASE = "https://healthcare.googleapis.com/v1"

#: keys no OHIF output may ever carry (the tool never writes secrets)
FORBIDDEN_KEYS = frozenset({"client_secret", "access_token", "refresh_token", "password"})


def viewer_origin(viewer_url: str) -> str:
    parts = urlsplit(viewer_url)
    return f"{parts.scheme}://{parts.netloc}"


def router_basename(viewer_url: str) -> str:
    path = urlsplit(viewer_url).path.rstrip("/")
    return path or "/"


def azure_oidc(
    *,
    login_host: str,
    tenant_id: str,
    client_id: str,
    dicom_audience: str,
    flow: str,
    redirect_uri: str,
    post_logout_redirect_uri: str | None = None,
) -> dict[str, Any]:
    """`oidc[0]` for an Entra ID app: PKCE code flow (`spa`) or the legacy implicit flow."""
    block: dict[str, Any] = {
        "authority": f"{login_host.rstrip('/')}/{tenant_id}/v2.0/",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code" if flow == "spa" else "id_token token",
        "scope": f"openid {dicom_audience.rstrip('/')}/Dicom.ReadWrite",
        "loadUserInfo": False,
        "automaticSilentRenew": True,
        "revokeAccessTokenOnSignout": True,
    }
    if post_logout_redirect_uri:
        block["post_logout_redirect_uri"] = post_logout_redirect_uri
    return block


def dicomweb_source(
    *, source_name: str, friendly_name: str, root: str, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A dicomweb data source with settings known to work with cloud DICOM services."""
    configuration: dict[str, Any] = {
        "friendlyName": friendly_name,
        "name": source_name,
        "qidoRoot": root,
        "wadoRoot": root,
        "wadoUriRoot": root,
        "qidoSupportsIncludeField": True,
        "imageRendering": "wadors",
        "thumbnailRendering": "wadors",
        "enableStudyLazyLoad": True,
        "supportsFuzzyMatching": False,
        "supportsWildcard": False,
        "omitQuotationForMultipartRequest": True,
        "dicomUploadEnabled": True,
        "supportsStow": True,
        "singlepart": "bulkdata,video,pdf",
        "bulkDataURI": {"enabled": True, "relativeResolution": "studies"},
    }
    configuration.update(extra or {})
    return {"namespace": DICOMWEB_NAMESPACE, "sourceName": source_name, "configuration": configuration}


def azure_data_source(*, source_name: str, friendly_name: str, service_url: str) -> dict[str, Any]:
    """Azure DICOM service: DICOMweb lives under `{serviceUrl}/v2`."""
    return dicomweb_source(source_name=source_name, friendly_name=friendly_name, root=f"{service_url.rstrip('/')}/v2")


def google_dicomweb_root(store_name: str, base: str = GOOGLE_DICOMWEB_BASE) -> str:
    """`store_name` is `projects/P/locations/L/datasets/D/dicomStores/S`."""
    return f"{base.rstrip('/')}/{store_name}/dicomWeb"


def google_oidc(*, client_id: str, redirect_uri: str, authority: str = GOOGLE_AUTHORITY) -> dict[str, Any]:
    """`oidc[0]` for Google sign-in (OHIF's google.js); `authority` is accounts.google.com except against the
    sandbox, which plays it at `{url}/google` (and revokes there too)."""
    revoke = GOOGLE_REVOKE_URI if authority == GOOGLE_AUTHORITY else f"{authority}/o/oauth2/revoke?token="
    return {
        "authority": authority,
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "id_token token",
        "scope": GOOGLE_SCOPE,
        "post_logout_redirect_uri": "/logout-redirect.html",
        "revoke_uri": revoke,
        "automaticSilentRenew": True,
        "revokeAccessTokenOnSignout": True,
    }


def google_data_source(
    *,
    source_name: str,
    friendly_name: str,
    store_name: str,
    base: str = GOOGLE_DICOMWEB_BASE,
    dataset_browser: bool = False,
) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if dataset_browser:
        extra["configurationAPI"] = "ohif.dataSourceConfigurationAPI.google"
    return dicomweb_source(
        source_name=source_name, friendly_name=friendly_name, root=google_dicomweb_root(store_name, base), extra=extra
    )


def ohif_document(oidc: Iterable[Mapping[str, Any]], data_sources: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The `ohif.json` document: `{"oidc": [...], "dataSources": [...]}`."""
    document = {"oidc": [dict(b) for b in oidc], "dataSources": [dict(s) for s in data_sources]}
    _refuse_secrets(document)
    return document


def app_config(document: Mapping[str, Any], *, viewer_url: str | None = None) -> dict[str, Any]:
    """A complete `window.config` for OHIF 3.x built around the oidc and dataSources blocks."""
    sources = list(document["dataSources"])
    config: dict[str, Any] = {
        "routerBasename": router_basename(viewer_url) if viewer_url else "/",
        "showStudyList": True,
        "extensions": [],
        "modes": [],
        "maxNumberOfWebWorkers": 3,
        "showWarningMessageForCrossOrigin": True,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "investigationalUseDialog": {"option": "never"},
        "defaultDataSourceName": sources[0]["sourceName"] if sources else None,
        "dataSources": sources,
    }
    if document.get("oidc"):
        config["oidc"] = list(document["oidc"])
    _refuse_secrets(config)
    return config


def render_app_config_js(config: Mapping[str, Any]) -> str:
    body = json.dumps(config, indent=2, sort_keys=False)
    return (
        "/** Written by provision. Edit the plan file and run `provision ... apply` instead of editing this. */\n"
        f"window.config = {body};\n"
    )


def _refuse_secrets(value: Any, path: str = "") -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in FORBIDDEN_KEYS:
                raise ValueError(f"refusing to write a secret ({path}{key}) into OHIF output")
            _refuse_secrets(item, f"{path}{key}.")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_secrets(item, f"{path}{index}.")


def write_outputs(out_dir: Path, document: Mapping[str, Any], *, viewer_url: str | None = None,
                  config: Mapping[str, Any] | None = None) -> list[Path]:
    """Write `ohif.json` and `app-config.js` (`config`, else one built around `document`) atomically, readable
    by a web server (mode 0644: they hold no secret); returns the paths written."""
    ohif_json = out_dir / "ohif.json"
    app_js = out_dir / "app-config.js"
    if config is not None:
        _refuse_secrets(config)
    write_atomically(ohif_json, json.dumps(document, indent=2) + "\n", mode=PUBLIC)
    write_atomically(app_js, render_app_config_js(config or app_config(document, viewer_url=viewer_url)),
                     mode=PUBLIC)
    return [ohif_json, app_js]
