"""Schemathesis over every operation of the live OpenAPI document.

Positive and negative examples for each operation, sent by a logged-in admin (so
admin routes are reached too) to the real server. Checks: never a 5xx, and every
answer matches the documented status codes, content type and response schema.

Bounded for the shared 2-core machine: `QJM_FUZZ_EXAMPLES` examples per operation
and mode (default 20), no shrinking, no deadline. A larger budget:
`QJM_FUZZ_EXAMPLES=500 python -m pytest tests/server/test_fuzz_api.py`.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)


EXAMPLES = int(os.environ.get("QJM_FUZZ_EXAMPLES", "20"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/0123456789abcdef:inst-1::"
# Operations that end the session run last, so they cannot starve the others of a token.
LAST = ("POST /qjm/api/auth/logout-all", "DELETE /qjm/api/me")

pytestmark = pytest.mark.slow


def _order(label: str) -> tuple[int, str]:
    return (LAST.index(label) + 1 if label in LAST else 0, label)


def fuzz(schema: Any, base_url: str, token: str, examples: int) -> tuple[list[str], int]:
    """Run every operation in both modes; returns (failures, requests sent). Runs in a
    worker thread: the server under test lives on the event loop of the calling test."""
    failures: list[str] = []
    sent = 0
    operations = [result.ok() for result in schema.get_all_operations()]
    with_auth = {"Authorization": f"Bearer {token}"}
    for operation in sorted(operations, key=lambda op: _order(op.label)):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=examples,
                phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure as is
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                nonlocal sent
                response = case.call(base_url=base_url, headers=with_auth, timeout=20)
                sent += 1
                case.validate_response(response, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                # No input to get wrong (e.g. GET status): nothing negative to send.
                if mode is not GenerationMode.NEGATIVE:
                    raise
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every operation's first failure
                failures.append(f"{operation.label} [{mode.value}]: {type(exc).__name__}: {str(exc)[:1500]}")
    return failures, sent


async def test_fuzz_every_operation(api, make_user, qjm_services, qjm_base) -> None:
    user = await make_user()
    await qjm_services.store.update_user(user.id, {"is_admin": True})
    r = await api.post("jobs", json={"jobs": [{"job_id": "seed1", "instance": CRN}, {"job_id": "seed2", "source": "local"}]}, headers=user.headers)
    assert r.status_code == 201, r.text

    doc = (await api.get("openapi.json")).json()
    schema = schemathesis.openapi.from_dict(doc)
    labels = {op.ok().label for op in schema.get_all_operations()}
    assert {"POST /qjm/api/jobs", "GET /qjm/api/jobs/{job_id}", "GET /qjm/api/admin/jobs"} <= labels

    base_url = qjm_base.rstrip("/").removesuffix("/qjm/api")  # http://127.0.0.1:PORT/a%40b
    started = time.monotonic()
    failures, sent = await asyncio.to_thread(fuzz, schema, base_url, user.token, EXAMPLES)
    elapsed = time.monotonic() - started
    print(f"\nfuzz: {len(labels)} operations, {sent} requests, {elapsed:.1f}s")  # a figure, not an assertion
    assert sent >= len(labels)  # every operation was exercised at least once
    assert not failures, "\n\n".join(failures)
