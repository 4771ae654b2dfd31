"""DICOMweb through dicomweb-client: a target's endpoint as typed data, and the client upload and search share.

A target describes its DICOMweb service as an `Endpoint` (base URL, refreshing bearer token, CA trust, QIDO
page size, how to tell which instances of a study are there, how to read a STOW answer); `Client` talks to it.
Around dicomweb-client 0.61 it fixes what would otherwise go wrong:

- **trust**: the system store plus the target's CA bundles in one `ssl.SSLContext` on the connection pool, with
  verification on; `REQUESTS_CA_BUNDLE` (which overrides `Session.verify` in requests) can only add to it;
- **Host**: dicomweb-client sets `Host` to the host name without the port; it is put back (a server that
  builds URLs from `Host`, as the sandbox does, would answer with wrong RetrieveURLs otherwise);
- **retries**: its own retry loop ignores `Retry-After` and resends an already consumed body as 0 bytes when
  the body is larger than its chunk size, so it is switched off; urllib3 retries instead: 429 and 5xx (POST
  included: a STOW sent twice stores nothing twice, see upload.py), honouring `Retry-After`, and counted;
- **tokens**: `BearerToken` asks for a new token shortly before the old one expires, under a lock, and once
  more after a 401;
- **STOW**: `Client.store` posts already-encoded Part 10 bytes as they are (dicomweb-client's public
  `store_instances` decodes and re-encodes every dataset with pydicom: 35 times slower, and the bytes may
  change), with the library's own multipart encoder, and reads the answer whatever its status (dicomweb-client
  raises before reading a 409's body and returns an empty dataset when the Content-Type has parameters).
"""

from __future__ import annotations

import functools
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from provision.errors import CloudError, ConfigurationError, ProvisionError

if TYPE_CHECKING:
    import pydicom

#: (access token, expiry as a Unix time)
TokenSource = Callable[[], tuple[str, float]]
#: ask for a new token this long before the current one expires
REFRESH_MARGIN = 300.0
RETRY_STATUS = (429, 500, 502, 503, 504)
SOP_INSTANCE_UID = "00080018"
STOW_BOUNDARY = "provision-stow-5f0c9e2a"
STOW_CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary="{STOW_BOUNDARY}"'


class BearerToken(requests.auth.AuthBase):
    """`Authorization: Bearer <token>` on every request; a new token `margin` seconds before expiry (thread-safe)."""

    def __init__(self, source: TokenSource, margin: float = REFRESH_MARGIN) -> None:
        self._source = source
        self._margin = margin
        self._lock = threading.Lock()
        self._token = ""
        self._expires = 0.0
        #: how many tokens were fetched (the first, then each refresh)
        self.fetched = 0

    def token(self) -> str:
        with self._lock:
            if time.time() > self._expires - self._margin:
                self._token, self._expires = self._source()
                self.fetched += 1
            return self._token

    def invalidate(self, token: str) -> None:
        """The server refused `token` (401): the next request fetches a new one (unless another thread has)."""
        with self._lock:
            if self._token == token:
                self._expires = 0.0

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request


@dataclass
class RetryCounter:
    """What urllib3 retried, by kind (thread-safe enough: increments under a lock)."""

    throttled: int = 0
    other: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def note(self, status: int | None) -> None:
        with self._lock:
            if status in (429, 503):
                self.throttled += 1
            else:
                self.other += 1


class _CountedRetry(Retry):
    """urllib3's Retry, telling a `RetryCounter` about every retry it makes."""

    counter: RetryCounter | None = None

    def new(self, **kwargs: Any) -> _CountedRetry:
        retry = super().new(**kwargs)
        retry.counter = self.counter
        return retry

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> _CountedRetry:
        retry = super().increment(method, url, response, error, _pool, _stacktrace)  # raises when exhausted
        assert isinstance(retry, _CountedRetry)
        if self.counter is not None:
            self.counter.note(getattr(response, "status", None))
        return retry


