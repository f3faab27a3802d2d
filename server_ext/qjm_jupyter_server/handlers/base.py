"""The thin layer every qjm handler shares: bearer-JWT auth, JSON in and out, errors.

A handler subclass declares `route` (relative to base_url) and `spec` (one `Op` per
verb); its verb methods then only parse (`self.body()` / `self.query()`), call a
service and `self.send(...)` the result.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import parse_qsl

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json
from tornado import web

from ..api.spec import Op
from ..errors import InvalidInput, PayloadTooLarge, QJMError, ServiceUnavailable, TooManyRequests, Unauthorized
from ..identity import RequestFacts
from ..store.base import StoreUnavailable
from .host_identity import request_facts

if TYPE_CHECKING:
    from ..domain import User
    from ..services import Services

M = TypeVar("M", bound=BaseModel)

MAX_BODY_BYTES = 1024 * 1024
VERBS = ("get", "post", "put", "patch", "delete")
STORE_RETRY_AFTER_S = 30
_PENDING = object()  # the host's identity provider is still deciding who is calling
log = logging.getLogger("qjm")


def validation_error(exc: ValidationError) -> InvalidInput:
    """The first pydantic error, as one message naming its field."""
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__") or None
    msg = first.get("msg", "invalid value")
    return InvalidInput(f"{field}: {msg}" if field else msg, field=field)


def store_unavailable(exc: StoreUnavailable) -> ServiceUnavailable:
    """A database that refuses writes (read-only file, full disk, server down) is an
    outage the client can wait out: 503, not a 500. The detail (file paths) is logged,
    never sent."""
    log.error("qjm: storage unavailable: %s", exc)
    return ServiceUnavailable("storage is unavailable (read-only, full or unreachable); nothing was changed, try again later")


def _guarded(method: Callable[..., Awaitable[Any] | Any]) -> Callable[..., Awaitable[Any]]:
    """Turn QJMError / ValidationError raised by a verb into our JSON error response."""

    @functools.wraps(method)
    async def wrapper(self: QJMHandler, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
            if isinstance(result, Awaitable):
                result = await result
            return result
        except ValidationError as exc:
            self.send_qjm_error(validation_error(exc))
        except QJMError as exc:
            self.send_qjm_error(exc)
        except StoreUnavailable as exc:
            self.send_qjm_error(store_unavailable(exc))

    return wrapper


class QJMHandler(ExtensionHandlerMixin, APIHandler):
    """Base of every qjm route. qjm routes do their own auth: a bearer JWT of a qjm
    account in every mode, and, where the identity source says so, the user Jupyter's
    own auth (or JupyterHub's) accepted (identity/)."""

    route: ClassVar[str] = ""
    spec: ClassVar[dict[str, Op]] = {}

    _account: User | None = None
    auth_via: str | None = None  # which identity source recognised the request
    _qjm_authenticating = False  # set once prepare() starts asking who is calling

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Jupyter's own auth is not the only way in (a qjm JWT is no Jupyter token), so
        # every verb is marked for Jupyter's layer and checked by `prepare` instead, which
        # also accepts the user Jupyter authenticated when the identity source says so.
        for verb in VERBS:
            if verb in cls.__dict__:
                setattr(cls, verb, allow_unauthenticated(_guarded(cls.__dict__[verb])))

    # -- jupyter_server hooks -------------------------------------------------------------
    def check_xsrf_cookie(self) -> None:
        """Jupyter's XSRF rules wherever Jupyter's user (maybe from a cookie) may act.

        A qjm JWT travels in a header, never as an ambient cookie: no XSRF risk, and it
        is the only credential when the identity source is `accounts`. Otherwise a
        cookie-authenticated unsafe request needs the `_xsrf` token, exactly as Jupyter
        requires (token-authenticated requests are exempt there too).

        Under JupyterHub the identity provider asks this too, while it decides whether to
        accept the service's cookie (before Jupyter knows the user): the Hub's rules then
        apply, which also refuse a cookie-only `fetch` GET.
        """
        if not self._qjm_authenticating:
            return None  # called by tornado before prepare(); prepare() calls again
        op = self.op
        if op is None or not op.auth:
            return None  # a public route (login, emailed links) never acts as the cookie's user
        if self.services.identity.source == "accounts" or self._facts().bearer_jwt is not None:
            return None
        if getattr(self, "_jupyter_current_user", _PENDING) is None:
            return None  # nothing ambient authenticated this request; it gets our 401
        return super().check_xsrf_cookie()

    def _facts(self) -> RequestFacts:
        return request_facts(self, self.services.identity.source)

    @property
    def services(self) -> Services:
        return self.extensionapp.services  # type: ignore[attr-defined,no-any-return]

    @property
    def user(self) -> User:
        """The qjm account that sent this request (an operation with `auth=True`).

        Not tornado's `current_user`: jupyter_server assigns its own identity there in
        `prepare` and logs it; the qjm account is another thing.
        """
        if self._account is None:  # an auth=False operation asked: a bug, never a client's doing
            raise Unauthorized("this operation has no authenticated account")
        return self._account

    @property
    def op(self) -> Op | None:
        return self.spec.get(self.request.method.lower()) if self.request.method else None

    async def prepare(self) -> None:  # type: ignore[override]
        self._qjm_authenticating = True
        await super().prepare()
        if self._finished:
            return
        try:
            length = int(self.request.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES or len(self.request.body or b"") > MAX_BODY_BYTES:
                raise PayloadTooLarge(f"request body is larger than {MAX_BODY_BYTES} bytes", field="body")
            if self.services is not None:  # None on a member server, which only answers its status
                await self.services.ensure_open()
            op = self.op
            if op is not None and op.auth:
                resolved = await self.services.identity.authenticate(self._facts())
                self._account, self.auth_via = resolved.user, resolved.via
        except QJMError as exc:
            self.send_qjm_error(exc)
        except StoreUnavailable as exc:
            self.send_qjm_error(store_unavailable(exc))

    # -- parsing --------------------------------------------------------------------------
    def body(self, model: type[M] | None = None) -> M:
        """Validate the request body with the operation's declared model."""
        op = self.op
        model = model or (op.body if op else None)  # type: ignore[assignment]
        assert model is not None, "operation declares no body model"
        ctype = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        raw = self.request.body or b""
        if op is not None and op.form and ctype == "application/x-www-form-urlencoded":
            try:
                data: Any = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                raise InvalidInput("form body is not UTF-8", field="body") from None
        else:
            if not raw.strip():
                raise InvalidInput("request body is empty; send a JSON object", field="body")
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise InvalidInput("request body is not valid JSON", field="body") from None
            except RecursionError:
                raise InvalidInput("request body is nested too deeply", field="body") from None
        return model.model_validate(data)  # type: ignore[return-value]

    def query(self, model: type[M] | None = None) -> M:
        """Validate query parameters (repeated keys become lists) with the declared model."""
        op = self.op
        model = model or (op.query if op else None)  # type: ignore[assignment]
        assert model is not None, "operation declares no query model"
        data: dict[str, Any] = {}
        for key, values in self.request.query_arguments.items():
            decoded = [v.decode("utf-8", "replace") for v in values]
            data[key] = decoded if len(decoded) > 1 else decoded[0]
        return model.model_validate(data)  # type: ignore[return-value]

    # -- responses ------------------------------------------------------------------------
    def _set_op_headers(self) -> None:
        for name, value in self.op.headers if self.op else ():
            self.set_header(name, value)

    def send(self, payload: BaseModel | dict[str, Any] | list[Any] | None, status: int | None = None) -> None:
        op = self.op
        self.set_status(status or (op.status if op else 200))
        self._set_op_headers()
        if payload is None or self.get_status() == 204:
            self.finish()
            return
        text: str | bytes
        if isinstance(payload, BaseModel):
            text = payload.model_dump_json(by_alias=True)
        else:
            # pydantic-core's encoder: a 1,000-job list encodes ~6x faster than with json.dumps.
            text = to_json(payload, fallback=str)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(text)

    def send_qjm_error(self, exc: QJMError) -> None:
        if self._finished:
            return
        self.clear()
        self.set_status(exc.status)
        self._set_op_headers()
        if isinstance(exc, TooManyRequests):
            self.set_header("Retry-After", str(exc.retry_after))
        if isinstance(exc, ServiceUnavailable):
            self.set_header("Retry-After", str(STORE_RETRY_AFTER_S))
        if exc.status == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="qjm"')
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(exc.to_json()))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors raised outside our services (405, Jupyter's origin check, a bug) stay JSON."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = self._reason
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        if status_code >= 500:
            message = "internal error; the server log has the details"
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"error": {"code": f"http_{status_code}", "message": message}}))
