"""A small async client for the IBM Quantum Platform REST API (IAM + /api/v1/jobs).

Why not qiskit-ibm-runtime on the server: importing it takes seconds and ~170 MB,
constructing a `QiskitRuntimeService` costs 4+N round trips (IAM, Global Search, one
Global Catalog call per instance, IAM again, backends), its session has no read timeout
(`timeout=(5.0, None)`), and 5xx or connection errors reach the caller as status -1.
This client speaks the two documented endpoints (IAM `POST /identity/token` and
`GET /api/v1/jobs[/{id}]`, https://quantum.cloud.ibm.com/docs/api/qiskit-runtime-rest/tags/jobs)
with explicit timeouts, classifies every failure into `IBMError.kind` and never retries
on its own: backoff is the poller's decision, made per poll unit.

Secrets: API keys and bearer tokens never appear in logs, exception messages or cache
keys (the cache is keyed by sha256 of the key).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import ssl
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote

from qjm_jupyter.statuses import UnknownStatus, normalize_status

from ..settings import Settings
from .concurrency import CallLimit
from .http import HTTPClient, HTTPError, Response, Timeout

log = logging.getLogger(__name__)

ErrorKind = Literal["auth_invalid", "forbidden", "not_found", "conflict", "rate_limited", "transient", "protocol"]

IAM_GRANT_TYPE = "urn:ibm:params:oauth:grant-type:apikey"
PAGE_SIZE = 200  # the API's own maximum and default
MAX_PAGES = 50  # 10,000 pending jobs per instance; a lying `count` cannot make us loop for ever
TOKEN_CACHE_SIZE = 1024
TOKEN_REFRESH_FRACTION = 0.8  # like ibm-cloud-sdk-core: refresh at 80 % of the lifetime
RAN_TOO_LONG = 1305  # Cancelled with this reason code is a failure, as qiskit reports it
_REGION = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")  # becomes part of a host name: nothing else may pass
_CRN_CHARS = re.compile(r"^[\x21-\x7e]+$")  # a header value: printable ASCII, no spaces or CR/LF


class IBMError(Exception):
    """A failed IBM call, classified so the poller knows what to do: auth_invalid (IAM
    400/401 or API 401: pause the user), forbidden (403: pause the instance),
    not_found (404), rate_limited (429, honouring Retry-After), transient (5xx, network,
    timeouts: back off) or protocol (a body we cannot read)."""

    def __init__(self, kind: ErrorKind, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


@dataclass
class IBMJobState:
    id: str
    status: str  # our vocabulary (Cancelled + reason_code 1305 -> ERROR); "" for a status we do not know
    raw_status: str
    reason: str | None = None
    reason_code: int | None = None
    backend: str | None = None
    created: int | None = None  # epoch ms


@dataclass
class IBMJobTimes:
    """What `GET /jobs/{id}/metrics` says about a job's life: IBM's own timestamps (epoch ms;
    a later one is None until reached) and, once usage is final, the billed quantum seconds."""

    created: int | None = None
    running: int | None = None
    finished: int | None = None
    usage_seconds: float | None = None


def parse_metrics(data: Any) -> IBMJobTimes:
    """Metrics -> IBMJobTimes; absent or malformed fields are None (the shape varies by API version).

    Usage counts only when IBM marks it complete (`usage.status`); while pending the
    figure is partial, as qiskit-ibm-runtime's `RuntimeJobV2.usage()` treats it."""
    if not isinstance(data, dict):
        raise IBMError("protocol", "job metrics that are not an object")
    stamps = data.get("timestamps") if isinstance(data.get("timestamps"), dict) else {}
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    seconds = usage.get("qpu_charge_time_seconds", usage.get("quantum_seconds"))
    complete = usage.get("status", "pending") == "complete"
    billed = float(seconds) if complete and isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else None
    return IBMJobTimes(
        created=_epoch_ms(stamps.get("created")),
        running=_epoch_ms(stamps.get("running")),
        finished=_epoch_ms(stamps.get("finished")),
        usage_seconds=billed,
    )


