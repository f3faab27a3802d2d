"""`GET qjm/api/status`: is the extension up, and which store does it use (no auth)."""

from __future__ import annotations

from dataclasses import asdict

from pydantic import BaseModel

from ..version import __version__
from ..api.spec import Op
from .base import QJMHandler


class StatusResponse(BaseModel):
    name: str = "qjm-jupyter"
    version: str = __version__
    store: str
    watcher_running: bool
    mail_enabled: bool


class StatusHandler(QJMHandler):
    route = r"/qjm/api/status"
    spec = {"get": Op("Server status", response=StatusResponse, auth=False, tags=("meta",))}

    def get(self) -> None:
        self.send(StatusResponse(**asdict(self.services.status())))