class _TrustingAdapter(HTTPAdapter):
    """Connections verified against one SSL context; `Host` carries the port again."""

    def __init__(self, context: ssl.SSLContext, retry: Retry, pool_size: int) -> None:
        self._context = context
        super().__init__(max_retries=retry, pool_connections=2, pool_maxsize=pool_size)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        request.headers["Host"] = urlsplit(request.url).netloc
        return super().send(request, *args, **kwargs)


def ssl_context(ca_bundles: Sequence[Path]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    for bundle in ca_bundles:
        context.load_verify_locations(cafile=str(bundle))
    return context


def trusted_session(ca_bundles: Sequence[Path], *, retry: Retry | None = None, pool_size: int = 4) -> requests.Session:
    """A requests session that verifies TLS against the system store plus `ca_bundles` (e.g. for a token
    endpoint a target's credentials refresh at)."""
    session = requests.Session()
    adapter = _TrustingAdapter(ssl_context(ca_bundles), retry or Retry(total=3, backoff_factor=0.5), pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@dataclass(frozen=True)
class StowAnswer:
    """A STOW-RS response: its status and the response dataset (empty when the body was not DICOM JSON)."""

    status: int
    dataset: pydicom.Dataset
    text: str = ""


@dataclass
class StowOutcome:
    """What a STOW did with each instance sent, by SOP Instance UID."""

    stored: set[str] = field(default_factory=set)
    present: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)


#: classify(answer, SOP Instance UIDs sent) -> what happened to each
Classifier = Callable[[StowAnswer, Sequence[str]], StowOutcome]
#: present(client, study UID) -> the SOP Instance UIDs of that study the service already holds
PresenceCheck = Callable[["Client", str], set[str]]

#: PS3.4 Annex GG and the services' own codes, for messages
FAILURE_REASONS = {
    0x0110: "processing failure",
    0x0112: "no such object instance",
    0x0122: "SOP class not supported",
    0xA700: "out of resources",
    0xA900: "data set does not match SOP class",
    0xA901: "StudyInstanceUID does not match the request",
    0xB00E: "already stored",
    0xB00F: "being stored by another request",
    0xC000: "cannot understand",
}


def failure_text(code: Any) -> str:
    """`FailureReason 43264 (data set does not match SOP class)`."""
    try:
        meaning = FAILURE_REASONS.get(int(code))
    except (TypeError, ValueError):
        meaning = None
    return f"FailureReason {code}" + (f" ({meaning})" if meaning else "")


def referenced(dataset: pydicom.Dataset, keyword: str) -> list[pydicom.Dataset]:
    return list(dataset.get(keyword, None) or [])


def classify_standard(answer: StowAnswer, sent: Sequence[str]) -> StowOutcome:
    """PS3.18 semantics: ReferencedSOPSequence stored (with or without a warning), FailedSOPSequence failed
    with its FailureReason; an instance the answer does not mention failed with the HTTP status."""
    outcome = StowOutcome()
    for item in referenced(answer.dataset, "ReferencedSOPSequence"):
        outcome.stored.add(str(item.get("ReferencedSOPInstanceUID", "")))
    for item in referenced(answer.dataset, "FailedSOPSequence"):
        outcome.failed[str(item.get("ReferencedSOPInstanceUID", ""))] = failure_text(item.get("FailureReason"))
    return account_for(outcome, answer, sent)


def account_for(outcome: StowOutcome, answer: StowAnswer, sent: Sequence[str]) -> StowOutcome:
    """Give every sent instance an outcome: one the answer does not mention has failed (with the reason the
    answer gives for parts without UIDs, if any)."""
    anonymous = outcome.failed.pop("", None)
    known = outcome.stored | outcome.present | set(outcome.failed)
    for uid in sent:
        if uid not in known:
            reason = anonymous or (f"HTTP {answer.status}: not in the STOW response" +
                                   (f" ({answer.text[:200]})" if answer.text else ""))
            outcome.failed[uid] = reason
    for uid in list(outcome.stored | outcome.present | set(outcome.failed)):
        if uid not in sent:  # an answer about something else is not ours to report
            outcome.stored.discard(uid)
            outcome.present.discard(uid)
            outcome.failed.pop(uid, None)
    return outcome


def qido_presence(client: Client, study_uid: str) -> set[str]:
    """The study's SOP Instance UIDs from `GET studies/{uid}/instances?includefield=00080018`, page by page
    (a page shorter than asked for is the last: PS3.18 servers that cut a result short say so in a Warning)."""
    found: set[str] = set()
    offset = 0
    page = client.endpoint.qido_page_size
    while True:
        try:
            items = client.call(functools.partial(client.dicomweb.search_for_instances, study_instance_uid=study_uid,
                                                  fields=[SOP_INSTANCE_UID], limit=page, offset=offset or None))
        except DicomwebError as error:
            if error.status == 404:  # some services answer an unknown study so (a wrong root fails the STOW)
                return found
            raise
        for item in items:
            value = (item.get(SOP_INSTANCE_UID) or {}).get("Value") or []
            if value:
                found.add(str(value[0]))
        if len(items) < page:
            return found
        offset += len(items)


@dataclass(frozen=True)
class Endpoint:
    """One target's DICOMweb service, as much as an upload or a search needs to know."""

    #: how the service is named in messages, e.g. "Azure DICOM service ohif-dicom"
    name: str
    #: the DICOMweb root (`.../v2` on Azure, `.../dicomWeb` on Google, `.../dicom-web` on Orthanc)
    base_url: str
    #: adds credentials to each request (a `BearerToken`, or HTTP Basic for a local Orthanc); None: anonymous
    auth: requests.auth.AuthBase | None = None
    #: CA bundles to trust besides the system's (the sandbox's, a TLS-inspecting proxy's)
    ca_bundles: tuple[Path, ...] = ()
    #: QIDO `limit` per page (Azure accepts 1-200)
    qido_page_size: int = 100
    present: PresenceCheck = qido_presence
    classify: Classifier = classify_standard
    #: what to do when the service answers 401/403 (e.g. which role the identity needs)
    access_hint: str = ""


class DicomwebError(CloudError):
    """A DICOMweb request failed for good (after retries); `status` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, *, status: int = 0, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class Client:
    """dicomweb-client for one endpoint, shared by the threads of an upload (one connection pool)."""

    def __init__(self, endpoint: Endpoint, *, pool_size: int = 16, retries: RetryCounter | None = None,
                 timeout: tuple[float, float] = (10.0, 300.0)) -> None:
        from dicomweb_client.api import DICOMwebClient

        self.endpoint = endpoint
        self.retries = retries or RetryCounter()
        retry = _CountedRetry(total=8, connect=3, read=2, status=6, status_forcelist=RETRY_STATUS,
                              allowed_methods=None, backoff_factor=0.5, backoff_max=30,
                              respect_retry_after_header=True, raise_on_status=False)
        retry.counter = self.retries
        session = trusted_session(endpoint.ca_bundles, retry=retry, pool_size=pool_size)
        session.auth = endpoint.auth
        self.session = session
        self.timeout = timeout
        self.dicomweb = DICOMwebClient(endpoint.base_url.rstrip("/"), session=session, timeout=timeout)
        self.dicomweb.set_http_retry_params(retry=False)
        self.dicomweb.set_chunk_size(2**62)  # never the chunked path (see the module docstring)
        #: requests sent, by kind ("search", "store"), retries not counted
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()

    def _count(self, kind: str) -> None:
        with self._lock:
            self.requests[kind] = self.requests.get(kind, 0) + 1

    def close(self) -> None:
        self.session.close()

    def _refused_token(self, response: requests.Response) -> str | None:
        """The token a 401 answered (so it is fetched again once), or None when the request carried none."""
        auth = self.endpoint.auth
        header = str(response.request.headers.get("Authorization", "")) if response.request is not None else ""
        if response.status_code == 401 and isinstance(auth, BearerToken) and header.startswith("Bearer "):
            return str(header[len("Bearer "):])
        return None

    def call(self, request: Callable[[], Any], kind: str = "search") -> Any:
        """Run a dicomweb-client call; a 401 is tried once more with a new token; failures become DicomwebError."""
        for attempt in (1, 2):
            self._count(kind)
            try:
                return request()
            except requests.HTTPError as error:
                response = error.response
                refused = self._refused_token(response) if response is not None else None
                if refused is not None and attempt == 1:
                    assert isinstance(self.endpoint.auth, BearerToken)
                    self.endpoint.auth.invalidate(refused)
                    continue
                raise self.error(response, "search") from None
            except requests.RequestException as error:
                raise self.transport_error(error) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def store(self, parts: Sequence[bytes]) -> StowAnswer:
        """STOW-RS of already-encoded Part 10 files, sent as they are; any answer with a status is returned."""
        import pydicom

        url = self.dicomweb._get_studies_url(_store_transaction())
        body = self.dicomweb._encode_multipart_message(parts, STOW_CONTENT_TYPE)
        headers = {"Content-Type": STOW_CONTENT_TYPE, "Accept": "application/dicom+json"}
        for attempt in (1, 2):
            self._count("store")
            try:
                response = self.session.post(url, data=body, headers=headers, timeout=self.timeout)
            except requests.RequestException as error:
                raise self.transport_error(error) from None
            refused = self._refused_token(response)
            if refused is not None and attempt == 1:
                assert isinstance(self.endpoint.auth, BearerToken)
                self.endpoint.auth.invalidate(refused)
                continue
            break
        if response.status_code in (401, 403, 404, 405, 413, 415) or response.status_code in RETRY_STATUS:
            raise self.error(response, "store")
        dataset = pydicom.Dataset()
        if response.content and "json" in response.headers.get("Content-Type", ""):
            try:
                dataset = pydicom.Dataset.from_json(response.json())
            except (ValueError, TypeError, KeyError):
                dataset = pydicom.Dataset()
        text = "" if len(dataset) else response.text[:300]
        return StowAnswer(response.status_code, dataset, text)

    def error(self, response: requests.Response | None, what: str) -> DicomwebError:
        """The error for a failed answer, with what to do about it."""
        if response is None:  # pragma: no cover - requests always attaches the response
            return DicomwebError(f"{self.endpoint.name}: {what} failed")
        status = response.status_code
        detail = response.text.strip()[:300]
        message = f"{self.endpoint.name}: {what} answered {status} {response.reason}"
        message += f": {detail}" if detail else ""
        if status in (401, 403):
            return DicomwebError(message, status=status, hint=self.endpoint.access_hint or None)
        if status == 404:
            return DicomwebError(message, status=status, hint=f"is {self.endpoint.base_url} the DICOMweb root?")
        if status in RETRY_STATUS:
            return DicomwebError(f"{message} (still, after retrying)", status=status)
        return DicomwebError(message, status=status)

    def transport_error(self, error: requests.RequestException) -> ProvisionError:
        if isinstance(error, requests.exceptions.SSLError):
            return ConfigurationError(f"{self.endpoint.name}: TLS failed: {error}",
                                      hint="pass --ca-bundle if a proxy re-signs TLS traffic")
        return DicomwebError(f"{self.endpoint.name}: no answer from {urlsplit(self.endpoint.base_url).netloc} "
                             f"({type(error).__name__})")


def _store_transaction() -> Any:
    from dicomweb_client.web import _Transaction

    return _Transaction.STORE


__all__ = [
    "BearerToken",
    "Classifier",
    "Client",
    "DicomwebError",
    "Endpoint",
    "PresenceCheck",
    "RetryCounter",
    "StowAnswer",
    "StowOutcome",
    "TokenSource",
    "account_for",
    "classify_standard",
    "failure_text",
    "qido_presence",
    "trusted_session",
]
