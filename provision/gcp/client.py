"""The Cloud Healthcare API v1 client: google-api-python-client with the bundled discovery document.

- `build("healthcare", "v1", static_discovery=True)` needs no network; `api_endpoint` points it at the sandbox.
- The client is synchronous (httplib2). Engine operations are async, so every call runs in a worker thread
  (`asyncio.to_thread`) with that thread's own `httplib2.Http` (httplib2 is not thread-safe); all of them share
  one google-auth credentials object.
- Errors are `google.rpc.Status` bodies. They are classified once, here: temporary (429, 5xx, 409 ABORTED,
  the 404 "dataset not initialized" window, dropped connections) become `TemporaryError` so the engine retries
  with backoff; everything else becomes a permanent `CloudError` subclass.

Google libraries are imported lazily so that `provision --help` stays fast.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.core import TemporaryError
from provision.core.target import Connection, SandboxEndpoints
from provision.errors import CloudError, ConfigurationError

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_ENDPOINT = "https://healthcare.googleapis.com/"
TEMPORARY_STATUS = {429, 500, 502, 503, 504}


class NotFound(CloudError):
    """404 NOT_FOUND (and not the transient "dataset not initialized")."""


class AlreadyExists(CloudError):
    """409 ALREADY_EXISTS."""


@dataclass(frozen=True)
class RpcStatus:
    code: int
    status: str
    message: str

    @classmethod
    def from_http_error(cls, error: Any) -> RpcStatus:
        """Read the `google.rpc.Status` body of a `googleapiclient.errors.HttpError` (tolerating other bodies:
        a proxy's HTML page, an error without `status`)."""
        code = int(getattr(error.resp, "status", 0) or 0)
        raw = error.content if isinstance(error.content, bytes) else str(error.content or "").encode()
        status, message = "", ""
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            body = None
        payload = body.get("error") if isinstance(body, dict) else None
        if isinstance(payload, dict):
            status = str(payload.get("status") or "")
            message = str(payload.get("message") or "")
        elif isinstance(payload, str):  # OAuth-style {"error": "...", "error_description": "..."}
            message = f"{payload}: {body.get('error_description', '')}" if isinstance(body, dict) else payload
        else:
            message = raw[:200].decode("utf-8", "replace")
        return cls(code, status, message or str(getattr(error, "reason", "") or ""))


def classify(error: Any, what: str) -> Exception:
    """Turn an HttpError into the tool's error classes (returned, for the caller to raise)."""
    rpc = RpcStatus.from_http_error(error)
    text = f"{what}: {rpc.code} {rpc.status or ''} {rpc.message}".replace("  ", " ").strip()
    retry_after = None
    header = getattr(error.resp, "get", lambda _k, _d=None: None)("retry-after")
    if header:
        try:
            retry_after = float(header)
        except ValueError:
            retry_after = None
    if rpc.code in TEMPORARY_STATUS:
        return TemporaryError(text, retry_after=retry_after, throttled=rpc.code == 429)
    if rpc.code == 409 and rpc.status == "ABORTED":
        return TemporaryError(f"{text} (redoing the whole read-modify-write)")
    if rpc.code == 404 and "not initialized" in rpc.message.lower():
        return TemporaryError(f"waiting for the new dataset to become usable ({text})", routine=True)
    if rpc.code == 404:
        return NotFound(text)
    if rpc.code == 409 and rpc.status == "ALREADY_EXISTS":
        return AlreadyExists(text)
    if rpc.code == 401:
        return CloudError(text, hint="the access token was refused: check the Google credentials in use")
    if rpc.code == 403:
        return CloudError(
            text,
            hint="the caller lacks a permission (e.g. roles/healthcare.datasetAdmin and "
            "roles/healthcare.dicomStoreAdmin), or the Cloud Healthcare API is not enabled in the project",
        )
    return CloudError(text)


def _transport_error(error: BaseException, what: str) -> Exception:
    if isinstance(error, ssl.SSLError):
        return ConfigurationError(
            f"{what}: TLS failed: {error}", hint="pass --ca-bundle if a proxy re-signs TLS traffic"
        )
    return TemporaryError(f"{what}: connection problem: {error.__class__.__name__}: {error}")


class HealthcareClient:
    """A thread-safe facade over the discovery client; `await client.call(lambda s: s.projects()..., what)`."""

    def __init__(
        self,
        *,
        credentials: Any,
        endpoint: str = DEFAULT_ENDPOINT,
        ca_certs: str | Path | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        self.credentials = credentials
        self.ca_certs = str(ca_certs) if ca_certs else None
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._https: list[Any] = []
        self._closed = False
        from googleapiclient.discovery import build

        self.service = build(
            "healthcare",
            "v1",
            http=self._http(),
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": self.endpoint},
        )

    @property
    def api_base(self) -> str:
        """`https://healthcare.googleapis.com/v1` (or the sandbox's equivalent)."""
        return self.endpoint + "v1"

    def _http(self) -> Any:
        http = getattr(self._local, "http", None)
        if http is None:
            import google_auth_httplib2
            import httplib2

            raw = httplib2.Http(ca_certs=self.ca_certs, timeout=self.timeout)
            http = google_auth_httplib2.AuthorizedHttp(self.credentials, http=raw)
            self._local.http = http
            with self._lock:
                self._https.append(raw)
        return http

    def _execute(self, make: Callable[[Any], Any], what: str) -> Any:
        from google.auth import exceptions as auth_errors
        from googleapiclient.errors import HttpError

        try:
            return make(self.service).execute(http=self._http(), num_retries=0)
        except HttpError as error:
            raise classify(error, what) from None
        except auth_errors.RefreshError as error:
            if getattr(error, "retryable", False):
                raise TemporaryError(f"{what}: the token endpoint failed: {error}") from None
            raise ConfigurationError(
                f"{what}: could not obtain a Google access token: {error}",
                hint="run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS",
            ) from None
        except auth_errors.TransportError as error:
            raise TemporaryError(f"{what}: token endpoint unreachable: {error}") from None
        except (OSError, ConnectionError) as error:
            raise _transport_error(error, what) from None
        except Exception as error:  # httplib2's own exceptions have no common, importable-cheaply base
            import httplib2

            if isinstance(error, httplib2.HttpLib2Error):
                raise _transport_error(error, what) from None
            raise

    async def call(self, make: Callable[[Any], Any], what: str) -> Any:
        """Build the request from the service in a worker thread, execute it there, return the JSON body."""
        if self._closed:
            raise RuntimeError("the Healthcare client is closed")
        return await asyncio.to_thread(self._execute, make, what)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            https, self._https = self._https, []
        for http in https:
            http.close()


def sandbox_credentials(sandbox: SandboxEndpoints) -> Any:
    """User credentials with a refresh token, refreshed at the sandbox's own OAuth token endpoint.

    This is the `authorized_user` kind of Application Default Credentials (`gcloud auth application-default
    login`), with `token_uri` pointing at the sandbox instead of oauth2.googleapis.com.
    """
    from google.oauth2.credentials import Credentials

    adc = sandbox.google_adc
    return Credentials(
        None,
        refresh_token=adc["refresh_token"],
        token_uri=adc["token_uri"],
        client_id=adc["client_id"],
        client_secret=adc["client_secret"],
        scopes=[CLOUD_PLATFORM_SCOPE],
    )


def default_credentials() -> Any:
    """Application Default Credentials with the cloud-platform scope."""
    import google.auth
    from google.auth import exceptions as auth_errors

    try:
        credentials, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except auth_errors.DefaultCredentialsError as error:
        raise ConfigurationError(
            f"no Google credentials: {error}",
            hint="run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS",
        ) from None
    return credentials


def open_client(connection: Connection, *, endpoint: str | None = None, credentials: Any = None) -> HealthcareClient:
    """A client for the sandbox (`connection.sandbox`), or for Google with ADC; both can be overridden."""
    sandbox = connection.sandbox
    if sandbox is not None:
        return HealthcareClient(
            credentials=credentials or sandbox_credentials(sandbox),
            endpoint=endpoint or sandbox.url,
            ca_certs=connection.ca_bundle or sandbox.ca_bundle,
        )
    return HealthcareClient(
        credentials=credentials or default_credentials(),
        endpoint=endpoint or DEFAULT_ENDPOINT,
        ca_certs=connection.ca_bundle,
    )


__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "DEFAULT_ENDPOINT",
    "AlreadyExists",
    "HealthcareClient",
    "NotFound",
    "RpcStatus",
    "classify",
    "default_credentials",
    "open_client",
    "sandbox_credentials",
]
