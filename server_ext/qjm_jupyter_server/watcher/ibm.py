"""A small async client for the IBM Quantum Platform REST API (IAM + /api/v1/jobs).

STUB: the signatures below are the contract the poller relies on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..settings import Settings

ErrorKind = Literal["auth_invalid", "forbidden", "not_found", "rate_limited", "transient", "protocol"]


class IBMError(Exception):
    """A failed IBM call, classified so the poller knows what to do (ibm_quantum.md §7.5)."""

    def __init__(self, kind: ErrorKind, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


@dataclass
class IBMJobState:
    id: str
    status: str  # our vocabulary (Cancelled + reason_code 1305 -> ERROR)
    raw_status: str
    reason: str | None = None
    reason_code: int | None = None
    backend: str | None = None
    created: int | None = None  # epoch ms


class IBMClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def pending_jobs(self, api_key: str, instance: str) -> dict[str, IBMJobState]:
        """Every Queued/Running job of the instance (GET /api/v1/jobs?pending=true, paged)."""
        raise NotImplementedError

    async def get_job(self, api_key: str, instance: str, job_id: str) -> IBMJobState:
        """One job (GET /api/v1/jobs/{id}); raises IBMError('not_found') for 404."""
        raise NotImplementedError

    def forget_key(self, api_key: str) -> None:
        """Drop the cached IAM token for this key (after an auth failure or a key change)."""

    async def aclose(self) -> None:
        return None
