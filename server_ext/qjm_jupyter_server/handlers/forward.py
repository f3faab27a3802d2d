"""`{base_url}qjm/*` on a member's Jupyter server: relayed to the group server (remote mode).

Parse the request, one `GroupServer.forward` call, stream the answer back chunk by
chunk (flushed as it arrives). Which headers cross, the timeouts and the error answers
are the service's business (`remote.py`).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin

from ..api.spec import Op
from ..errors import QJMError
from ..remote import GroupServer


class ForwardHandler(ExtensionHandlerMixin, APIHandler):
    """Every qjm/ route except `qjm/api/status`, which the member server answers itself."""

    route: ClassVar[str] = r"/qjm/(?P<path>.*)"
    spec: ClassVar[dict[str, Op]] = {}  # the group server's OpenAPI document describes these
    in_openapi: ClassVar[bool] = False
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

    def check_xsrf_cookie(self) -> None:
        # The qjm credential is a bearer header, and Jupyter's XSRF value is not forwarded.
        return None

    @property
    def group(self) -> GroupServer:
        return self.extensionapp.group  # type: ignore[attr-defined,no-any-return]

    async def _relay(self, path: str) -> None:  # path: decoded by tornado; the raw one is forwarded
        request = self.request
        try:
            answer = await self.group.forward(
                request.method or "GET", request.path[len(self.base_url) + len("qjm/"):], request.query,
                request.headers.get_all(), request.body or b"")
        except QJMError as exc:
            self._send_error(exc)
            return
        self.clear()
        self.set_status(answer.status, answer.reason)
        seen: set[str] = set()
        for name, value in answer.headers:  # the first of a name replaces Jupyter's default
            (self.add_header if name.lower() in seen else self.set_header)(name, value)
            seen.add(name.lower())
        try:
            async for chunk in answer.chunks():
                self.write(chunk)
                await self.flush()
        except QJMError as exc:  # headers already sent: all we can do is end the response early
            self.log.warning("qjm: %s", exc)
            if self.request.connection is not None and not self._finished:
                self.request.connection.close()
            return
        self.finish()

    def _send_error(self, exc: QJMError) -> None:
        self.clear()
        self.set_status(exc.status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(exc.to_json()))

    # Every verb is the same relay; the group server's own handlers decide what is allowed.
    # (Jupyter's auth does not apply: the qjm credential is the bearer token the group checks.)
    get = head = post = put = patch = delete = allow_unauthenticated(_relay)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors outside the relay (Jupyter's origin check, a bug) stay JSON."""
        message = "internal error; the server log has the details" if status_code >= 500 else self._reason
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"error": {"code": f"http_{status_code}", "message": message}}))
