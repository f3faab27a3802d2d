"""Acting on stop links: one job's notifications, or every notification mail of an account.

Both are idempotent (providers may POST a one-click request more than once) and neither
deletes anything: a stopped job keeps being watched and listed, its `notify_status` is
emptied; a stopped account keeps its jobs, `mail_stopped_at` holds job mail back until
the user turns mail on again (`PUT notifications/preferences`). Account mail (address
confirmation, password reset, security notices) is not notification mail and still goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..clock import Clock
from ..domain import Job, JobQuery, User
from ..errors import InvalidInput, NotFound, QJMError
from ..store import Store
from .facts import one_line
from .links import StopLinks, StopTarget
from .schedule import valid_zone


GROUP_PAGE = 500  # jobs read per page when stopping a group


@dataclass(frozen=True)
class Stopped:
    scope: str  # "job" | "group" | "account"
    message: str


class StopService:
    def __init__(self, store: Store, links: StopLinks, clock: Clock) -> None:
        self.store, self.links, self.clock = store, links, clock

    async def _group_jobs(self, target: StopTarget) -> tuple[str, list[Job]]:
        """The group named by a "g" target (`user_id:group`) and its jobs, oldest pages first."""
        user_id, _, group = target.id.partition(":")
        jobs: list[Job] = []
        while True:
            page = await self.store.list_jobs(JobQuery(user_id=user_id, group=group, limit=GROUP_PAGE, offset=len(jobs)))
            jobs.extend(page)
            if len(page) < GROUP_PAGE:
                return group, jobs

    async def _target(self, token: str) -> tuple[StopTarget, str]:
        target = self.links.parse(token)
        if target.kind == "g":
            group, jobs = await self._group_jobs(target)
            if not jobs:
                raise NotFound("this group has no watched jobs any more, so it sends nothing", field="token")
            return target, f"group {one_line(group, 80)}"
        if target.kind == "j":
            job = await self.store.get_job(target.id)
            if job is None:
                raise NotFound("this job is no longer watched, so it sends nothing", field="token")
            return target, f"job {one_line(job.label or job.ibm_job_id, 80)}"
        user = await self.store.get_user(target.id)
        if user is None:
            raise NotFound("this account no longer exists", field="token")
        return target, user.email

    async def describe(self, token: str) -> Stopped:
        """What the link would stop (for the confirmation page); changes nothing."""
        target, what = await self._target(token)
        if target.kind in ("j", "g"):
            return Stopped("job" if target.kind == "j" else "group", f"Stop all notifications about {what}?")
        return Stopped("account", f"Stop all job notification email to {what}?")

    async def confirmation(self, token: str) -> tuple[str, bool]:
        """The confirmation page's question, and whether its button can stop anything: a
        missing, forged or stale token is explained on the page, never answered with an error."""
        if not token:
            return "This link has no token; open the link from the email again.", False
        try:
            return (await self.describe(token)).message, True
        except QJMError as exc:
            return exc.message, False

    async def stop(self, token: str) -> Stopped:
        target, what = await self._target(token)
        now = self.clock.now_ms()
        if target.kind == "j":
            await self.store.update_job(target.id, None, {"notify_status": [], "updated_at": now})
            return Stopped("job", f"You will get no more notifications about {what}.")
        if target.kind == "g":
            _, jobs = await self._group_jobs(target)
            for job in jobs:
                if job.notify_status:
                    await self.store.update_job(job.id, job.user_id, {"notify_status": [], "updated_at": now})
            return Stopped("group", f"You will get no more notifications about {what}.")
        user = await self.store.get_user(target.id)
        if user is not None and user.mail_stopped_at is None:
            await self.store.update_user(target.id, {"mail_stopped_at": now, "updated_at": now})
        return Stopped(
            "account",
            f"No more job notification email goes to {what}. Turn it on again in the qjm panel's settings.",
        )

    async def update_preferences(self, user: User, changes: dict[str, Any]) -> User:
        """Notification preferences: stop/resume email, time zone, quiet hours, digest."""
        values: dict[str, Any] = {}
        if changes.get("mail_stopped") is not None:
            values["mail_stopped_at"] = (user.mail_stopped_at or self.clock.now_ms()) if changes["mail_stopped"] else None
        if "time_zone" in changes:
            tz = changes["time_zone"] or None
            if tz is not None and not valid_zone(tz):
                raise InvalidInput(f"unknown time zone {tz!r}; use an IANA name such as Europe/Zurich", field="time_zone")
            values["time_zone"] = tz
        if "quiet_start" in changes or "quiet_end" in changes:
            start = changes.get("quiet_start", user.quiet_start)
            end = changes.get("quiet_end", user.quiet_end)
            if (start is None) != (end is None) or (start is not None and start == end):
                raise InvalidInput("give quiet_start and quiet_end together, and different (null both for none)",
                                   field="quiet_start" if start is None else "quiet_end")
            values["quiet_start"], values["quiet_end"] = start, end
        if changes.get("quiet_breakthrough") is not None:
            values["quiet_breakthrough"] = list(changes["quiet_breakthrough"])
        if changes.get("digest_minutes") is not None:
            minutes = int(changes["digest_minutes"])
            if 0 < minutes < 5:
                raise InvalidInput("digest_minutes is 0 (off) or at least 5", field="digest_minutes")
            values["digest_minutes"] = minutes
        if not values:
            return user
        values["updated_at"] = self.clock.now_ms()
        updated = await self.store.update_user(user.id, values)
        if updated is None:
            raise NotFound("no such account")
        return updated
