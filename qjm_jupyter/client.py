"""`JobManagerClient`: the kernel's client for the qjm HTTP API (server_ext/API.md).

One async core on `httpx.AsyncClient`. Each public method `x_async` runs on the caller's
event loop; its sync twin `x` runs the same coroutine on a private event loop in a daemon
thread the client owns, so it works in a plain script, inside a running loop (a notebook
cell: the kernel's loop is busy running the cell) and from other threads, without
nest_asyncio. httpx clients are bound to one loop, so there is one per loop.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from urllib.parse import urlsplit
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from . import credentials
from .discovery import parent_server, parent_server_url
from .errors import QJMAuthError, QJMConnectionError, QJMError, QJMHTTPError
from .formatting import CHANNEL_COLUMNS, JOB_COLUMNS, record, table
from .jobs import flatten, iter_ids, registrations
from .session import SESSION, Login
from .statuses import normalize_status

if TYPE_CHECKING:  # httpx is imported on the first request: `%load_ext qjm_jupyter` stays cheap
    import httpx

__all__ = ["JobManagerClient", "QJMError", "QJMAuthError", "QJMConnectionError", "QJMHTTPError"]

P = ParamSpec("P")
T = TypeVar("T")
C = TypeVar("C", bound="JobManagerClient")

DEFAULT_URL = "http://127.0.0.1:8888/"
API_PREFIX = "qjm/api/"
MAX_JOBS_PER_REQUEST = 1000  # the server's `max_jobs_per_request`
PAGE = 200
CONCURRENCY = 8  # per-job requests in flight (delete/info/update of many ids)

LOGIN_HINT = "run %qjm_login or JobManagerClient(...).login()"


def host_token(url: str, parent_url: str | None, parent_token: str | None) -> str | None:
    """The host credential this client may send to `url` when it holds no qjm login.

    - The Jupyter server that started this kernel: its own token (from its 0600 runtime
      file), which its Jupyter auth accepts as its user: no qjm password in personal mode.
    - A JupyterHub service (`<hub base>/services/...`, reached through the Hub's proxy):
      the Hub API token the single-user server's environment gives its kernels, which
      the service validates with the Hub. Never sent anywhere else.
    """
    if parent_url and parent_token and url == parent_url:
        return parent_token
    hub_token = os.environ.get("JUPYTERHUB_API_TOKEN")
    if hub_token:
        base = os.environ.get("JUPYTERHUB_BASE_URL", "/") or "/"
        if urlsplit(url).path.startswith(base.rstrip("/") + "/services/"):
            return hub_token
    return None


def compose_url(url: str | None, host_url: str | None, host_port: int | str | None) -> str | None:
    """`url` wins; otherwise the older `host_url` + `host_port` pair (seed client's names)."""
    if url:
        return url if url.endswith("/") else url + "/"
    if not host_url:
        return None
    base = host_url if "://" in host_url else f"http://{host_url}"
    base = base.rstrip("/")
    if host_port:
        scheme, _, rest = base.partition("://")
        host, slash, path = rest.partition("/")
        if ":" not in host.split("]")[-1]:
            host = f"{host}:{host_port}"
        base = f"{scheme}://{host}{slash}{path}".rstrip("/")
    return base + "/"


def choose_url(url: str | None, host_url: str | None = None, host_port: int | str | None = None) -> str:
    """The server a client talks to: the argument, else `QJM_URL`, else the Jupyter server that
    started this kernel. Only when none of these exists (a plain script) is a saved login's
    server used, and only if there is exactly one: a login saved for one server never
    replaces the server this kernel was configured with or runs under.
    """
    chosen = (compose_url(url, host_url, host_port) or compose_url(os.environ.get("QJM_URL"), None, None)
              or compose_url(parent_server_url(), None, None))
    if chosen is None:
        saved = credentials.load_all()
        if len(saved) == 1:
            chosen = next(iter(saved))
    return chosen or DEFAULT_URL


def _seed_login(url: str, email: str | None, password: str | None, token: str | None) -> Login:
    """A login from the given values, completed by the session saved for this very server."""
    if token is None:
        saved = credentials.load(url)
        if saved is not None and (email is None or email.lower() == saved.email.lower()):
            token, email = saved.token, email or saved.email
    return Login(url=url, email=email, password=password, token=token)


class _Unset(enum.Enum):
    """A keyword argument not given, where None means "turn off" (quiet hours, a label)."""

    UNSET = "unset"


UNSET = _Unset.UNSET


def _given(**values: Any) -> dict[str, Any]:
    """The keyword arguments that were given: the fields a partial update sends."""
    return {name: value for name, value in values.items() if value is not UNSET}


def _channel_ref(channel: str | dict[str, Any]) -> str:
    """A channel's id, from the id or from the dict `add_channel` / `all_channel_info` returned."""
    ref = channel.get("id") if isinstance(channel, dict) else channel
    if not isinstance(ref, str) or not ref or "/" in ref:
        raise ValueError(f"not a channel id: {channel!r} (pass the 'id' from add_channel or all_channel_info)")
    return ref


def _statuses(values: list[str] | None) -> list[str] | None:
    return None if values is None else [normalize_status(s) for s in values]


class _InLogin:
    """A client attribute kept in its `Login` (`email`, `_password` -> password, `_token` -> token)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.field = name.lstrip("_")

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        return self if obj is None else getattr(obj._login, self.field)

    def __set__(self, obj: Any, value: str | None) -> None:
        setattr(obj._login, self.field, value)


def _blocking(async_method: Callable[Concatenate[C, P], Awaitable[T]]) -> Callable[Concatenate[C, P], T]:
    """The sync twin of an `_async` method: same arguments, run on the client's own loop."""

    @functools.wraps(async_method)
    def method(self: C, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(async_method(self, *args, **kwargs))  # type: ignore[arg-type]

    method.__name__ = method.__qualname__ = async_method.__name__.removesuffix("_async")
    method.__doc__ = f"Blocking form of `{async_method.__name__}`. " + (async_method.__doc__ or "")
    return method


class _LoopThread:
    """A private event loop in a daemon thread: where the sync methods run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self.loop is None or self.thread is None or not self.thread.is_alive():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self.thread = threading.Thread(target=serve, name="qjm-client-loop", daemon=True)
                self.thread.start()
                ready.wait(10)
                self.loop = loop
            return self.loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.thread is not None and threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("a blocking JobManagerClient method was called from its own loop; use the _async form")
        loop = self._ensure()
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def stop(self) -> None:
        with self._lock:
            loop, thread = self.loop, self.thread
            self.loop = self.thread = None
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            if not thread.is_alive():
                loop.close()


class JobManagerClient:
    """Client for a qjm server: accounts, watched jobs, status reports.

    The server is `url`, else `QJM_URL`, else the Jupyter server that started this kernel
    (on a member's Lab in remote mode, that server forwards to the group server). The
    login is the arguments, else `QJM_EMAIL` / `QJM_PASSWORD`, else the one saved for that
    same server by `%qjm_login` (`$QJM_CONFIG_DIR/credentials.json` or
    `~/.config/qjm/credentials.json`, one entry per server). A client made without
    credentials shares the kernel's login for its server, so `%qjm_login` logs it in too.
    `url` is the server root, e.g. `http://127.0.0.1:8888/`.
    """

    def __init__(
        self,
        host_url: str | None = None,
        host_port: int | str | None = None,
        email: str | None = None,
        password: str | None = None,
        *,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 30,
    ) -> None:
        self.url: str = choose_url(url, host_url, host_port)
        env_email = os.environ.get("QJM_EMAIL") or None
        held_email = email or env_email
        held_password = password or (os.environ.get("QJM_PASSWORD") or None if not email or email == env_email else None)
        own = email is not None or password is not None or token is not None
        if own:  # credentials of its own: a client apart from the kernel's session
            self._login = _seed_login(self.url, held_email, held_password, token)
        else:  # the kernel's login for this server, shared with %qjm_login and other clients
            self._login = SESSION.login(self.url, lambda: _seed_login(self.url, held_email, held_password, None))
            if self._token is None:
                self._pick_up_saved_login()
        # Without a qjm login, the host's own credential (sent as `Authorization: token ...`).
        parent = parent_server()
        self._host_token = host_token(
            self.url, compose_url(parent.url, None, None) if parent else None, parent.token if parent else None
        )
        self.timeout = timeout
        self.requests_made = 0  # HTTP requests sent (benchmarks, tests)
        self._fields_known: bool | None = None  # False: the server refused `fields=` (older than it)
        self._runner = _LoopThread()
        self._http: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary())
        self._http_lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    # Who this client is lives in a `session.Login`, shared by the kernel's clients of one server.
    email = _InLogin()
    _password = _InLogin()
    _token = _InLogin()

    @property
    def token(self) -> str | None:
        return self._token

    @property
    def logged_in(self) -> bool:
        return self._token is not None or self._host_token is not None

    def __repr__(self) -> str:
        who = self.email or "nobody"
        return f"<JobManagerClient {self.url} as {who}{'' if self._token else ' (not logged in)'}>"

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def _client(self) -> httpx.AsyncClient:
        import httpx

        loop = asyncio.get_running_loop()
        with self._http_lock:
            client = self._http.get(loop)
            if client is None or client.is_closed:
                client = httpx.AsyncClient(
                    base_url=self.api_url,
                    timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                    headers={"Accept": "application/json", "User-Agent": "qjm-jupyter-kernel"},
                    follow_redirects=False,
                )
                self._http[loop] = client
            return client

    async def aclose(self) -> None:
        """Close the httpx client of the current loop."""
        loop = asyncio.get_running_loop()
        with self._http_lock:
            client = self._http.pop(loop, None)
        if client is not None:
            await client.aclose()

    def close(self) -> None:
        """Close connections and stop the private loop thread (the client stays usable: both restart)."""
        loop = self._runner.loop
        if loop is not None and self._runner.thread is not None and self._runner.thread.is_alive():
            try:
                self._run(self.aclose())
            except Exception:  # noqa: BLE001 - closing must not fail
                pass
        self._runner.stop()

    def __enter__(self: C) -> C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _send(self, method: str, path: str, *, json: Any = None, params: Any = None,
                    data: Any = None, token: str | None = None, host: bool = False) -> httpx.Response:
        import httpx

        if token:
            headers = {"Authorization": f"Bearer {token}"}
        elif host and self._host_token:
            headers = {"Authorization": f"token {self._host_token}"}
        else:
            headers = {}
        try:
            self.requests_made += 1
            return await self._client().request(method, path, json=json, params=params, data=data, headers=headers)
        except httpx.TimeoutException as exc:
            raise QJMConnectionError(
                f"{self.url} did not answer within {self.timeout:g}s ({method} {path}) — is the server overloaded? "
                "retry, or pass a larger timeout= to JobManagerClient"
            ) from exc
        except httpx.TransportError as exc:
            raise QJMConnectionError(
                f"cannot reach {self.url} — is the server running? start it with `jupyter lab` or `jupyter qjm`, "
                f"and point the client at it with QJM_URL or JobManagerClient(url=...) ({type(exc).__name__})"
            ) from exc

    def _error(self, response: httpx.Response) -> QJMHTTPError:
        code, field, message = "", None, ""
        try:
            body = response.json()
            err = body.get("error") if isinstance(body, dict) else None
            if isinstance(err, dict):
                code, field, message = str(err.get("code", "")), err.get("field"), str(err.get("message", ""))
        except ValueError:
            pass
        if not message:
            message = response.reason_phrase or "error"
            if response.status_code == 404 and not code:
                message += f" — is the qjm extension enabled on {self.url}? (`jupyter server extension list`)"
        if response.status_code == 429:
            message += f" (retry after {response.headers.get('Retry-After', '?')}s)"
        return QJMHTTPError(response.status_code, message, code=code, field=field,
                            method=response.request.method, url=str(response.request.url))

    async def _call(self, method: str, path: str, *, json: Any = None, params: Any = None,
                    auth: bool = True, expect: tuple[int, ...] = (200, 201, 202, 204)) -> Any:
        """One API call; on a 401 with a held password, log in again once and retry."""
        if auth and self._token is None:
            self._pick_up_saved_login()
        if auth and self._token is None and self._host_token is None:
            if self.email and self._password:
                await self.login_async()
            else:
                raise QJMAuthError(f"not logged in — {LOGIN_HINT}")
        token = self._token if auth else None
        response = await self._send(method, path, json=json, params=params, token=token, host=auth)
        if response.status_code == 401 and auth:
            if self.email and self._password:
                await self.login_async()
                response = await self._send(method, path, json=json, params=params, token=self._token)
            if response.status_code == 401:
                self._token = None
                raise QJMAuthError(f"your session expired — log in again: {LOGIN_HINT} ({self._error(response).message})")
        if response.status_code not in expect:
            raise self._error(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _pick_up_saved_login(self) -> None:
        """A login saved for this server since (`%qjm_login` in another kernel) is used; never another server's."""
        saved = credentials.load(self.url)
        if saved is not None and (self.email is None or self.email.lower() == saved.email.lower()):
            self.email, self._token = saved.email, saved.token

    async def _gather(self, calls: list[Coroutine[Any, Any, T]]) -> list[T]:
        """Run per-job calls with bounded concurrency, results in input order."""
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(coro: Coroutine[Any, Any, T]) -> T:
            async with gate:
                return await coro

        return list(await asyncio.gather(*(one(c) for c in calls)))

    # -- server -------------------------------------------------------------------------------------
    async def server_status_async(self) -> dict[str, Any]:
        """The server's public status (name, version, store, watcher_running, mail_enabled)."""
        return await self._call("GET", "status", auth=False)

    server_status = _blocking(server_status_async)

    # -- accounts -----------------------------------------------------------------------------------
    async def login_async(self, email: str | None = None, password: str | None = None, *, save: bool = False) -> dict[str, Any]:
        """Log in and keep the token (and password, in memory, for transparent re-login).

        `save=True` also writes the credentials file (token only) so other kernels find it.
        """
        email = email or self.email
        password = password or (self._password if email == self.email else None)
        if not email or not password:
            raise QJMAuthError(
                "no email/password to log in with — pass them to login(), set QJM_EMAIL and QJM_PASSWORD, "
                "or run %qjm_login"
            )
        response = await self._send("POST", "auth/login", json={"email": email, "password": password})
        if response.status_code == 401:
            raise QJMAuthError(f"login failed for {email}: {self._error(response).message}")
        if response.status_code != 200:
            raise self._error(response)
        body = response.json()
        self.email, self._password, self._token = email, password, body["access_token"]
        if save:
            credentials.save(credentials.Credentials(url=self.url, email=email, token=body["access_token"]))
        return body

    login = _blocking(login_async)

    async def logout_async(self, *, everywhere: bool = False) -> None:
        """Forget the token here and in the credentials file; `everywhere=True` also revokes
        every token the account has (other kernels, the Lab panel)."""
        if everywhere and self._token:
            await self._call("POST", "auth/logout-all", expect=(200, 204))
        if self._token:
            credentials.remove(self.url, self._token)
        self._token = None
        self._password = None

    logout = _blocking(logout_async)

    async def create_user_async(self, email: str, password: str, ibm_quantum_token: str | None = None,
                                *, default_instance: str | None = None) -> dict[str, Any]:
        """Create an account; the server emails a verification link (answer is the same if it exists)."""
        body: dict[str, Any] = {"email": email, "password": password}
        if ibm_quantum_token:
            body["ibm_quantum_token"] = ibm_quantum_token
        if default_instance:
            body["default_instance"] = default_instance
        result = await self._call("POST", "auth/register", json=body, auth=False)
        if self.email is None or self.email == email:
            self.email, self._password = email, password
        return result or {}

    create_user = _blocking(create_user_async)

    async def user_info_async(self) -> dict[str, Any]:
        """The logged-in account (`UserOut`; the IBM key itself is never returned)."""
        return await self._call("GET", "me")

    user_info = _blocking(user_info_async)

    async def print_user_info_async(self) -> None:
        info = await self.user_info_async()
        shown = dict(info)
        key = shown.pop("ibm_key", None) or {}
        shown["ibm_key"] = f"set, ends in {key.get('last4')} ({key.get('state')})" if key.get("set") else "not set"
        print(record(shown))

    print_user_info = _blocking(print_user_info_async)

    async def update_user_info_async(
        self,
        password: str | None = None,
        ibm_quantum_token: str | None = None,
        current_password: str | None = None,
        *,
        email: str | None = None,
        default_instance: str | None = None,
        notify_default: list[str] | None = None,
        clear_ibm_quantum_token: bool = False,
    ) -> dict[str, Any]:
        """Change the account; password changes, and email changes of a password account, need the
        current password (the held one by default). An account the host (Jupyter, JupyterHub)
        authenticates has no password: its address changes without one."""
        body: dict[str, Any] = {}
        if password is not None:
            body["password"] = password
        if email is not None:
            body["email"] = email
        if ibm_quantum_token is not None:
            body["ibm_quantum_token"] = ibm_quantum_token
        elif clear_ibm_quantum_token:
            body["ibm_quantum_token"] = None
        if default_instance is not None:
            body["default_instance"] = default_instance
        if notify_default is not None:
            body["notify_default"] = [normalize_status(s) for s in notify_default]
        current = current_password or self._password
        if password is not None or email is not None:
            if current:
                body["current_password"] = current
            elif password is not None or self._token is not None:
                raise QJMAuthError("changing the password or email needs current_password=")
        result = await self._call("PATCH", "me", json=body)
        if password is not None and self._password is not None:
            self._password = password
        if email is not None:
            self.email = email
        return result

    update_user_info = _blocking(update_user_info_async)

    # -- jobs ---------------------------------------------------------------------------------------
    async def _register(self, records: list[dict[str, Any]], leaves: list[Any]) -> dict[str, Any]:
        result: dict[str, Any] = {"jobs": [], "created": 0, "merged": 0}
        for start in range(0, len(records), MAX_JOBS_PER_REQUEST):
            part = await self._call("POST", "jobs", json={"jobs": records[start:start + MAX_JOBS_PER_REQUEST]})
            result["jobs"].extend(part.get("jobs", []))
            result["created"] += int(part.get("created", 0))
            result["merged"] += int(part.get("merged", 0))
        local = [(leaf.job, rec["job_id"]) for leaf, rec in zip(leaves, records) if rec.get("source") == "local"]
        if local:
            SESSION.watch_local(self.report_status, local, self.local_checkin)
        return result

    async def register_job_async(self, job: Any, notify_status: Any = None, *, label: str | None = None,
                                 group: str | None = None) -> dict[str, Any]:
        """Watch one job, a job id, or nested lists of either (one request per 1,000 jobs).

        `notify_status` has the shape of `job` (or is one flat list of statuses for all);
        None means the account's default. Local jobs (Aer, primitives) are watched by
        this kernel, which reports their status to the server.
        """
        leaves = flatten(job, notify_status)
        if not leaves:
            return {"jobs": [], "created": 0, "merged": 0}
        return await self._register(registrations(leaves, label=label, group=group), leaves)

    register_job = _blocking(register_job_async)

    async def register_start_and_done_async(self, job: Any, *, label: str | None = None,
                                            group: str | None = None) -> dict[str, Any]:
        """Mail when the first job starts RUNNING and when the last is DONE, as one group.

        A single job gets both. (The older client registered the first job twice.)
        """
        leaves = flatten(job, None)
        if not leaves:
            return {"jobs": [], "created": 0, "merged": 0}
        if len(leaves) == 1:
            leaves[0].notify = ["RUNNING", "DONE"]
            chosen = [leaves[0]]
        else:
            leaves[0].notify, leaves[-1].notify = ["RUNNING"], ["DONE"]
            chosen = [leaves[0], leaves[-1]]
        group = group or f"start-done-{os.urandom(4).hex()}"
        return await self._register(registrations(chosen, label=label, group=group), chosen)

    register_start_and_done = _blocking(register_start_and_done_async)

    async def all_job_info_async(self, *, status: str | list[str] | None = None, active: bool | None = None,
                                 label: str | None = None, group: str | None = None,
                                 fields: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Every watched job of the account (newest first), following pages.

        `fields` names the JobOut fields wanted (`id` always comes); None gives whole
        records. A table asks only for what it shows, a fraction of the bytes; a server
        older than `fields=` (its 422 names the parameter) is answered with whole records.
        """
        params: list[tuple[str, str]] = []
        for s in [status] if isinstance(status, str) else status or []:
            params.append(("status", normalize_status(s)))
        if active is not None:
            params.append(("active", "true" if active else "false"))
        if label is not None:
            params.append(("label", label))
        if group is not None:
            params.append(("group", group))
        if fields is not None and self._fields_known is not False:
            params.append(("fields", ",".join(fields)))
        jobs: list[dict[str, Any]] = []
        offset = 0
        while True:
            query = [*params, ("limit", str(PAGE)), ("offset", str(offset))]
            try:
                page = await self._call("GET", "jobs", params=query)
            except QJMHTTPError as exc:
                if exc.status != 422 or not (exc.field or "").startswith("fields") or offset:
                    raise
                self._fields_known = False
                params = [p for p in params if p[0] != "fields"]
                continue
            batch = page.get("jobs", [])
            jobs.extend(batch)
            offset += len(batch)
            if not batch or offset >= int(page.get("total", 0)):
                return jobs

    all_job_info = _blocking(all_job_info_async)

    async def print_all_job_info_async(self, **filters: Any) -> None:
        fields = [name for name, _ in JOB_COLUMNS]
        print(table(await self.all_job_info_async(**filters, fields=fields), JOB_COLUMNS))

    print_all_job_info = _blocking(print_all_job_info_async)

    async def job_info_async(self, job_id: Any) -> Any:
        """One job (`JobOut`) by IBM job id, our id or job object; nested lists give nested results."""
        if isinstance(job_id, (list, tuple)):
            return await self._gather([self.job_info_async(j) for j in job_id])
        (one,) = list(iter_ids(job_id))
        return await self._call("GET", f"jobs/{one}")

    job_info = _blocking(job_info_async)

    async def print_job_info_async(self, job_id: Any) -> None:
        ids = list(iter_ids(job_id))
        print(table(await self._gather([self.job_info_async(j) for j in ids]), JOB_COLUMNS))

    print_job_info = _blocking(print_job_info_async)

    async def update_job_info_async(self, info: dict[str, Any] | list[dict[str, Any]]) -> Any:
        """Change `notify_status` / `label` of jobs: a dict, or a list of dicts, each with `job_id`."""
        if isinstance(info, (list, tuple)):
            return await self._gather([self.update_job_info_async(i) for i in info])
        if not isinstance(info, dict) or "job_id" not in info:
            raise ValueError("update_job_info takes a dict (or a list of dicts) with a 'job_id' key")
        body = {k: v for k, v in info.items() if k != "job_id"}
        if "notify_status" in body and body["notify_status"] is not None:
            body["notify_status"] = [normalize_status(s) for s in body["notify_status"]]
        return await self._call("PATCH", f"jobs/{info['job_id']}", json=body)

    update_job_info = _blocking(update_job_info_async)

    async def delete_job_async(self, job_id: Any) -> int:
        """Stop watching jobs (ids, job objects, nested lists); nothing happens on IBM's side."""
        ids = list(iter_ids(job_id))
        SESSION.forget_local(ids)
        await self._gather([self._call("DELETE", f"jobs/{j}") for j in ids])
        return len(ids)

    delete_job = _blocking(delete_job_async)

    async def delete_all_job_async(self) -> int:
        """Stop watching every job of the account; returns how many were deleted."""
        SESSION.forget_local(None)
        result = await self._call("DELETE", "jobs")
        return int((result or {}).get("deleted", 0))

    delete_all_job = _blocking(delete_all_job_async)

    async def report_status_async(self, job_id: str, status: Any, reason: str | None = None) -> dict[str, Any]:
        """Tell the server the status of a local job (the kernel watches those itself)."""
        body: dict[str, Any] = {"status": normalize_status(status)}
        if reason:
            body["reason"] = reason
        return await self._call("POST", f"jobs/{job_id}/status", json=body)

    report_status = _blocking(report_status_async)

    async def cancel_job_async(self, job_id: Any) -> dict[str, Any]:
        """Cancel a job (an id or a job object): an IBM job on IBM Quantum, with the API key
        stored on the server; a local job through the kernel that runs it, if that kernel is
        alive (else the server answers 409 "the kernel that runs this job is gone").

        Returns `{"state": "cancelled" | "requested", "message", "job"}`."""
        [ref] = list(iter_ids(job_id)) or [""]
        return await self._call("POST", f"jobs/{ref}/cancel")

    cancel_job = _blocking(cancel_job_async)

    async def local_checkin_async(self, job_ids: list[str]) -> dict[str, Any]:
        """The local watcher's check-in: these jobs still run here; answers which to cancel."""
        return await self._call("POST", "jobs/local/checkin", json={"job_ids": list(job_ids)})

    local_checkin = _blocking(local_checkin_async)

    # -- notification channels (Apprise URLs) -------------------------------------------------------
    async def all_channel_info_async(self) -> list[dict[str, Any]]:
        """Your notification channels (`ChannelOut`): id, scheme, host, label, notify_status,
        enabled. A channel's URL holds its secret, so the server never returns it."""
        return list((await self._call("GET", "channels")).get("channels", []))

    all_channel_info = _blocking(all_channel_info_async)

    async def print_all_channel_info_async(self) -> None:
        print(table(await self.all_channel_info_async(), CHANNEL_COLUMNS))

    print_all_channel_info = _blocking(print_all_channel_info_async)

    async def channel_info_async(self, channel: str | dict[str, Any]) -> dict[str, Any]:
        """One channel, by id (or the dict `add_channel` returned)."""
        return await self._call("GET", f"channels/{_channel_ref(channel)}")

    channel_info = _blocking(channel_info_async)

    async def add_channel_async(self, url: str, notify_status: list[str] | None = None, *,
                                label: str | None = None) -> dict[str, Any]:
        """Add a channel: an Apprise URL (`ntfys://ntfy.sh/my-topic`, `slack://T/B/C`,
        `discord://id/token`, `jsons://host/path` for a JSON webhook, ...). It hears of
        `notify_status` (default: the account's notify_default) and of group milestones.
        The server refuses (422 on `url`) schemes that act on its own machine and hosts
        on its own network."""
        body: dict[str, Any] = {"url": url}
        if notify_status is not None:
            body["notify_status"] = _statuses(notify_status)
        if label is not None:
            body["label"] = label
        return await self._call("POST", "channels", json=body)

    add_channel = _blocking(add_channel_async)

    async def update_channel_async(
        self,
        channel: str | dict[str, Any],
        *,
        url: str | _Unset = UNSET,
        notify_status: list[str] | _Unset = UNSET,
        label: str | None | _Unset = UNSET,
        enabled: bool | _Unset = UNSET,
    ) -> dict[str, Any]:
        """Change a channel: only the arguments given change (`label=None` removes the label,
        `enabled=False` pauses it, `url=` replaces the URL, checked like a new one)."""
        body = _given(url=url, notify_status=notify_status, label=label, enabled=enabled)
        if isinstance(body.get("notify_status"), list):
            body["notify_status"] = _statuses(body["notify_status"])
        return await self._call("PATCH", f"channels/{_channel_ref(channel)}", json=body)

    update_channel = _blocking(update_channel_async)

    async def delete_channel_async(self, channel: str | dict[str, Any]) -> None:
        """Delete a channel (a delivery to it not yet sent fails with "the channel was deleted")."""
        await self._call("DELETE", f"channels/{_channel_ref(channel)}")

    delete_channel = _blocking(delete_channel_async)

    async def test_channel_async(self, channel: str | dict[str, Any]) -> dict[str, Any]:
        """Queue a test message to a channel (at most 5 an hour); see `channel_deliveries` for its fate."""
        return await self._call("POST", f"channels/{_channel_ref(channel)}/test")

    test_channel = _blocking(test_channel_async)

    async def channel_deliveries_async(self, channel: str | dict[str, Any], *, limit: int = 50,
                                       offset: int = 0) -> list[dict[str, Any]]:
        """A channel's delivery log, newest first: each message's state (pending, sent,
        failed), attempts and last error (why a message is late or failed)."""
        page = await self._call("GET", f"channels/{_channel_ref(channel)}/deliveries",
                                params={"limit": limit, "offset": offset})
        return list(page.get("notifications", []))

    channel_deliveries = _blocking(channel_deliveries_async)

    # -- notification preferences and the delivery log -----------------------------------------------
    async def delivery_log_async(self, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Every message queued for you (emails and channel deliveries), newest first."""
        page = await self._call("GET", "notifications", params={"limit": limit, "offset": offset})
        return list(page.get("notifications", []))

    delivery_log = _blocking(delivery_log_async)

    async def notification_preferences_async(self) -> dict[str, Any]:
        """Your preferences: mail_stopped, time_zone, quiet_start/quiet_end,
        quiet_breakthrough, digest_minutes (`PreferencesOut`)."""
        return await self._call("GET", "notifications/preferences")

    notification_preferences = _blocking(notification_preferences_async)

    async def update_notification_preferences_async(
        self,
        *,
        time_zone: str | None | _Unset = UNSET,
        quiet_start: str | None | _Unset = UNSET,
        quiet_end: str | None | _Unset = UNSET,
        quiet_breakthrough: list[str] | _Unset = UNSET,
        digest_minutes: int | _Unset = UNSET,
        mail_stopped: bool | _Unset = UNSET,
    ) -> dict[str, Any]:
        """Change your preferences; only the arguments given change.

        Quiet hours are local "HH:MM" times in `time_zone` (an IANA name), given together
        (`quiet_start=None, quiet_end=None` turns them off); job mail is held during them
        and sent as one summary when they end, except statuses in `quiet_breakthrough`.
        `digest_minutes` N sends one summary mail per N minutes (1440: daily; 0: off).
        `mail_stopped=False` turns job mail on again after the mails' "stop all" link.
        Channels and group milestones are never held."""
        body = _given(time_zone=time_zone, quiet_start=quiet_start, quiet_end=quiet_end,
                      quiet_breakthrough=quiet_breakthrough, digest_minutes=digest_minutes,
                      mail_stopped=mail_stopped)
        if isinstance(body.get("quiet_breakthrough"), list):
            body["quiet_breakthrough"] = _statuses(body["quiet_breakthrough"])
        return await self._call("PUT", "notifications/preferences", json=body)

    update_notification_preferences = _blocking(update_notification_preferences_async)