@dataclass
class _Token:
    bearer: str
    refresh_at: float  # on the client's monotonic clock


def key_fingerprint(api_key: str) -> str:
    """The only form of an API key that may be stored in memory maps or logged (truncated)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def map_status(raw_status: str, reason_code: int | None) -> str:
    """API status -> our vocabulary; unknown strings give "" so the poller keeps the last status."""
    try:
        status = normalize_status(raw_status)
    except UnknownStatus:
        return ""
    if status == "CANCELLED" and reason_code == RAN_TOO_LONG:
        return "ERROR"
    return status


def runtime_url(instance: str, override: str = "") -> str:
    """The runtime API base for a CRN: region is the 6th field; us-east has no region prefix."""
    fields = instance.split(":")
    if not instance.startswith("crn:") or len(fields) < 8 or not _CRN_CHARS.match(instance):
        raise IBMError("protocol", "the instance is not a well-formed IBM Cloud CRN")
    region = fields[5]
    if not _REGION.match(region):
        raise IBMError("protocol", "the instance CRN has no valid region")
    if override:
        return override.rstrip("/")
    if region == "us-east":
        return "https://quantum.cloud.ibm.com/api/v1"
    return f"https://{region}.quantum.cloud.ibm.com/api/v1"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After in seconds, given as delta-seconds or an HTTP date; None when absent or garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _epoch_ms(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def _reason_code(state: dict[str, Any]) -> int | None:
    raw = state.get("reason_code", state.get("reasonCode"))
    if raw is None or isinstance(raw, bool):
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def parse_job(data: Any) -> IBMJobState:
    """One job object from the API -> IBMJobState; anything malformed is a protocol error."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise IBMError("protocol", "job object without an id")
    state = data.get("state") if isinstance(data.get("state"), dict) else {}
    raw_status = state.get("status", data.get("status"))
    if not isinstance(raw_status, str):
        raise IBMError("protocol", f"job {data['id']} has no status")
    code = _reason_code(state)
    reason = state.get("reason")
    backend = data.get("backend")
    status = map_status(raw_status, code)
    if not status:
        log.warning("qjm: IBM reported an unknown status %r for job %s", raw_status[:40], data["id"][:80])
    return IBMJobState(
        id=data["id"],
        status=status,
        raw_status=raw_status,
        reason=reason if isinstance(reason, str) and reason else None,
        reason_code=code,
        backend=backend if isinstance(backend, str) else None,
        created=_epoch_ms(data.get("created")),
    )


