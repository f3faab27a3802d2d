"""`GET qjm/api/status`: is the extension up, and which store does it use (no auth)."""

from __future__ import annotations

from pydantic import BaseModel

from .. import __version__
from ..api.spec import Op
from .base import QJMHandler


class StatusResponse(BaseModel):
    name: str = "qjm-jupyter"
    version: str
    store: str
    watcher_running: bool
    mail_enabled: bool


class StatusHandler(QJMHandler):
    route = r"/qjm/api/status"
    spec = {"get": Op("Server status", response=StatusResponse, auth=False, tags=("meta",))}

    def get(self) -> None:
        svc = self.services
        self.send(
            StatusResponse(
                version=__version__,
                store=type(svc.store).__name__,
                watcher_running=svc.poller.has_work() or getattr(svc.poller, "running", False),
                mail_enabled=bool(svc.settings.smtp_host),
            )
        )
