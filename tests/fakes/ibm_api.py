"""A faithful, stdlib-only fake of the IBM Quantum Platform REST API (+ IAM, Global Search/Catalog).

It is the only fake in the test suite, so it has to behave like the real service in
every way our code (and the real qiskit-ibm-runtime client, see
tests/watcher/test_fake_is_faithful.py) can observe: IAM exchange with unsigned JWTs,
instance scoping through the `Service-CRN` header, `count` equal to the filtered total,
IBM-style error bodies (`{"errors": [{"code", "message"}]}`). The shapes follow IBM's
REST reference (https://quantum.cloud.ibm.com/docs/api/qiskit-runtime-rest/tags/jobs) and
what qiskit-ibm-runtime reads of them.

The same listener serves three roles:
- origin server: `{base}/identity/token` (IAM) and `{base}/api/v1/...` (runtime API);
- HTTP forward proxy: requests in absolute form (`GET http://quantum.cloud.fake/api/v1/jobs`)
  are routed by path, and by host for Global Search (`api.global-search-tagging.*`) and
  Global Catalog (`globalcatalog.*`), which lets the real client run its full
  constructor path with `proxies={"urls": {"http": base}}`;
- an error injector: `fail_next`, `hang_next`, `latency`, `count_bias`.

Jobs are indexed by instance so a listing costs O(jobs of that instance), which keeps
benchmarks with 10,000 jobs across 1,000 instances cheap.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_ACCOUNT = "abc123"
PLAN_ID = "plan-open"
PENDING = ("Queued", "Running")
FINAL = ("Completed", "Failed", "Cancelled")
API_STATUSES = PENDING + FINAL
IAM_GRANT = "urn:ibm:params:oauth:grant-type:apikey"
# The real API sends a reason text with every reason code (and qiskit only reads the code when a
# reason is present), so the fake supplies one when a test gives only the code.
REASONS = {1305: "Job was cancelled because it exceeded the maximum execution time.", 1517: "Error in transpilation."}

Body = str | bytes | dict[str, Any] | list[Any] | None


def make_crn(n: int = 0, *, region: str = "us-east", account: str = DEFAULT_ACCOUNT) -> str:
    """A well-formed instance CRN; the region is the 6th `:` field, as on IBM Cloud."""
    return f"crn:v1:bluemix:public:quantum-computing:{region}:a/{account}:inst-{n:04d}::"


def _b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def make_jwt(ttl: int, subject: str) -> tuple[str, int]:
    """An unsigned-looking JWT: ibm-cloud-sdk-core decodes it without verifying, reading only iat/exp."""
    now = int(time.time())
    exp = now + ttl
    claims = {"iat": now, "exp": exp, "sub": subject, "iam_id": f"IBMid-{subject}", "jti": secrets.token_hex(8)}
    return f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(claims)}.c2ln", exp


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _to_datetime(value: datetime | str | int | float | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):  # epoch milliseconds, like our domain records
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


@dataclass
class Call:
    """One request as the fake saw it; `key` is the API key behind the bearer token (or IAM form)."""

    method: str
    host: str
    path: str
    query: dict[str, list[str]]
    key: str | None = None
    crn: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Job:
    seq: int
    crn: str
    created: datetime
    data: dict[str, Any]
    # The metrics endpoint's timestamps and billed time (qpu_charge_time_seconds).
    running: datetime | None = None
    finished: datetime | None = None
    usage_seconds: float = 0.0

    @property
    def status(self) -> str:
        return str(self.data["state"]["status"])


@dataclass
class _Reply:
    status: int
    body: Body = None
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients that pool connections reuse them
    disable_nagle_algorithm = True  # headers and body are two writes: Nagle + delayed ACK would add ~40 ms
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        reply = self.server.fake._handle(self.command, self.path, dict(self.headers.items()), raw)
        if reply is None:  # a hang: answer nothing and drop the connection
            self.close_connection = True
            return
        payload: bytes
        ctype = "application/json"
        if reply.body is None:
            payload = b""
        elif isinstance(reply.body, bytes):
            payload = reply.body
        elif isinstance(reply.body, str):
            payload, ctype = reply.body.encode(), "text/plain; charset=utf-8"
        else:
            payload = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        headers = {"Content-Type": ctype, **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # benchmarks open many connections at once
    fake: FakeIBM


class FakeIBM:
    """IBM Quantum Platform on 127.0.0.1. Mutate its state from tests; all methods are thread-safe.

    Knobs: `valid_keys` (key -> account), `key_instances` (key -> CRNs it may use; absent
    means every instance), `fail_next` [(status, headers, body)] for `/api/v1/jobs*`,
    `fail_iam_next` the same for IAM, `hang_next` [seconds] for `/api/v1/jobs*`,
    `latency` seconds per request, `token_ttl` of issued tokens, `count_bias` added to the
    listing's `count` (a lying server), `backend_configs` name -> configuration JSON,
    `default_backend_config` served for any backend a job uses, `results` job id -> results text. Observe with `calls`.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.valid_keys: dict[str, str] = {}
        self.key_instances: dict[str, set[str]] = {}
        self.instances: dict[str, str] = {}  # crn -> display name
        self.jobs: dict[str, _Job] = {}
        self._by_instance: dict[str, dict[str, _Job]] = {}
        self.tokens: dict[str, tuple[str, int]] = {}  # bearer -> (api key, exp)
        self.fail_next: list[tuple[int, dict[str, str], Body]] = []
        self.fail_iam_next: list[tuple[int, dict[str, str], Body]] = []
        self.hang_next: list[float] = []
        self.latency: float = 0.0
        self.token_ttl: int = 3600
        self.count_bias: int = 0
        self.backend_configs: dict[str, dict[str, Any]] = {}
        # Served (renamed) for every backend a job uses when set; the fixture loads a real one
        # from qiskit's fake_provider, because a 404 here makes the real client refetch on every decode.
        self.default_backend_config: dict[str, Any] | None = None
        self.results: dict[str, str] = {}
        self.calls: list[Call] = []
        self.inflight = 0
        self.max_inflight = 0  # the most requests it was answering at once (concurrency caps)
        self.default_crn = make_crn(0)
        self._seq = itertools.count()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.base = ""

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, port: int = 0) -> str:
        httpd = _Server(("127.0.0.1", port), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-ibm", daemon=True)
        self._thread.start()
        self.base = f"http://127.0.0.1:{httpd.server_address[1]}"
        return self.base

    def stop(self) -> None:
        self._stopping.set()  # releases hung and slow handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    # -- state -------------------------------------------------------------------------
    def add_instance(self, crn: str, name: str | None = None) -> str:
        with self.lock:
            self.instances.setdefault(crn, name or f"instance-{len(self.instances)}")
            self._by_instance.setdefault(crn, {})
        return crn

    def add_key(self, key: str, instances: Iterable[str] | None = None, account: str = DEFAULT_ACCOUNT) -> str:
        """Make `key` valid; with `instances`, the key may only use those CRNs (403 elsewhere)."""
        with self.lock:
            self.valid_keys[key] = account
            if instances is not None:
                self.key_instances[key] = {self.add_instance(c) for c in instances}
        return key

    def revoke_key(self, key: str) -> None:
        """The key stops working: IAM refuses it and tokens already issued for it get 401."""
        with self.lock:
            self.valid_keys.pop(key, None)

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = {t: (k, 0) for t, (k, _exp) in self.tokens.items()}

    def add_job(
        self,
        job_id: str,
        status: str = "Queued",
        backend: str = "ibm_fake",
        created: datetime | str | int | None = None,
        instance: str | None = None,
        reason: str | None = None,
        reason_code: int | None = None,
        tags: list[str] | None = None,
        program: str = "sampler",
        session_id: str | None = None,
        running: datetime | str | int | None = None,
        finished: datetime | str | int | None = None,
        usage_seconds: float = 0.0,
    ) -> dict[str, Any]:
        """A job as IBM holds it. A job past Queued has a running time (`running`, default
        its creation) and a final one a finished time (`finished`, default `running`)."""
        if status not in API_STATUSES:
            raise ValueError(f"the API speaks {API_STATUSES}, not {status!r}")
        crn = instance or self.default_crn
        seq = next(self._seq)
        # Distinct default timestamps keep the DESC-by-created order deterministic.
        when = _to_datetime(created) or (datetime.now(timezone.utc) - timedelta(hours=1) + timedelta(microseconds=seq))
        data: dict[str, Any] = {
            "id": job_id,
            "backend": backend,
            "state": _state(status, reason, reason_code),
            "status": status,
            "program": {"id": program},
            "created": _iso(when),
            "runtime": "",
            "tags": list(tags or []),
            "session_id": session_id,
            "private": False,
            "user_id": "fake-user",
            "usage": {"seconds": 0},
        }
        with self.lock:
            self.add_instance(crn)
            old = self.jobs.get(job_id)
            if old is not None:
                self._by_instance[old.crn].pop(job_id, None)
            job = _Job(seq, crn, when, data, usage_seconds=usage_seconds)
            if status != "Queued":
                job.running = _to_datetime(running) or when
            if status in FINAL:
                job.finished = _to_datetime(finished) or job.running
            self.jobs[job_id] = job
            self._by_instance[crn][job_id] = job
        return data

    def set_status(
        self,
        job_id: str,
        status: str,
        reason: str | None = None,
        reason_code: int | None = None,
        at: datetime | str | int | None = None,
        usage_seconds: float | None = None,
    ) -> None:
        """Move a job; IBM stamps the move (`at`, default now) as its running or finished time.
        A job that completes from the queue ran in between: it gets a running time too."""
        if status not in API_STATUSES:
            raise ValueError(f"the API speaks {API_STATUSES}, not {status!r}")
        when = _to_datetime(at) or datetime.now(timezone.utc)
        with self.lock:
            job = self.jobs[job_id]
            job.data["status"] = status
            job.data["state"] = _state(status, reason, reason_code)
            if status == "Running" or (status in ("Completed", "Failed") and job.running is None):
                job.running = job.running or when
            if status in FINAL:
                job.finished = job.finished or when
            if usage_seconds is not None:
                job.usage_seconds = usage_seconds

    def count_calls(self, path_prefix: str = "", method: str | None = None) -> int:
        with self.lock:
            return sum(1 for c in self.calls if c.path.startswith(path_prefix) and (method is None or c.method == method))

    # -- request handling (runs on handler threads) --------------------------------------
    def _handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> _Reply | None:
        parts = urlsplit(target)  # origin form, or absolute form when used as a forward proxy
        host = (parts.hostname or _header(headers, "Host").split(":")[0]).lower()
        path = unquote(parts.path) or "/"
        query = parse_qs(parts.query, keep_blank_values=True)
        crn = _header(headers, "Service-CRN") or None
        key = self._key_for(headers)
        if method == "POST" and path == "/identity/token":
            key = parse_qs(raw.decode(errors="replace")).get("apikey", [None])[0]
        with self.lock:
            self.calls.append(Call(method, host, path, query, key, crn, headers))
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            return self._answer(method, host, path, query, headers, raw, crn)
        finally:
            with self.lock:
                self.inflight -= 1

    def _answer(
        self, method: str, host: str, path: str, query: dict[str, list[str]], headers: dict[str, str], raw: bytes, crn: str | None
    ) -> _Reply | None:
        if self.latency:
            self._stopping.wait(self.latency)
        jobs_path = path.startswith("/api/v1/jobs") and not host.startswith("globalcatalog.")
        if jobs_path:
            with self.lock:
                hang = self.hang_next.pop(0) if self.hang_next else None
                injected = self.fail_next.pop(0) if self.fail_next and hang is None else None
            if hang is not None:
                self._stopping.wait(hang)
                return None
            if injected is not None:
                return _injected(*injected)
        try:
            return self._route(method, host, path, query, headers, raw, crn)
        except _Refuse as refusal:
            return refusal.reply

    def _key_for(self, headers: dict[str, str]) -> str | None:
        auth = _header(headers, "Authorization")
        if not auth.startswith("Bearer "):
            return None
        with self.lock:
            entry = self.tokens.get(auth[7:].strip())
        return entry[0] if entry else None

    def _authenticate(self, headers: dict[str, str]) -> str:
        auth = _header(headers, "Authorization")
        if not auth.startswith("Bearer "):
            raise _Refuse(_error(401, "Unauthorized: missing bearer token", "401"))
        with self.lock:
            entry = self.tokens.get(auth[7:].strip())
            if entry is None:
                raise _Refuse(_error(401, "Unauthorized: invalid token", "401"))
            key, exp = entry
            if exp <= time.time():
                raise _Refuse(_error(401, "Unauthorized: token expired", "401"))
            if key not in self.valid_keys:
                raise _Refuse(_error(401, "Unauthorized: the API key was revoked", "401"))
        return key

    def _instance(self, key: str, crn: str | None) -> dict[str, _Job]:
        if not crn:
            raise _Refuse(_error(400, "Missing Service-CRN header", "1201"))
        with self.lock:
            allowed = self.key_instances.get(key)
            if allowed is not None and crn not in allowed:
                raise _Refuse(_error(403, "You are not authorized to access this instance", "1220"))
            return self._by_instance.get(crn, {})

    def _route(
        self, method: str, host: str, path: str, query: dict[str, list[str]], headers: dict[str, str], raw: bytes, crn: str | None
    ) -> _Reply:
        if path.startswith("/_fake/"):
            return self._control(method, path, raw)
        if method == "POST" and path == "/identity/token":
            return self._iam(raw)
        if host.startswith("api.global-search-tagging.") and path == "/v3/resources/search":
            return self._search(self._authenticate(headers))
        if host.startswith("globalcatalog."):
            self._authenticate(headers)
            return _Reply(200, {"id": path.rsplit("/", 1)[-1], "overview_ui": {"en": {"display_name": "Open"}}, "metadata": {"pricing": {"type": "free"}}})
        if not path.startswith("/api/v1/"):
            return _error(404, f"no route for {path}", "404")
        key = self._authenticate(headers)
        segments = [s for s in path[len("/api/v1/") :].split("/") if s]
        if segments[:1] == ["backends"]:
            return self._backends(key, crn, segments[1:])
        if segments[:1] != ["jobs"]:
            return _error(404, f"no route for {path}", "404")
        jobs = self._instance(key, crn)
        if len(segments) == 1 and method == "GET":
            return self._list(jobs, query)
        job = jobs.get(segments[1]) if len(segments) > 1 else None
        if job is None:
            return _error(404, "Job not found", "1291")
        rest = segments[2:]
        if not rest and method == "GET":
            return _Reply(200, json.loads(json.dumps(job.data)))
        if rest == ["results"] and method == "GET":
            return _Reply(200, self.results.get(job.data["id"], self._default_results(job)))
        if rest == ["metrics"] and method == "GET":
            return _Reply(200, self._metrics(job))
        if rest == ["cancel"] and method == "POST":
            if job.status not in PENDING:
                return _error(409, "Job is already in a final state", "1300")
            self.set_status(job.data["id"], "Cancelled", reason="Cancelled by the user")
            return _Reply(204)
        return _error(404, f"no route for {path}", "404")

    def _control(self, method: str, path: str, raw: bytes) -> _Reply:
        """Test-only state API, for when the fake runs in its own process (`python -m tests.fakes.ibm_api`).

        Benchmarks need that: in-process, the fake's handler threads share the GIL with the
        code under test and distort its timings.
        """
        try:
            body = json.loads(raw or b"null")
            if method == "POST" and path == "/_fake/keys":
                for item in body:
                    self.add_key(item["key"], item.get("instances"), item.get("account", DEFAULT_ACCOUNT))
            elif method == "POST" and path == "/_fake/jobs":
                for item in body:
                    self.add_job(**item)
            elif method == "POST" and path == "/_fake/status":
                for item in body:
                    self.set_status(**item)
            elif method == "POST" and path == "/_fake/config":
                for name in ("latency", "token_ttl", "count_bias", "fail_next", "fail_iam_next", "hang_next"):
                    if name in body:
                        setattr(self, name, body[name])
            elif method == "GET" and path == "/_fake/stats":
                with self.lock:
                    by_path: dict[str, int] = {}
                    for c in self.calls:
                        by_path[c.path] = by_path.get(c.path, 0) + 1
                    return _Reply(200, {"calls": len(self.calls), "by_path": by_path, "max_inflight": self.max_inflight, "jobs": len(self.jobs)})
            else:
                return _error(404, f"no control route {method} {path}", "404")
        except (KeyError, TypeError, ValueError) as exc:
            return _error(400, f"bad control request: {exc}", "400")
        return _Reply(204)

    def _iam(self, raw: bytes) -> _Reply:
        with self.lock:
            injected = self.fail_iam_next.pop(0) if self.fail_iam_next else None
        if injected is not None:
            return _injected(*injected)
        form = parse_qs(raw.decode(errors="replace"))
        if form.get("grant_type", [""])[0] != IAM_GRANT:
            return _Reply(400, {"errorCode": "BXNIM0103E", "errorMessage": "Unsupported grant type", "context": {"requestId": secrets.token_hex(8)}})
        key = form.get("apikey", [""])[0]
        with self.lock:
            account = self.valid_keys.get(key)
            if account is None:
                return _Reply(400, {"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found.", "context": {"requestId": secrets.token_hex(8)}})
            token, exp = make_jwt(self.token_ttl, account)
            self.tokens[token] = (key, exp)
        return _Reply(200, {"access_token": token, "refresh_token": "not_supported", "ims_user_id": 1, "token_type": "Bearer", "expires_in": self.token_ttl, "expiration": exp, "scope": "ibm openid"})

    def _search(self, key: str) -> _Reply:
        with self.lock:
            crns = sorted(self.key_instances.get(key) or self.instances)
            items = [
                {"crn": c, "name": self.instances.get(c, c), "service_plan_unique_id": PLAN_ID, "tags": [], "doc": {"extensions": {"backends": ["ibm_fake"]}}}
                for c in crns
            ]
        return _Reply(200, {"items": items, "search_cursor": None, "limit": 100})

    def _backends(self, key: str, crn: str | None, rest: list[str]) -> _Reply:
        if not rest:
            with self.lock:
                names = {"ibm_fake", *(j.data["backend"] for j in self._by_instance.get(crn or "", {}).values())}
            devices = [{"name": n, "status": {"name": "online", "reason": ""}, "queue_length": 0, "qubits": 5, "clops": {"value": 0}, "processor_type": {"family": "Fake"}} for n in sorted(names)]
            return _Reply(200, {"devices": devices})
        if rest[1:] == ["configuration"]:
            if rest[0] in self.backend_configs:
                return _Reply(200, self.backend_configs[rest[0]])
            with self.lock:
                known = rest[0] == "ibm_fake" or any(j.data["backend"] == rest[0] for j in self.jobs.values())
            if known and self.default_backend_config is not None:
                return _Reply(200, {**self.default_backend_config, "backend_name": rest[0]})
        return _error(404, f"Backend {rest[0]} not found", "1216")

    def _list(self, jobs: dict[str, _Job], query: dict[str, list[str]]) -> _Reply:
        def one(name: str) -> str | None:
            values = query.get(name)
            return values[-1] if values else None

        try:
            limit = int(one("limit") or 200)
            offset = int(one("offset") or 0)
            after = _to_datetime(one("created_after"))
            before = _to_datetime(one("created_before"))
        except ValueError as exc:
            return _error(400, f"Invalid query: {exc}", "1202")
        if limit < 0 or offset < 0:
            return _error(400, "limit and offset must be >= 0", "1202")
        pending, backend, program, session = one("pending"), one("backend"), one("program"), one("session_id")
        tags = set(query.get("tags", []))
        with self.lock:
            selected = [
                j
                for j in jobs.values()
                if (pending is None or (j.status in PENDING) == (pending == "true"))
                and (backend is None or j.data["backend"] == backend)
                and (program is None or j.data["program"]["id"] == program)
                and (session is None or j.data["session_id"] == session)
                and tags <= set(j.data["tags"])
                and (after is None or j.created >= after)
                and (before is None or j.created <= before)
            ]
            selected.sort(key=lambda j: (j.created, j.seq), reverse=(one("sort") or "DESC").upper() != "ASC")
            page = [json.loads(json.dumps(j.data)) for j in selected[offset : offset + limit]]
            count = len(selected) + self.count_bias
        return _Reply(200, {"jobs": page, "count": count, "limit": limit, "offset": offset})

    def _default_results(self, job: _Job) -> str:
        if job.status == "Failed":
            return f"Error: {job.data['state'].get('reason') or 'the job failed'}"
        return json.dumps({"results": [], "metadata": {}})

    def _metrics(self, job: _Job) -> dict[str, Any]:
        """API version 2026-04-15: `usage.quantum_seconds`/`seconds` and `bss` are gone
        (2026-03-15); billed time is `usage.qpu_charge_time_seconds`, final once
        `usage.status` is "complete"; later timestamps are null until reached."""
        final = job.status in FINAL
        return {
            "timestamps": {
                "created": _iso(job.created),
                "running": _iso(job.running) if job.running else None,
                "finished": _iso(job.finished) if job.finished else None,
            },
            "usage": {
                "qpu_charge_time_seconds": job.usage_seconds if final else 0,
                "status": "complete" if final else "pending",
            },
            "circuits_execution_time_ns": int(job.usage_seconds * 1e9) if final else 0,
            "qiskit_version": "",
            "position_in_queue": 1 if job.status == "Queued" else None,
        }


class _Refuse(Exception):
    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _state(status: str, reason: str | None, reason_code: int | None) -> dict[str, Any]:
    if reason_code is not None and reason is None:
        reason = REASONS.get(reason_code, f"Error code {reason_code}")
    return {"status": status, "reason": reason, "reason_code": reason_code}


def _header(headers: dict[str, str], name: str) -> str:
    lname = name.lower()
    for k, v in headers.items():
        if k.lower() == lname:
            return v
    return ""


def _error(status: int, message: str, code: str) -> _Reply:
    """IBM Cloud error shape, which api/session.py understands."""
    return _Reply(status, {"errors": [{"code": code, "message": message, "more_info": ""}], "trace": secrets.token_hex(8), "status_code": status})


def _injected(status: int, headers: dict[str, str] | None = None, body: Body = None) -> _Reply:
    if body is None and status >= 400:
        return _Reply(status, _error(status, f"injected {status}", str(status)).body, dict(headers or {}))
    return _Reply(status, body, dict(headers or {}))


def main() -> None:
    """Serve the fake until interrupted; prints its base URL on the first line of stdout."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="fake IBM Quantum Platform on 127.0.0.1 (state via /_fake/*)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    fake = FakeIBM()
    print(fake.start(args.port), flush=True)
    try:
        while fake._thread is not None and fake._thread.is_alive():
            fake._thread.join(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