def _error_text(response: Response) -> str:
    """A short, secret-free description of an error body (IBM Cloud or IAM shape)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    if isinstance(body.get("errorCode"), str):  # IAM
        return body["errorCode"][:40]
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code, message = errors[0].get("code", ""), errors[0].get("message", "")
        return f"{code} {message}".strip()[:200]
    return ""


class IBMClient:
    """One per server: keep-alive connections (watcher/http.py), requests in flight bounded by
    `limit` (watcher/concurrency.py: sized to the work, at most `ibm_concurrency`), a token cache."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        ssl_context: ssl.SSLContext | None = None,
        max_pages: int = MAX_PAGES,
        token_cache_size: int = TOKEN_CACHE_SIZE,
    ) -> None:
        self.settings = settings
        self.calls: Counter[str] = Counter()  # "iam", "list", "get": for benchmarks and tests
        self._clock = clock
        self._ssl_context = ssl_context  # None: certifi's bundle, as httpx used (tests pass a trustme CA)
        self._max_pages = max_pages
        self._cache_size = token_cache_size
        self._tokens: OrderedDict[str, _Token] = OrderedDict()
        self._exchanges: dict[str, asyncio.Future[str]] = {}
        self.limit = CallLimit(settings.ibm_concurrency)
        self._http: HTTPClient | None = None

    # -- public API ---------------------------------------------------------------------
    async def pending_jobs(self, api_key: str, instance: str) -> dict[str, IBMJobState]:
        """Every Queued/Running job of the instance (GET /api/v1/jobs?pending=true, paged)."""
        found: dict[str, IBMJobState] = {}
        offset = 0
        for _page in range(self._max_pages):
            params = {"pending": "true", "limit": str(PAGE_SIZE), "offset": str(offset), "exclude_params": "true"}
            body = await self._api(api_key, instance, "/jobs", params, "list")
            jobs = body.get("jobs") if isinstance(body, dict) else None
            if not isinstance(jobs, list):
                raise IBMError("protocol", "job listing without a 'jobs' list")
            for item in jobs:
                state = parse_job(item)
                found[state.id] = state
            # Stop on a short page rather than on `count`, which a server may get wrong.
            if len(jobs) < PAGE_SIZE:
                return found
            offset += len(jobs)
        log.warning("qjm: stopped listing pending jobs after %d pages", self._max_pages)
        return found

    async def get_job(self, api_key: str, instance: str, job_id: str) -> IBMJobState:
        """One job (GET /api/v1/jobs/{id}); raises IBMError('not_found') for 404."""
        if not job_id:
            raise IBMError("not_found", "empty job id", status=404)
        body = await self._api(api_key, instance, f"/jobs/{quote(job_id, safe='')}", {"exclude_params": "true"}, "get")
        state = parse_job(body)
        if state.id != job_id:
            raise IBMError("protocol", "IBM answered with a different job")
        return state

    async def job_metrics(self, api_key: str, instance: str, job_id: str) -> IBMJobTimes:
        """IBM's timestamps and usage of one job (GET /api/v1/jobs/{id}/metrics)."""
        body = await self._api(api_key, instance, f"/jobs/{quote(job_id, safe='')}/metrics", {}, "metrics")
        return parse_metrics(body)

    async def cancel_job(self, api_key: str, instance: str, job_id: str) -> None:
        """Ask IBM to cancel a job (POST /api/v1/jobs/{id}/cancel, as `RuntimeJobV2.cancel()`).

        Cancelling is asynchronous on IBM's side: the job turns Cancelled later and the
        poller sees it. A job already final answers 409, raised as kind "conflict"."""
        try:
            await self._api(api_key, instance, f"/jobs/{quote(job_id, safe='')}/cancel", {}, "cancel", method="POST")
        except IBMError as exc:
            if exc.status == 409:
                raise IBMError("conflict", str(exc), status=409) from None
            raise

    def forget_key(self, api_key: str) -> None:
        """Drop the cached IAM token for this key (after an auth failure or a key change)."""
        self._tokens.pop(key_fingerprint(api_key), None)

    async def aclose(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()
        self._tokens.clear()

    # -- transport ----------------------------------------------------------------------
    def _client(self) -> HTTPClient:
        if self._http is None:
            s = self.settings
            self._http = HTTPClient(
                connect_timeout=s.ibm_connect_timeout, read_timeout=s.ibm_read_timeout,
                max_idle=self.limit.cap, ssl_context=self._ssl_context,  # the pool holds the most the limit allows
            )
        return self._http

    async def _send(self, method: str, url: str, **kwargs: Any) -> Response:
        await self.limit.acquire()
        started = time.monotonic()
        try:
            return await self._client().request(method, url, **kwargs)
        except Timeout as exc:
            raise IBMError("transient", f"IBM did not answer in time ({exc.phase} timeout)") from None
        except HTTPError as exc:
            raise IBMError("transient", f"cannot reach IBM ({type(exc).__name__}: {exc})") from None
        except ValueError as exc:  # a URL or header value we refuse to send (no request was made)
            raise IBMError("protocol", str(exc)) from None
        finally:
            self.limit.release(time.monotonic() - started)

    # -- IAM ----------------------------------------------------------------------------
    async def _bearer(self, api_key: str) -> tuple[str, bool]:
        """A valid bearer token for the key, and whether it came from the cache."""
        fp = key_fingerprint(api_key)
        cached = self._tokens.get(fp)
        if cached is not None and self._clock() < cached.refresh_at:
            self._tokens.move_to_end(fp)
            return cached.bearer, True
        pending = self._exchanges.get(fp)
        if pending is None:
            # Single flight: concurrent callers for one key share this exchange.
            pending = asyncio.ensure_future(self._exchange(api_key, fp))
            self._exchanges[fp] = pending
            pending.add_done_callback(lambda _f: self._exchanges.pop(fp, None))
        return await asyncio.shield(pending), False

    async def _exchange(self, api_key: str, fp: str) -> str:
        if not api_key:
            raise IBMError("auth_invalid", "no IBM API key")
        self.calls["iam"] += 1
        started = self._clock()
        response = await self._send(
            "POST",
            self.settings.ibm_iam_url.rstrip("/") + "/identity/token",
            form={"grant_type": IAM_GRANT_TYPE, "apikey": api_key},
            headers={"Accept": "application/json"},
        )
        if response.status_code != 200:
            raise self._classify(response, "IAM", iam=True)
        try:
            body = response.json()
            bearer = body["access_token"]
            expires_in = float(body.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise IBMError("protocol", "IAM answered without a usable access token", status=200) from None
        if not isinstance(bearer, str) or not bearer:
            raise IBMError("protocol", "IAM answered without a usable access token", status=200)
        self._tokens[fp] = _Token(bearer, started + TOKEN_REFRESH_FRACTION * max(0.0, expires_in))
        self._tokens.move_to_end(fp)
        while len(self._tokens) > self._cache_size:
            self._tokens.popitem(last=False)
        log.debug("qjm: IAM token for key %s… valid %.0f s", fp[:8], expires_in)
        return bearer

    # -- runtime API ----------------------------------------------------------------------
    async def _api(self, api_key: str, instance: str, path: str, params: dict[str, str], what: str, *, method: str = "GET") -> Any:
        base = runtime_url(instance, self.settings.ibm_api_url)
        for attempt in (1, 2):
            bearer, from_cache = await self._bearer(api_key)
            self.calls[what] += 1
            response = await self._send(
                method,
                base + path,
                params=params,
                headers={
                    "Authorization": f"Bearer {bearer}",
                    "Service-CRN": instance,
                    "IBM-API-Version": self.settings.ibm_api_version,
                    "Accept": "application/json",
                },
            )
            if response.status_code == 401:
                self.forget_key(api_key)
                if from_cache and attempt == 1:
                    continue  # a cached token may be revoked or expired early: one fresh exchange decides
            if not 200 <= response.status_code < 300:
                raise self._classify(response, "IBM Quantum")
            if method != "GET":
                return None
            try:
                return response.json()
            except ValueError:
                raise IBMError("protocol", f"IBM Quantum sent a body that is not JSON ({what})", status=200) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _classify(self, response: Response, who: str, *, iam: bool = False) -> IBMError:
        code = response.status_code
        detail = _error_text(response)
        message = f"{who} answered {code}" + (f": {detail}" if detail else "")
        if code == 429:
            return IBMError("rate_limited", message, status=code, retry_after=parse_retry_after(response.headers.get("retry-after")))
        if code >= 500:
            return IBMError("transient", message, status=code)
        if code in (400, 401, 403) and iam:
            return IBMError("auth_invalid", message, status=code)
        if code == 401:
            return IBMError("auth_invalid", message, status=code)
        if code == 403:
            return IBMError("forbidden", message, status=code)
        if code == 404:
            return IBMError("not_found", message, status=code)
        if code in (408, 425):
            return IBMError("transient", message, status=code)
        return IBMError("protocol", message, status=code)
