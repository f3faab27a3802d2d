"""The OpenAPI 3.1 document, generated from the handlers' `route` + `spec` declarations.

Nothing is written by hand: paths come from the tornado routes, schemas from the same
pydantic models the handlers validate with, so the document cannot drift from the
server. `build_openapi` is pure (no tornado), so tests and tools can call it directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .spec import Op

REF_TEMPLATE = "#/components/schemas/{model}"
SECURITY_SCHEME = "bearerAuth"
_VERB_ORDER = ("get", "post", "put", "patch", "delete")

_ERROR_TEXT: dict[int, str] = {
    400: "Bad request",
    401: "Missing, invalid or revoked access token",
    403: "Not allowed for this account",
    404: "Not found (or not yours)",
    409: "Conflict",
    413: "Request body larger than 1 MiB",
    422: "Invalid input; `error.field` names the offending field",
    429: "Too many attempts; retry after `Retry-After` seconds",
    503: "Storage unavailable",
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    """The body of every 4xx answer."""

    error: ErrorDetail


class OpenAPIDocument(BaseModel):
    """Any JSON object (the document itself, as a response model)."""

    model_config = ConfigDict(extra="allow")


class Routed(Protocol):
    route: str
    spec: dict[str, Op]


class RouteError(ValueError):
    """A tornado route the document cannot express (unnamed group, regex syntax)."""


_NAMED_GROUP = re.compile(r"\(\?P<(?P<name>[A-Za-z_][A-Za-z0-9_]*)>")


def route_to_path(route: str) -> tuple[str, dict[str, str]]:
    """`/qjm/api/jobs/(?P<job_id>[^/]+)` -> (`/qjm/api/jobs/{job_id}`, {"job_id": "[^/]+"})."""
    text = route.removeprefix("^").removesuffix("$").removesuffix("/?")
    out: list[str] = []
    params: dict[str, str] = {}
    i = 0
    while i < len(text):
        m = _NAMED_GROUP.match(text, i)
        if m:
            depth, j = 1, m.end()
            while j < len(text) and depth:
                if text[j] == "\\":
                    j += 2
                    continue
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                j += 1
            if depth:
                raise RouteError(f"unbalanced group in route {route!r}")
            params[m.group("name")] = text[m.end() : j - 1]
            out.append("{" + m.group("name") + "}")
            i = j
        elif text[i] == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif text[i] in "()[]{}*+?|^$.":
            raise RouteError(f"route {route!r} uses regex syntax {text[i]!r} outside a named group")
        else:
            out.append(text[i])
            i += 1
    return "".join(out), params


def _operation_id(handler: type, verb: str) -> str:
    name = handler.__name__.removesuffix("Handler")
    return f"{verb}{name}"


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null: drop the `null` branch pydantic adds."""
    options = schema.get("anyOf")
    if not isinstance(options, list):
        return schema
    rest = [o for o in options if o != {"type": "null"}]
    if len(rest) != 1 or len(rest) == len(options):
        return schema
    merged = {k: v for k, v in schema.items() if k != "anyOf"}
    if merged.get("default", 0) is None:
        merged.pop("default")
    merged.update(rest[0])
    return merged


def build_openapi(
    handlers: Iterable[Routed],
    *,
    version: str,
    base_url: str = "/",
    title: str = "qjm-jupyter",
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for these handlers, served under `base_url`."""
    handlers = [h for h in handlers if getattr(h, "route", "") and getattr(h, "spec", None)]

    # Every model once per mode; pydantic names the two variants apart when they differ.
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorResponse, "serialization")]
    for handler in handlers:
        for op in handler.spec.values():
            for model, mode in ((op.body, "validation"), (op.query, "validation"), (op.response, "serialization")):
                if model is not None and (model, mode) not in wanted:
                    wanted.append((model, mode))  # type: ignore[arg-type]
    refs, top = models_json_schema(wanted, ref_template=REF_TEMPLATE)
    components: dict[str, Any] = dict(top.get("$defs", {}))

    def ref(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(refs[(model, mode)])

    def resolved(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        target = ref(model, mode)
        name = target["$ref"].rsplit("/", 1)[-1] if "$ref" in target else None
        return components[name] if name else target

    error_content = {"application/json": {"schema": ref(ErrorResponse, "serialization")}}
    paths: dict[str, dict[str, Any]] = {}
    for handler in handlers:
        path, path_params = route_to_path(handler.route)
        item = paths.setdefault(path, {})
        for verb in sorted(handler.spec, key=lambda v: _VERB_ORDER.index(v) if v in _VERB_ORDER else 99):
            op = handler.spec[verb]
            operation: dict[str, Any] = {
                "operationId": _operation_id(handler, verb),
                "summary": op.summary,
                "tags": list(op.tags),
                "security": [{SECURITY_SCHEME: []}] if op.auth else [],
            }
            if op.description:
                operation["description"] = op.description
            params: list[dict[str, Any]] = [
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": f"^{pattern}$", "minLength": 1},
                }
                for name, pattern in path_params.items()
            ]
            if op.query is not None:
                qschema = resolved(op.query, "validation")
                required = set(qschema.get("required", ()))
                for name, prop in qschema.get("properties", {}).items():
                    schema = _without_null(dict(prop))
                    param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": schema}
                    if "description" in schema:
                        param["description"] = schema["description"]
                    if schema.get("type") == "array":
                        param.update(style="form", explode=True)
                    params.append(param)
            if params:
                operation["parameters"] = params
            if op.body is not None:
                content = {"application/json": {"schema": ref(op.body, "validation")}}
                if op.form:
                    content["application/x-www-form-urlencoded"] = {"schema": ref(op.body, "validation")}
                operation["requestBody"] = {"required": True, "content": content}

            responses: dict[str, Any] = {}
            if op.response is not None:
                responses[str(op.status)] = {
                    "description": op.summary,
                    "content": {"application/json": {"schema": ref(op.response, "serialization")}},
                }
            else:
                responses[str(op.status)] = {"description": op.summary}
            if op.headers:
                responses[str(op.status)]["headers"] = {
                    name: {"schema": {"type": "string", "const": value}} for name, value in op.headers
                }
            errors = set(op.errors)
            if op.auth:
                errors.add(401)
            if op.body is not None:
                errors.update((413, 422))
            if op.query is not None or path_params:
                errors.add(422)
            if path_params:
                errors.add(404)
            errors.add(503)  # every route opens the store first; a store that cannot be written says so
            for code in sorted(errors):
                response: dict[str, Any] = {"description": _ERROR_TEXT.get(code, "Error"), "content": error_content}
                if code == 429:
                    response["headers"] = {
                        "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer", "minimum": 1}}
                    }
                responses[str(code)] = response
            operation["responses"] = responses
            item[verb] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "IBM Quantum job notifications for Jupyter. Authenticate with "
            "`POST auth/login`, then send `Authorization: Bearer <access_token>`.",
        },
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {SECURITY_SCHEME: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
