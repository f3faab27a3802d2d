"""`GET qjm/…`: the web UI's HTML shell and its static bundle, in every mode.

Every page of the web UI (`qjm/`, `qjm/jobs/{id}`, `qjm/account`, `qjm/notifications`, `qjm/admin`, sign-in
forms) gets the same small shell; the bundle (built from `labextension/src/webui/`, the
same data layer and parts as the Lab panel) routes on the path. The shell names its
page in `data-qjm-page` so a title and a no-script reader still know where they are.

The CSP is as strict as the verify/reset pages': the one script and the one stylesheet
load by nonce, nothing from another origin, API calls to this origin only. The qjm JWT
lives in the page's memory and `sessionStorage`; `Referrer-Policy: no-referrer` keeps
addresses out of any request.

Under the host's identity (`jupyter`, `hub`) the page request itself may already be
signed in (Jupyter's login cookie; the Hub OAuth cookie of this service). The shell then
says so (`data-qjm-identity`), with the XSRF token the page's API calls must send (the
cookie is ambient: Jupyter's rules, and the Hub's for a service, refuse a cookie-only
unsafe request, and the Hub refuses a cookie-only `fetch`) and where signing out goes
(the identity provider's `logout`, which drops that cookie). The web UI then has no
sign-in form. As a JupyterHub service every page needs the Hub user: a request without
one is sent through the Hub's OAuth (HubOAuth's state cookie and authorize redirect,
completed at `<prefix>oauth_callback`), which ends on the Hub's login page for a
browser that is not signed in to the Hub.
"""

from __future__ import annotations

import hashlib
import html
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from jupyter_server.base.handlers import FileFindHandler
from tornado import web

from .. import webui
from .base import QJMHandler
from .pages import _PageHandler

PAGES = {
    "": ("jobs", "Your quantum jobs"),
    "sign-in": ("sign-in", "Sign in"),
    "sign-up": ("sign-up", "Create an account"),
    "forgot": ("forgot", "Forgot password"),
    "account": ("account", "Account"),
    "notifications": ("notifications", "Notifications"),
    "admin": ("admin", "Administration"),
    "admin/users": ("admin", "Users"),
    "admin/jobs": ("admin", "All jobs"),
}


@lru_cache(maxsize=8)
def _version(path: Path, mtime_ns: int) -> str:
    """Cache-busting query value: the file's content hash (changes with every build)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def asset_version(name: str) -> str | None:
    path = webui.STATIC_DIR / name
    try:
        return _version(path, path.stat().st_mtime_ns)
    except OSError:
        return None


class WebUIHandler(_PageHandler):
    route = r"/qjm(?P<page>/?|/sign-in|/sign-up|/forgot|/account|/notifications|/admin|/admin/users|/admin/jobs|/jobs/[^/]+)"

    @property
    def content_security_policy(self) -> str:
        return (
            f"default-src 'none'; script-src 'nonce-{self.nonce}'; style-src 'nonce-{self.nonce}'; "
            "img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; "
            "base-uri 'none'"
        )

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if not self._finished and self.services.identity.source == "hub" and self._facts().host_user is None:
            self.redirect(self.get_login_url())  # the Hub's OAuth, back to this page

    def get_login_url(self) -> str:
        """Where a browser signs in: a page redirects there (APIHandler's answer is a 403,
        right for JSON). Under JupyterHub the identity provider wraps this to the Hub's
        OAuth authorize URL with a fresh state cookie."""
        return web.RequestHandler.get_login_url(self)

    def get(self, page: str | None = None) -> None:  # type: ignore[override]
        status, body = self.page((page or "").strip("/"))
        self.set_status(status)
        self.finish(body, set_content_type="text/html; charset=UTF-8")

    def host_session(self) -> dict[str, str]:
        """The shell's `data-qjm-*` facts when the host signed this page request in (else none)."""
        if self.services.identity.source == "accounts" or self._facts().host_user is None:
            return {}
        token = self.xsrf_token  # sets the `_xsrf` cookie the API calls are checked against
        return {
            "identity": self.services.identity.source,
            "xsrf": token.decode("ascii") if isinstance(token, bytes) else str(token),
            "sign-out": f"{self.base_url}logout",
        }

    def page(self, page: str) -> tuple[int, str]:
        """The shell of one page; 503 while the bundle is not built."""
        name, title = ("job", "Job") if page.startswith("jobs/") else PAGES[page]
        script, style = asset_version(webui.SCRIPT), asset_version(webui.STYLE)
        return (200 if script and style else 503), self.shell(name, title, script, style)

    def shell(self, page: str, title: str, script: str | None, style: str | None) -> str:
        base = html.escape(self.base_url, quote=True)
        static = f"{base}qjm/static/"
        nonce = self.nonce
        head = ""
        if script and style:
            head = (
                f'<link rel="stylesheet" nonce="{nonce}" href="{static}{webui.STYLE}?v={style}">\n'
                f'<script defer nonce="{nonce}" src="{static}{webui.SCRIPT}?v={script}"></script>\n'
            )
        body = (
            "<noscript><p>The qjm web UI needs JavaScript.</p></noscript>"
            if script and style
            else "<p>The qjm web UI is not built: run <code>jlpm build</code> in labextension/ "
            "or reinstall qjm-jupyter.</p>"
        )
        host = "".join(f' data-qjm-{k}="{html.escape(v, quote=True)}"' for k, v in self.host_session().items())
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="referrer" content="no-referrer">\n'
            '<meta name="color-scheme" content="light dark">\n'
            f"<title>{html.escape(title)} · qjm</title>\n{head}</head>\n"
            f'<body data-qjm-page="{page}" data-qjm-base-url="{base}"{host}>\n'
            f'<div id="qjm-app" class="qjm-app">{body}</div>\n</body>\n</html>\n'
        )


class WebUIStaticHandler(FileFindHandler):
    """The bundle's files. Public, like Jupyter's own static files: they hold no data."""

    route: ClassVar[str] = r"/qjm/static/(.*)"
    _static_paths: ClassVar[dict[str, str]] = {}  # FileFindHandler caches per class; not Lab's cache

    def initialize(self, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(path=str(webui.STATIC_DIR))

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")

    @property
    def content_security_policy(self) -> str:
        return "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


HANDLERS: list[type[QJMHandler]] = [WebUIHandler]
STATIC_HANDLERS = [WebUIStaticHandler]
