"""The job-status vocabulary shared by the kernel client and the server.

Pure Python and dependency-free on purpose: the server imports it, and so does the
kernel side, where `%load_ext qjm_jupyter` must stay light.
"""

from __future__ import annotations


from collections.abc import Iterable, Mapping
from types import MappingProxyType

STATUSES: tuple[str, ...] = (
    "INITIALIZING",
    "QUEUED",
    "VALIDATING",
    "RUNNING",
    "CANCELLED",
    "DONE",
    "ERROR",
)
FINAL_STATUSES: frozenset[str] = frozenset({"DONE", "ERROR", "CANCELLED"})
DEFAULT_NOTIFY_STATUS: tuple[str, ...] = ("DONE", "ERROR", "CANCELLED")

# Names other tools use for the same states: IBM's REST API (Completed, Failed),
# qiskit's JobStatus and the older project's spelling (CANCELED).
ALIASES: Mapping[str, str] = MappingProxyType({
    "COMPLETED": "DONE",
    "FAILED": "ERROR",
    "CANCELED": "CANCELLED",
})

# Rank of each status along a job's life; used to order "entered" statuses that were
# skipped between two observations (QUEUED -> DONE passes RUNNING).
ORDER: Mapping[str, int] = MappingProxyType({
    "INITIALIZING": 0,
    "VALIDATING": 1,
    "QUEUED": 2,
    "RUNNING": 3,
    "DONE": 4,
    "ERROR": 4,
    "CANCELLED": 4,
})


class UnknownStatus(ValueError):
    """Raised for a status name outside the vocabulary (after aliases)."""

    def __init__(self, value: object) -> None:
        super().__init__(
            f"unknown job status {value!r}; expected one of {', '.join(STATUSES)}"
        )
        self.value = value


def normalize_status(value: object) -> str:
    """Map any spelling (case, aliases, qiskit's JobStatus enum) to our status name."""
    name = getattr(value, "name", value)
    if not isinstance(name, str):
        raise UnknownStatus(value)
    key = name.strip().upper()
    key = ALIASES.get(key, key)
    if key not in STATUSES:
        raise UnknownStatus(value)
    return key


def normalize_statuses(values: Iterable[object]) -> list[str]:
    """Normalize and de-duplicate, keeping the vocabulary's order so output is stable."""
    wanted = {normalize_status(v) for v in values}
    return [s for s in STATUSES if s in wanted]


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES
