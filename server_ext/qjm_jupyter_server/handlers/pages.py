"""`GET qjm/verify` and `GET qjm/reset`: the small pages the emailed links open.

A GET only renders a form; the token is consumed by the page's POST to the API, so a
mail scanner that fetches every link cannot burn it. The token is never echoed by the
server, the page drops it from the address bar, and `Referrer-Policy: no-referrer`
keeps it out of any request the page makes.
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

from ..api.spec import Op
from ..notify.render import render
from .base import QJMHandler


class _PageHandler(QJMHandler):
    spec: ClassVar[dict[str, Op]] = {}  # public, not part of the JSON API
    in_openapi: ClassVar[bool] = False
    template: ClassVar[str] = ""
    title: ClassVar[str] = ""

    @property
    def nonce(self) -> str:
        if not hasattr(self, "_qjm_nonce"):
            self._qjm_nonce = secrets.token_urlsafe(16)
        return self._qjm_nonce

    @property
    def content_security_policy(self) -> str:
        return (
            f"default-src 'none'; script-src 'nonce-{self.nonce}'; style-src 'nonce-{self.nonce}'; "
            "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
        )

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def context(self) -> dict[str, Any]:
        return {}

    def get(self) -> None:
        html = render(
            self.services.settings.templates_dir,
            self.template,
            {"title": self.title, "nonce": self.nonce, **self.context()},
        )
        self.set_status(200)
        self.finish(html, set_content_type="text/html; charset=UTF-8")


class VerifyPageHandler(_PageHandler):
    route = r"/qjm/verify"
    template = "page_verify.html.j2"
    title = "Confirm your email address"

    def context(self) -> dict[str, Any]:
        return {"confirm_path": "api/auth/verify/confirm"}


class ResetPageHandler(_PageHandler):
    route = r"/qjm/reset"
    template = "page_reset.html.j2"
    title = "Choose a new password"

    def context(self) -> dict[str, Any]:
        return {"reset_path": "api/auth/password/reset"}


HANDLERS: list[type[QJMHandler]] = [VerifyPageHandler, ResetPageHandler]
