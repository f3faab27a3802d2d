"""Composing emails (subject, text, HTML) from templates into outbox rows.

STUB: the signatures below are the contract other parts rely on.
"""

from __future__ import annotations

from ..domain import Job, Notification, User
from ..settings import Settings


class MessageFactory:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def verify_email(self, user: User, token: str, to_addr: str, now: int) -> Notification:
        raise NotImplementedError

    def reset_password(self, user: User, token: str, now: int) -> Notification:
        raise NotImplementedError

    def job_status(self, user: User, job: Job, entered: list[str], now: int) -> Notification:
        raise NotImplementedError
