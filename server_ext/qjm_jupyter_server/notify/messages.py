"""Composing emails (subject, text, HTML) from templates into outbox rows.

Every method returns a `Notification` with a deterministic `dedupe_key`, so enqueuing
the same event twice (a retried poll, two server processes) stores one email.
Subjects are built here, in one line: user-controlled text is stripped of CR/LF.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Literal

from qjm_jupyter.statuses import FINAL_STATUSES

from ..domain import Channel, Job, Notification, User, new_id
from ..settings import Settings
from ..tokens import hash_token
from .facts import Links, job_facts, one_line, utc
from .links import StopLinks
from .render import render

Milestone = Literal["first_running", "all_final"]


DEFAULT_PUBLIC_URL = "http://localhost:8888/"


class MessageFactory:
    def __init__(
        self,
        settings: Settings,
        public_url: Callable[[], str] | None = None,
        has_lab: Callable[[], bool] | None = None,
        stop_links: StopLinks | None = None,
    ) -> None:
        """`public_url` is asked for each email (the server's URL is known only once it
        is bound); without it, links use settings.public_url. `has_lab` too (JupyterLab
        loads after this extension): with Lab, links open the Lab panel; without, the
        qjm web UI. `stop_links` signs the stop links (the server's key)."""
        self.settings = settings
        self._public_url = public_url or (lambda: self.settings.public_url or DEFAULT_PUBLIC_URL)
        self._has_lab = has_lab or (lambda: False)
        self.stops = stop_links or StopLinks()

    @property
    def base_url(self) -> str:
        """Where every link in an email starts, with one trailing slash."""
        return self._public_url().rstrip("/") + "/"

    def links(self) -> Links:
        return Links(self.base_url, self._has_lab())

    def stop_job_url(self, job: Job) -> str:
        """One-click stop for one job's notifications (List-Unsubscribe)."""
        return self.stops.url(self.base_url, "j", job.id)

    def stop_group_url(self, user: User, group: str) -> str:
        """One-click stop for the notifications of one group's jobs (a milestone mail's List-Unsubscribe)."""
        return self.stops.url(self.base_url, "g", f"{user.id}:{group}")

    def stop_all_url(self, user: User) -> str:
        """The footer link: stop all notification mail of the account, after a confirmation page."""
        return self.stops.url(self.base_url, "a", user.id)

    # -- plumbing ---------------------------------------------------------------------------
    def _compose(
        self,
        *,
        template: str,
        kind: str,
        dedupe_key: str,
        user: User,
        subject: str,
        now: int,
        to_addr: str | None = None,
        job_id: str | None = None,
        unsubscribe_url: str | None = None,
        one_click_url: str | None = None,
        **context: Any,
    ) -> Notification:
        """`unsubscribe_url` stops one job: the List-Unsubscribe header and the footer's
        "stop notifications for this job" line. `one_click_url` is a header-only one-click
        link for mail about many jobs (a group's: it stops that group; a summary's: the account's mail)."""
        subject = one_line(f"[qjm] {subject}")
        links = self.links()
        ctx: dict[str, Any] = {
            "subject": subject,
            "user_email": user.email,
            "now": utc(now),
            "settings_url": links.account(),
            "notifications_url": links.notifications(),
            "stop_all_url": self.stop_all_url(user),
            "stop_job_url": unsubscribe_url,
            "public_url": links.base_url,
            **context,
        }
        tdir = self.settings.templates_dir
        return Notification(
            id=new_id("n_"),
            dedupe_key=dedupe_key,
            user_id=user.id,
            kind=kind,
            to_addr=to_addr or user.email,
            subject=subject,
            text=render(tdir, f"{template}.txt.j2", ctx),
            html=render(tdir, f"{template}.html.j2", ctx),
            created_at=now,
            job_id=job_id,
            unsubscribe_url=unsubscribe_url or one_click_url,
        )

    # -- account mail -------------------------------------------------------------------------
    def verify_email(self, user: User, token: str, to_addr: str, now: int) -> Notification:
        return self._compose(
            template="verify_email",
            kind="verify",
            dedupe_key=f"verify:{hash_token(token)}",
            user=user,
            to_addr=to_addr,
            subject="Confirm your email address",
            now=now,
            link=self.links().page("verify", token),
            hours=max(1, self.settings.verify_token_ttl // 3600),
        )

    def reset_password(self, user: User, token: str, now: int) -> Notification:
        return self._compose(
            template="reset_password",
            kind="reset",
            dedupe_key=f"reset:{hash_token(token)}",
            user=user,
            subject="Reset your password",
            now=now,
            link=self.links().page("reset", token),
            minutes=max(1, self.settings.reset_token_ttl // 60),
        )

    def account_notice(self, user: User, subject_line: str, body_text: str, now: int) -> Notification:
        """Security notices (password changed, email changed, someone tried to register)."""
        digest = hashlib.sha256(f"{subject_line}\0{body_text}".encode()).hexdigest()[:16]
        return self._compose(
            template="account_notice",
            kind="notice",
            dedupe_key=f"notice:{user.id}:{digest}:{now}",
            user=user,
            subject=subject_line,
            now=now,
            body=body_text,
        )

    def test_message(self, user: User, now: int) -> Notification:
        return self._compose(
            template="test_message",
            kind="test",
            dedupe_key=f"test:{user.id}:{now}",
            user=user,
            subject="Test email: notifications reach you",
            now=now,
        )

    # -- job mail -------------------------------------------------------------------------------
    def _job_change(self, job: Job, entered: list[str]) -> dict[str, Any]:
        """What the email and every channel say about a job's change: one dedupe key, one subject."""
        facts = job_facts(job, self.links())
        shown = entered[-1] if entered else job.status
        return {
            "dedupe_key": f"job:{job.id}:{'+'.join(entered)}",
            "subject": f"{shown} · {one_line(facts.title, 80)} · {one_line(facts.backend, 40)}",
            "job_id": job.id,
            "job": facts,
            "entered": entered,
            "shown": shown,
        }

    def job_status(self, user: User, job: Job, entered: list[str], now: int) -> Notification:
        change = self._job_change(job, entered)
        return self._compose(
            template="job_status", kind="job_status", user=user, now=now, unsubscribe_url=self.stop_job_url(job),
            final=change["shown"] in FINAL_STATUSES, **change,
        )

    # -- channel deliveries (Apprise: a title and a short text body) -----------------------------
    def _for_channel(
        self, *, template: str, kind: str, dedupe_key: str, user: User, channel: Channel, subject: str, now: int,
        job_id: str | None = None, **context: Any,
    ) -> Notification:
        subject = one_line(f"[qjm] {subject}")
        ctx: dict[str, Any] = {"subject": subject, "user_email": user.email, "now": utc(now), **context}
        where = f"{channel.scheme}://{channel.host}" if channel.host else f"{channel.scheme}://"
        return Notification(
            id=new_id("n_"),
            dedupe_key=f"{dedupe_key}@{channel.id}",  # once per channel, next to the email's own key
            user_id=user.id,
            kind=kind,
            to_addr=where,
            subject=subject,
            text=render(self.settings.templates_dir, f"{template}.txt.j2", ctx),
            html="",
            created_at=now,
            job_id=job_id,
            channel_id=channel.id,
        )

    def job_status_for_channel(self, user: User, job: Job, entered: list[str], channel: Channel, now: int) -> Notification:
        return self._for_channel(
            template="channel/job", kind="job_status", user=user, channel=channel, now=now, **self._job_change(job, entered)
        )

    def channel_test(self, user: User, channel: Channel, now: int) -> Notification:
        where = f"{channel.scheme}://{channel.host}" if channel.host else channel.scheme
        return self._for_channel(
            template="channel/test", kind="test", dedupe_key=f"chtest:{now}", user=user, channel=channel,
            subject="Test: notifications reach this channel", now=now, where=where,
        )

    def digest(self, user: User, held: list[Notification], now: int) -> Notification:
        """One summary of job mails held by quiet hours or a digest, listing every transition."""
        items = [{"subject": n.subject.removeprefix("[qjm] "), "body": n.text.split("\n-- \n", 1)[0].strip()} for n in held]
        why = "by your digest setting" if user.digest_minutes else "during your quiet hours"
        return self._compose(
            template="digest",
            kind="digest",
            dedupe_key=f"digest:{user.id}:{held[0].id}:{len(held)}",
            user=user,
            one_click_url=self.stop_all_url(user),  # RFC 8058: a summary is job mail, about many jobs
            subject=f"{len(held)} job update{'s' if len(held) != 1 else ''}: " + ", ".join(
                one_line(i["subject"].split(" · ")[0], 20) for i in items[:5]) + ("…" if len(items) > 5 else ""),
            now=now,
            items=items,
            why=why,
        )

    def _group_change(
        self, user: User, group: str, jobs: list[Job], milestone: Milestone,
        total: int | None, counts: dict[str, int] | None,
    ) -> dict[str, Any]:
        """What the email and every channel say about a group milestone: one dedupe key, one subject."""
        links = self.links()
        facts = [job_facts(j, links) for j in jobs]
        if counts is None:
            counts = {}
            for j in jobs:
                counts[j.status] = counts.get(j.status, 0) + 1
        total = len(jobs) if total is None else total
        if milestone == "first_running":
            headline = f"group {one_line(group, 80)}: first job running"
        else:
            summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            headline = f"group {one_line(group, 80)}: all {total} jobs finished ({summary})"
        return {
            "dedupe_key": f"group:{user.id}:{group}:{milestone}",
            "subject": headline,
            "group": group,
            "milestone": milestone,
            "jobs": facts,
            "counts": counts,
            "total": total,
            "more": max(0, total - len(facts)),
            "manage_url": links.group(group),
        }

    def group_milestone(
        self, user: User, group: str, jobs: list[Job], milestone: Milestone, now: int,
        *, total: int | None = None, counts: dict[str, int] | None = None,
    ) -> Notification:
        """`jobs` are the rows shown (the caller bounds them); `total` and `counts` cover
        the whole group (default: just `jobs`). The email links to the rest."""
        return self._compose(
            template="group_milestone", kind="group", user=user, now=now, one_click_url=self.stop_group_url(user, group),
            **self._group_change(user, group, jobs, milestone, total, counts),
        )

    def group_milestone_for_channel(
        self, user: User, group: str, jobs: list[Job], milestone: Milestone, channel: Channel, now: int,
        *, total: int | None = None, counts: dict[str, int] | None = None,
    ) -> Notification:
        """The milestone as one channel message (the email's key, made per channel)."""
        return self._for_channel(
            template="channel/group", kind="group", user=user, channel=channel, now=now,
            **self._group_change(user, group, jobs, milestone, total, counts),
        )

    def key_invalid(self, user: User, now: int) -> Notification:
        return self._compose(
            template="key_invalid",
            kind="key_invalid",
            dedupe_key=f"keyinvalid:{user.id}:{user.ibm_key_updated_at}",
            user=user,
            subject="Your IBM Quantum API key was rejected; watching is paused",
            now=now,
            last4=user.ibm_key_last4,
        )

    def instance_forbidden(self, user: User, instance: str, now: int) -> Notification:
        return self._compose(
            template="instance_forbidden",
            kind="forbidden",
            dedupe_key=f"forbidden:{user.id}:{instance}",
            user=user,
            subject="No access to an IBM Quantum instance; its jobs are paused",
            now=now,
            instance=instance,
        )

    def job_lost(self, user: User, job: Job, now: int) -> Notification:
        facts = job_facts(job, self.links())
        return self._compose(
            template="job_lost",
            kind="job_lost",
            dedupe_key=f"lost:{job.id}",
            user=user,
            subject=f"LOST · {one_line(facts.title, 80)} · IBM Quantum no longer knows this job",
            now=now,
            job_id=job.id,
            unsubscribe_url=self.stop_job_url(job),
            job=facts,
        )
