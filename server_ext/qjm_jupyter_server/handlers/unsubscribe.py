"""`qjm/unsubscribe`: the stop links of every mail (RFC 8058 one-click, and the footer's).

- `POST qjm/unsubscribe?token=…` with `List-Unsubscribe=One-Click` is what a mail provider
  sends for the `List-Unsubscribe` header: no login, no cookies, no XSRF token (RFC 8058
  §3.2), a 200 and never a redirect. The body is read loosely (form, multipart or JSON):
  the token in the URL is what counts. The confirmation page POSTs `{"token": …}` here.
- `GET qjm/unsubscribe?token=…` only shows a confirmation page: mail scanners fetch
  every link, so a GET must never change anything.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from ..api.spec import Op
from .base import QJMHandler
from .pages import _PageHandler


class StoppedOut(BaseModel):
    scope: str = Field(description="job: that job's notifications stopped | group: those of every job of that group | account: all notification email stopped")
    message: str


class UnsubscribeHandler(_PageHandler):
    route = r"/qjm/unsubscribe"
    template = "page_unsubscribe.html.j2"
    title = "Stop notifications"
    spec = {
        "post": Op(
            "Stop notifications from a mail's stop link (RFC 8058 one-click; no login)",
            response=StoppedOut, auth=False, tags=("notifications",), errors=(404, 422),
            description="The token comes in the query (`?token=`, as in the `List-Unsubscribe` header) or as "
            "`token` in a JSON or form body. Idempotent.",
        )
    }

    async def get(self) -> None:  # type: ignore[override]
        self._question = await self.services.stop.confirmation(self.get_query_argument("token", ""))
        await super().get()  # type: ignore[misc]

    def context(self) -> dict[str, Any]:
        question, can_stop = getattr(self, "_question", ("", False))
        return {"stop_path": "unsubscribe", "question": question, "can_stop": can_stop}

    def _token(self) -> str:
        token = self.get_query_argument("token", "")
        if token:
            return token
        ctype = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype == "application/json":
            try:
                data = json.loads(self.request.body or b"{}")
            except ValueError:
                data = {}
            value = data.get("token") if isinstance(data, dict) else None
            return value if isinstance(value, str) else ""
        return self.get_body_argument("token", "") if ctype == "application/x-www-form-urlencoded" else ""

    async def post(self) -> None:
        done = await self.services.stop.stop(self._token())
        self.send(StoppedOut(scope=done.scope, message=done.message))


HANDLERS: list[type[QJMHandler]] = [UnsubscribeHandler]
