"""Every qjm route. Each module lists its handler classes; the app registers them all."""

from __future__ import annotations

from .base import QJMHandler
from . import admin, auth, jobs, me, notifications, pages
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
    UnknownRouteHandler,  # keep last: JSON 404 for anything under qjm/api/ no route matched
]
