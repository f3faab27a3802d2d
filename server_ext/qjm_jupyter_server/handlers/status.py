"""`GET qjm/api/status`: is the extension up, in which mode, and which store does it use (no auth).

Answered locally in every mode, also on a member server (which forwards the rest of
qjm/ to its group server): it is how a client learns where its qjm data lives.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Literal

from pydantic import BaseModel, Field

from ..version import __version__
from ..api.spec import Op
from .base import QJMHandler


class StatusResponse(BaseModel):
    name: str = "qjm-jupyter"
    version: str = __version__
    store: str = Field(description="The store class; 'remote' on a member server, which keeps none.")
    watcher_running: bool
    watcher: Literal["inline", "process", "external"] | None = Field(
        default="inline",
        description="Where the IBM Quantum watcher runs: inline (this server's process), process (a child process "
        "of this server) or external (`jupyter qjm watch`, whose state this server cannot see: watcher_running is "
        "then false). None on a member server.",
    )
    mail_enabled: bool
    mode: Literal["personal", "group", "member"] = Field(
        description="personal: the extension in someone's own Jupyter server; group: `jupyter qjm`; "
        "member: a Jupyter server forwarding qjm/ to the group server at remote_url."
    )
    remote_url: str | None = Field(default=None, description="The group server a member server forwards to.")
    identity_source: Literal["jupyter", "accounts", "hub"] = Field(
        default="accounts",
        description="Who a request is: jupyter / hub (the host's sign-in is the qjm identity: no qjm sign-in "
        "needed) or accounts (qjm accounts with JWTs).",
    )
    api_url: str | None = Field(
        default=None, description="Where the Lab panel sends its calls instead (a member's Lab: the group's Hub service)."
    )


class StatusHandler(QJMHandler):
    route = r"/qjm/api/status"
    spec = {"get": Op("Server status", response=StatusResponse, auth=False, tags=("meta",))}

    def get(self) -> None:
        self.send(StatusResponse(**asdict(self.extensionapp.status())))  # type: ignore[attr-defined]
