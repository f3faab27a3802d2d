"""Every qjm route. Each module lists its handler classes; the app registers them all."""

from __future__ import annotations

from typing import Any

from .base import QJMHandler
from . import admin, auth, cancel, channels, jobs, me, notifications, pages, unsubscribe, webui
from .openapi import OpenAPIHandler, UnknownRouteHandler
from .forward import ForwardHandler
from .status import StatusHandler

HANDLERS: list[type[QJMHandler]] = [
    StatusHandler,
    OpenAPIHandler,
    *cancel.HANDLERS,
    *jobs.HANDLERS,
    *auth.HANDLERS,
    *me.HANDLERS,
    *admin.HANDLERS,
    *notifications.HANDLERS,
    *channels.HANDLERS,
    *pages.HANDLERS,
    *unsubscribe.HANDLERS,
    *webui.HANDLERS,
    UnknownRouteHandler,  # keep last: JSON 404 for anything under qjm/api/ no route matched
]

# Not QJMHandlers (no JSON, no store): the web UI bundle's files.
STATIC_HANDLERS = webui.STATIC_HANDLERS

# A member server (remote mode) answers its status and forwards the rest of qjm/ to its group server.
MEMBER_HANDLERS: list[type[Any]] = [StatusHandler, ForwardHandler]
