"""Every handler verb is parse -> one service call -> send: at most three statements.

Business rules in a handler cannot be reached by the services' own tests and are
written again by the next handler that needs them; this keeps them in the services.
Read with `ast` from the source, so a new handler is checked without being listed.
"""

from __future__ import annotations

import ast
from pathlib import Path

HANDLERS = Path(__file__).resolve().parents[2] / "server_ext" / "qjm_jupyter_server" / "handlers"
VERBS = {"get", "post", "put", "patch", "delete"}
MAX_STATEMENTS = 3


def verb_bodies() -> dict[str, int]:
    """`module:Class.verb` -> statements in its body (a docstring does not count)."""
    found = {}
    for path in sorted(HANDLERS.glob("*.py")):
        for cls in (n for n in ast.parse(path.read_text()).body if isinstance(n, ast.ClassDef)):
            for fn in cls.body:
                if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name in VERBS:
                    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
                    found[f"{path.name}:{cls.name}.{fn.name}"] = len(body)
    return found


def test_the_check_sees_the_handlers() -> None:
    bodies = verb_bodies()
    assert "jobs.py:JobsHandler.get" in bodies or any(k.startswith("jobs.py:") for k in bodies)
    assert len(bodies) >= 30


def test_every_handler_verb_is_three_statements_or_fewer() -> None:
    assert {name: n for name, n in verb_bodies().items() if n > MAX_STATEMENTS} == {}
