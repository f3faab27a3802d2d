"""A small async client for the IBM Quantum Platform REST API (IAM + /api/v1/jobs).

STUB: the signatures below are the contract other parts rely on.
"""

from __future__ import annotations

from ..settings import Settings


class IBMClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def aclose(self) -> None:
        return None
