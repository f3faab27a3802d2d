"""Quiet hours and digests: the pure rules per time zone, then held mail released as one
summary through a real SQLite outbox and a real SMTP relay (aiosmtpd)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from qjm_jupyter_server.clock import ManualClock
from qjm_jupyter_server.domain import Job
from qjm_jupyter_server.notify.messages import MessageFactory
from qjm_jupyter_server.notify.schedule import digest_until, hold_until, quiet_until
from qjm_jupyter_server.notify.sender import Sender
from qjm_jupyter_server.settings import Settings
from qjm_jupyter_server.watcher.transitions import apply_observation
from tests.fixtures.receiver import Receiver
from tests.watcher.test_e2e_mail import _true, cycles, job_mail, start, text_of, until

from .conftest import a_user


def ms(text: str, tz: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def utc(ms_value: int | None) -> str | None:
    if ms_value is None:
        return None
    return datetime.fromtimestamp(ms_value / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


ZURICH = dataclasses.replace(a_user(), time_zone="Europe/Zurich", quiet_start="22:00", quiet_end="07:00", quiet_breakthrough=["ERROR"])


def test_quiet_hours_span_midnight_in_the_users_zone() -> None:
    assert utc(quiet_until(ZURICH, ms("2026-01-01T22:30", "Europe/Zurich"))) == "2026-01-02T06:00Z"  # 07:00 CET
    assert utc(quiet_until(ZURICH, ms("2026-01-02T03:10", "Europe/Zurich"))) == "2026-01-02T06:00Z"
    assert quiet_until(ZURICH, ms("2026-01-02T07:00", "Europe/Zurich")) is None
    assert quiet_until(ZURICH, ms("2026-01-02T12:00", "Europe/Zurich")) is None
    # The night clocks go forward (29 March 2026): quiet hours still end at 07:00 local, now CEST.
    assert utc(quiet_until(ZURICH, ms("2026-03-28T23:00", "Europe/Zurich"))) == "2026-03-29T05:00Z"
    daytime = dataclasses.replace(ZURICH, quiet_start="09:00", quiet_end="17:30")
    assert utc(quiet_until(daytime, ms("2026-01-05T09:00", "Europe/Zurich"))) == "2026-01-05T16:30Z"


def test_breakthrough_and_digests() -> None:
    night = ms("2026-01-01T23:00", "Europe/Zurich")
    assert hold_until(ZURICH, ["ERROR"], night) is None  # ERROR breaks through
    assert utc(hold_until(ZURICH, ["RUNNING", "DONE"], night)) == "2026-01-02T06:00Z"
    ny = dataclasses.replace(a_user(), time_zone="America/New_York", digest_minutes=60)
    assert utc(digest_until(ny, ms("2026-01-05T10:17", "America/New_York"))) == "2026-01-05T16:00Z"  # 11:00 EST
    daily = dataclasses.replace(ny, digest_minutes=1440)
    assert utc(hold_until(daily, ["DONE"], ms("2026-01-05T10:17", "America/New_York"))) == "2026-01-06T05:00Z"  # midnight EST
    both = dataclasses.replace(ZURICH, digest_minutes=30)
    assert utc(hold_until(both, ["DONE"], night)) == "2026-01-02T06:00Z"  # the later of the two
    assert utc(hold_until(both, ["ERROR"], night)) == "2026-01-01T22:30Z"  # ERROR skips quiet hours, not the digest
    assert hold_until(a_user(), ["DONE"], night) is None


async def test_quiet_hours_hold_mail_and_release_one_summary(outbox_store, smtp_server) -> None:
    night = ms("2026-01-01T23:00", "Europe/Zurich")
    clock = ManualClock(night)
    settings = Settings(public_url="http://qjm.test/", mail_concurrency=1, mail_rate_per_minute=10_000, **smtp_server.settings())
    messages = MessageFactory(settings)
    user = ZURICH
    await outbox_store.create_user(user)
    jobs = []
    for i, label in enumerate(("bell", "ghz", "qaoa")):
        job = Job(id=f"j{i}", user_id=user.id, ibm_job_id=f"d{i}", registered_at=night, updated_at=night,
                  instance="crn:v1:x:y:z:us-east:a/1:i::", label=label, notify_status=["RUNNING", "DONE", "ERROR"])
        [(stored, _)] = await outbox_store.register_jobs([job])
        jobs.append(stored)
    after = await apply_observation(outbox_store, messages, user, jobs[0], "RUNNING", None, night)
    assert after is not None
    await apply_observation(outbox_store, messages, user, after, "DONE", None, night + 60_000)
    await apply_observation(outbox_store, messages, user, jobs[1], "DONE", None, night + 120_000)
    await apply_observation(outbox_store, messages, user, jobs[2], "ERROR", "boom", night + 180_000)

    sender = Sender(outbox_store, settings, clock, "w1", messages=messages)
    clock.t = night + 200_000
    while await sender.drain_once():
        pass
    [error_mail] = smtp_server.messages  # only ERROR broke through
    assert "ERROR" in error_mail["Subject"] and "qaoa" in error_mail["Subject"]
    states = sorted(n.state for n in await outbox_store.list_notifications(user.id, 50, 0))
    assert states == ["held", "held", "held", "sent"]

    clock.t = ms("2026-01-02T07:00", "Europe/Zurich")  # quiet hours end
    while await sender.drain_once():
        pass
    assert len(smtp_server.messages) == 2
    summary = smtp_server.messages[1]
    text = summary.get_body(("plain",)).get_content()
    assert summary["Subject"] == "[qjm] 3 job updates: RUNNING, DONE, DONE"
    assert "3 job notifications held during your quiet hours" in text
    for line in ("== RUNNING · bell", "== DONE · bell", "== DONE · ghz", "Your IBM Quantum job bell is now DONE."):
        assert line in text, line
    states = sorted(n.state for n in await outbox_store.list_notifications(user.id, 50, 0))
    assert states == ["digested", "digested", "digested", "sent", "sent"]
    while await sender.drain_once():
        pass
    assert len(smtp_server.messages) == 2  # once only


# -- end to end: the running server, the fake IBM API, aiosmtpd and a webhook receiver ----------------
# (the server set-up of the channel tests: SMTP, the fake IBM API, channels allowed to reach 127.0.0.1)
from .test_channels import qjm_config  # noqa: E402,F401


def hhmm(at: datetime) -> str:
    return at.strftime("%H:%M")


async def test_quiet_hours_and_digest_end_to_end(
    qjm_services: Any, api: httpx.AsyncClient, make_user: Any, fake_ibm: Any, smtp_server: Any, receiver: Receiver
) -> None:
    """Preferences set through the API: during quiet hours a DONE mail is held, ERROR breaks
    through, the group milestone email and every channel message go at once; turning quiet
    hours off sends the held mail as one summary. A digest holds the same way."""
    started = await start(qjm_services)
    user = await make_user(ibm_quantum_token=fake_ibm.key(), default_instance=fake_ibm.default_crn)
    now = datetime.now(timezone.utc)
    r = await api.put("notifications/preferences", headers=user.headers, json={
        "time_zone": "UTC", "quiet_start": hhmm(now - timedelta(hours=1)), "quiet_end": hhmm(now + timedelta(hours=2)),
        "quiet_breakthrough": ["ERROR"]})
    assert r.status_code == 200, r.text
    r = await api.post("channels", headers=user.headers, json={"url": f"json://{receiver.base}/hook", "notify_status": ["DONE", "ERROR"]})
    assert r.status_code == 201, r.text
    for name in ("night-ok", "night-bad"):
        fake_ibm.add_job(name, "Running")
    r = await api.post("jobs", headers=user.headers, json={"jobs": [
        {"job_id": n, "notify_status": ["DONE", "ERROR"], "group": "overnight"} for n in ("night-ok", "night-bad")]})
    assert r.status_code == 201, r.text
    await cycles(started, 2)
    fake_ibm.set_status("night-ok", "Completed")
    fake_ibm.set_status("night-bad", "Failed", reason="out of memory")

    await until(lambda: _true(len(receiver.bodies("/hook")) >= 3), "every channel message at once")
    await until(lambda: _true(len(job_mail(smtp_server.messages, user.email)) >= 2), "the ERROR and the group mail")
    await cycles(started, 3)
    subjects = sorted(m["Subject"] for m in job_mail(smtp_server.messages, user.email))
    assert len(subjects) == 2 and "ERROR · night-bad" in subjects[0], subjects
    assert subjects[1] == "[qjm] group overnight: all 2 jobs finished (1 DONE, 1 ERROR)"
    titles = sorted(b["title"].split(" · ")[0] for b in receiver.bodies("/hook"))
    assert titles == ["[qjm] DONE", "[qjm] ERROR", "[qjm] group overnight: all 2 jobs finished (1 DONE, 1 ERROR)"]
    log = (await api.get("notifications", headers=user.headers)).json()["notifications"]
    [held] = [n for n in log if n["state"] == "held"]
    assert held["channel_id"] is None and "DONE · night-ok" in held["subject"]

    r = await api.put("notifications/preferences", headers=user.headers, json={"quiet_start": None, "quiet_end": None})
    assert r.status_code == 200, r.text
    await until(lambda: _true(len(job_mail(smtp_server.messages, user.email)) >= 3), "the summary")
    summary = job_mail(smtp_server.messages, user.email)[2]
    assert summary["Subject"] == "[qjm] 1 job update: DONE"
    assert "night-ok" in text_of(summary)
    log = (await api.get("notifications", headers=user.headers)).json()["notifications"]
    assert [n["state"] for n in log if n["id"] == held["id"]] == ["digested"]

    # A daily digest holds the next change the same way, until it is turned off.
    r = await api.put("notifications/preferences", headers=user.headers, json={"digest_minutes": 1440})
    assert r.status_code == 200, r.text
    fake_ibm.add_job("digest-1", "Running")
    assert (await api.post("jobs", headers=user.headers, json={"job_id": "digest-1", "notify_status": ["DONE"]})).status_code == 201
    await cycles(started, 2)
    fake_ibm.set_status("digest-1", "Completed")
    await until(lambda: _true(len(receiver.bodies("/hook")) >= 4), "the channel message (never held)")
    await cycles(started, 3)
    assert len(job_mail(smtp_server.messages, user.email)) == 3
    r = await api.put("notifications/preferences", headers=user.headers, json={"digest_minutes": 0})
    assert r.status_code == 200, r.text
    await until(lambda: _true(len(job_mail(smtp_server.messages, user.email)) >= 4), "the digest")
    assert "digest-1" in text_of(job_mail(smtp_server.messages, user.email)[3])
    await cycles(started, 3)
    assert len(job_mail(smtp_server.messages, user.email)) == 4  # once only

    # A summary is job mail too: RFC 8058 one-click stops the account's notification mail.
    digest = job_mail(smtp_server.messages, user.email)[3]
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Stop notifications for this job" not in text_of(digest) and "Stop all notification email: " in text_of(digest)
    one_click = digest["List-Unsubscribe"][1:-1].replace("http://qjm.test/", str(api.base_url).removesuffix("qjm/api/"))
    async with httpx.AsyncClient(timeout=20, follow_redirects=False) as provider:
        r = await provider.post(one_click, content=b"List-Unsubscribe=One-Click",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and r.json()["scope"] == "account", r.text
    assert (await api.get("notifications/preferences", headers=user.headers)).json()["mail_stopped"] is True
