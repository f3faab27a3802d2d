"""The OpenAPI document: served, valid OpenAPI 3.1, complete, and every `$ref` resolves."""

from __future__ import annotations

import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from schemathesis.specs.openapi.definitions import OPENAPI_31

from qjm_jupyter_server.api.openapi import RouteError, build_openapi, route_to_path
from qjm_jupyter_server.api.spec import Op
from qjm_jupyter_server.handlers import HANDLERS




def refs_in(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value)
            else:
                found |= refs_in(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs_in(value)
    return found


async def test_document_is_valid_openapi_31(api, jp_base_url) -> None:
    r = await api.get("openapi.json")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["openapi"] == "3.1.0"
    errors = sorted(Draft202012Validator(OPENAPI_31).iter_errors(doc), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    # Served under the server's base_url (pytest-jupyter's is /a%40b/).
    assert doc["servers"] == [{"url": jp_base_url.rstrip("/")}]
    # Every component schema is itself a valid JSON Schema 2020-12 document.
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)


async def test_every_route_and_verb_is_documented(api) -> None:
    doc = (await api.get("openapi.json")).json()
    expected: set[tuple[str, str]] = set()
    for handler in HANDLERS:
        path, params = route_to_path(handler.route)
        for verb in handler.spec:
            expected.add((path, verb))
            # Each declared verb is actually implemented by the handler class.
            assert callable(getattr(handler, verb, None)), (handler.__name__, verb)
        assert set(re.findall(r"{(\w+)}", path)) == set(params)
    documented = {(path, verb) for path, item in doc["paths"].items() for verb in item}
    assert documented == expected
    for must in (
        ("/qjm/api/jobs", "post"),
        ("/qjm/api/jobs", "get"),
        ("/qjm/api/jobs", "delete"),
        ("/qjm/api/jobs/{job_id}", "get"),
        ("/qjm/api/jobs/{job_id}", "patch"),
        ("/qjm/api/jobs/{job_id}", "delete"),
        ("/qjm/api/admin/jobs", "get"),
        ("/qjm/api/openapi.json", "get"),
        ("/qjm/api/status", "get"),
    ):
        assert must in documented
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)), "operationIds must be unique"


async def test_refs_resolve_and_shapes_match_the_contract(api) -> None:
    doc = (await api.get("openapi.json")).json()
    schemas = doc["components"]["schemas"]
    for ref in refs_in(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[-1] in schemas, f"dangling {ref}"

    jobs = doc["paths"]["/qjm/api/jobs"]
    assert set(jobs["post"]["responses"]) >= {"201", "401", "413", "422"}
    assert jobs["post"]["security"] == [{"bearerAuth": []}]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    params = {p["name"]: p for p in jobs["get"]["parameters"]}
    assert set(params) == {"status", "active", "label", "group", "updated_after", "limit", "offset", "view", "fields", "total"}
    assert params["status"]["schema"]["type"] == "array" and params["status"]["explode"] is True
    assert params["fields"]["schema"]["type"] == "array" and params["fields"]["explode"] is True
    assert params["limit"]["schema"]["maximum"] == 1000
    assert params["view"]["schema"]["enum"] == ["full", "summary"]
    assert params["total"]["schema"]["enum"] == ["capped", "exact"]
    items = schemas["JobList"]["properties"]["jobs"]["anyOf"]
    assert [i["items"]["$ref"].rsplit("/", 1)[-1] for i in items] == ["JobOut", "JobSummary", "JobFields"]
    # A selection's items: JobOut's fields, none required, same types.
    assert set(schemas["JobFields"]["properties"]) == set(schemas["JobOut"]["properties"])
    assert "required" not in schemas["JobFields"]
    assert schemas["JobFields"]["properties"]["status"]["enum"] == schemas["JobOut"]["properties"]["status"]["enum"]
    assert schemas["JobList"]["properties"]["total_exact"]["type"] == "boolean"
    one = doc["paths"]["/qjm/api/jobs/{job_id}"]
    assert one["get"]["parameters"][0] == {
        "name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[^/]+$", "minLength": 1}
    }
    assert "content" not in one["delete"]["responses"]["204"]
    assert "403" in doc["paths"]["/qjm/api/admin/jobs"]["get"]["responses"]
    # Public routes say so; 4xx answers share the error schema.
    assert doc["paths"]["/qjm/api/status"]["get"]["security"] == []
    assert doc["paths"]["/qjm/api/openapi.json"]["get"]["security"] == []
    err = jobs["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    assert err == {"$ref": "#/components/schemas/ErrorResponse"}
    job_out = schemas["JobOut"]["properties"]
    assert set(job_out) == {
        "id", "job_id", "backend", "instance", "channel", "source", "created", "notify_status", "label", "group",
        "status", "history", "watch_state", "error_reason", "last_poll_at", "last_error", "registered_at",
        "updated_at", "ibm_url", "started", "finished", "usage_seconds", "cancel_requested_at",
    }
    assert job_out["registered_at"] == {"format": "date-time", "title": "Registered At", "type": "string"}
    # POST jobs takes a batch or one bare job.
    assert len(schemas["JobsIn"]["anyOf"]) == 2


async def test_login_documents_its_form_body_and_throttling(api) -> None:
    doc = (await api.get("openapi.json")).json()
    login = doc["paths"].get("/qjm/api/auth/login", {}).get("post")
    if login is None:
        pytest.skip("auth routes not registered")
    assert set(login["requestBody"]["content"]) == {"application/json", "application/x-www-form-urlencoded"}
    if "429" in login["responses"]:
        assert "Retry-After" in login["responses"]["429"]["headers"]


def test_route_conversion() -> None:
    assert route_to_path(r"/qjm/api/jobs/(?P<job_id>[^/]+)") == ("/qjm/api/jobs/{job_id}", {"job_id": "[^/]+"})
    assert route_to_path(r"/qjm/api/openapi\.json") == ("/qjm/api/openapi.json", {})
    assert route_to_path(r"/qjm/api/a/(?P<x>(?:ab|cd)+)/b/(?P<y>\d+)/?$") == ("/qjm/api/a/{x}/b/{y}", {"x": "(?:ab|cd)+", "y": r"\d+"})
    for bad in (r"/qjm/api/(\d+)", r"/qjm/api/jobs.*", r"/qjm/api/(?P<x>[^/]+"):
        with pytest.raises(RouteError):
            route_to_path(bad)


def test_document_is_pure_and_reflects_declarations() -> None:
    class Fake:
        route = r"/qjm/api/things/(?P<thing_id>[^/]+)"
        spec = {"delete": Op("Drop a thing", status=204, errors=(409,))}

    doc = build_openapi([Fake], version="9.9", base_url="/")
    op = doc["paths"]["/qjm/api/things/{thing_id}"]["delete"]
    assert set(op["responses"]) == {"204", "401", "404", "409", "422", "503"}
    assert doc["servers"] == [{"url": "/"}] and doc["info"]["version"] == "9.9"


async def test_unmatched_api_paths_get_a_json_404(api) -> None:
    """Not Jupyter's HTML page (nor its 403 "_xsrf missing" for writes)."""
    for method, path in (("GET", "nope"), ("POST", "jobs/x/y/z"), ("PATCH", "admin/users/not%20an%20id"), ("DELETE", "")):
        r = await api.request(method, path, json={} if method in ("POST", "PATCH") else None)
        assert r.status_code == 404, (method, path, r.status_code, r.text[:200])
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.json()["error"]["code"] == "not_found"
    doc = (await api.get("openapi.json")).json()
    assert not any("rest" in path for path in doc["paths"])
