"""Every qjm route. Each module lists its handler classes; the app registers them all."""

from __future__ import annotations

from .base import QJMHandler
from . import admin, auth, jobs, me, notifications, pages, webui
from .openapi import OpenAPIHandler, UnknownRouteHandler
from .status import StatusHandler

HANDLERS: list[type[QJMHandler]] = [
    StatusHandler,
    OpenAPIHandler,
    *jobs.HANDLERS,
    *auth.HANDLERS,
    *me.HANDLERS,
    *admin.HANDLERS,
    *notifications.HANDLERS,
    *pages.HANDLERS,
    *webui.HANDLERS,
    UnknownRouteHandler,  # keep last: JSON 404 for anything under qjm/api/ no route matched
]

# Not QJMHandlers (no JSON, no store): the web UI bundle's files.
STATIC_HANDLERS = webui.STATIC_HANDLERS
