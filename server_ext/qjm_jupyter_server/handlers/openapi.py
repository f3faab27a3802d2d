"""`GET qjm/api/openapi.json`: the generated OpenAPI document (public)."""

from __future__ import annotations

from typing import Any, ClassVar

from .. import __version__
from ..api.openapi import OpenAPIDocument, build_openapi
from ..api.spec import Op
from .base import QJMHandler


class OpenAPIHandler(QJMHandler):
    route = r"/qjm/api/openapi\.json"
    spec = {"get": Op("This API's OpenAPI 3.1 document", response=OpenAPIDocument, auth=False, tags=("meta",))}

    # One document per base_url; handlers are fixed once the server runs.
    _cache: ClassVar[dict[str, dict[str, Any]]] = {}

    def get(self) -> None:
        doc = self._cache.get(self.base_url)
        if doc is None:
            from . import HANDLERS

            doc = self._cache[self.base_url] = build_openapi(HANDLERS, version=__version__, base_url=self.base_url)
        self.send(doc)
