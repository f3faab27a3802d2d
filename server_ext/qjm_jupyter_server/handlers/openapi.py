"""`GET qjm/api/openapi.json`: the generated OpenAPI document (public)."""

from __future__ import annotations

from typing import ClassVar

from ..api.openapi import OpenAPIDocument
from ..api.spec import Op
from ..errors import NotFound
from .base import QJMHandler


class OpenAPIHandler(QJMHandler):
    route = r"/qjm/api/openapi\.json"
    spec = {"get": Op("This API's OpenAPI 3.1 document", response=OpenAPIDocument, auth=False, tags=("meta",))}

    def get(self) -> None:
        # The app knows which handlers it serves (this one among them), so it builds the document.
        self.send(self.extensionapp.openapi(self.base_url))


class UnknownRouteHandler(QJMHandler):
    """Anything under qjm/api/ that no route matched: a JSON 404 in our error shape.

    Without it Jupyter answers with an HTML page (and a 403 "_xsrf missing" for writes),
    e.g. for a path parameter outside its route's pattern. Registered last; it declares
    no operations, so it stays out of the OpenAPI document.
    """

    route = r"/qjm/api/(?P<rest>.*)"
    spec: ClassVar[dict[str, Op]] = {}

    def _not_found(self, rest: str) -> None:
        raise NotFound(f"no such API route: {self.request.method} qjm/api/{rest}; see qjm/api/openapi.json")

    def get(self, rest: str) -> None:
        self._not_found(rest)

    def post(self, rest: str) -> None:
        self._not_found(rest)

    def put(self, rest: str) -> None:
        self._not_found(rest)

    def patch(self, rest: str) -> None:
        self._not_found(rest)

    def delete(self, rest: str) -> None:
        self._not_found(rest)
