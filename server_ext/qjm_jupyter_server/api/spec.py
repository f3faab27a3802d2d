"""What an HTTP operation takes and returns, declared once beside its handler.

The handler validates request bodies with `body`/`query` and the OpenAPI document is
generated from the same declarations, so the two cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel


@dataclass(frozen=True)
class Op:
    summary: str
    response: type[BaseModel] | None = None  # None: no body (204)
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    status: int = 200
    auth: bool = True  # bearer JWT required
    form: bool = False  # body may also come as application/x-www-form-urlencoded
    tags: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()  # extra documented error statuses
    description: str = ""
    # Response headers every answer of this operation carries (e.g. Cache-Control: no-store
    # for a token), so the handler stays parse -> call -> send.
    headers: tuple[tuple[str, str], ...] = ()
    extra: dict[str, object] = field(default_factory=dict)
