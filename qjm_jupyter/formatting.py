"""Plain-text tables for the `print_*` methods: aligned columns, no dependencies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(cell(v) for v in value) or "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    return str(value)


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """`columns` are (key, header) pairs; every row renders one line."""
    lines = [[header for _, header in columns]]
    lines += [[cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    out = ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def record(data: Mapping[str, Any]) -> str:
    """One record as `key: value` lines (user info)."""
    width = max((len(k) for k in data), default=0)
    return "\n".join(f"{k.ljust(width)}  {cell(v)}" for k, v in data.items())


JOB_COLUMNS: tuple[tuple[str, str], ...] = (
    ("job_id", "job id"),
    ("label", "label"),
    ("backend", "backend"),
    ("status", "status"),
    ("notify_status", "notify on"),
    ("group", "group"),
    ("registered_at", "registered"),
    ("updated_at", "last change"),
)

CHANNEL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "id"),
    ("label", "label"),
    ("scheme", "scheme"),
    ("host", "host"),
    ("notify_status", "notify on"),
    ("enabled", "enabled"),
)
