"""A `jupyter qjm` process SIGKILLed in the middle of a mail burst, then restarted.

The relay is slow (aiosmtpd holds every 250 for a while), so when the process dies some
messages have reached the relay without their 250 having been recorded in the outbox.
Those, and only those, may go out twice after the restart (at-least-once delivery: an
SMTP relay cannot be asked "did you already take this one?"). What must hold: nothing
is lost, and duplicates <= messages in flight at the kill.

After the kill, the rows the dead process held stay leased for `mail_lease_seconds`
(default 120 s; it must outlast a burst's sends, so it is not shortened here). The test
moves time forward for them instead of waiting: with no server running, it sets their
`lease_until` to 0 in the SQLite file — what the clock would do once the lease ran out.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.process import QJMProcess, qjm_env
from tests.fixtures.smtp import CaptureHandler, SMTPTestServer

N_JOBS = 40
SMTP_DELAY_S = 0.25  # between receiving a message and answering 250
DEADLINE = 90.0
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.slow


class SlowHandler(CaptureHandler):
    """Keeps each message (as the capture handler does), then waits before the 250."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.count_lock = threading.Lock()
        self.started = 0  # DATA commands received
        self.answered = 0  # 250s sent back

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.count_lock:
            self.started += 1
        reply = await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(self.delay)
        with self.count_lock:
            self.answered += 1
        return reply


def wait_until(check: Callable[[], bool], what: str, procs: list[QJMProcess]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}\n" + "\n".join(p.log()[-2000:] for p in procs))
        time.sleep(0.05)


def job_subjects(smtp: SMTPTestServer, email: str) -> list[str]:
    return [str(m["Subject"]) for m in smtp.messages if email in (m["To"] or "") and "Confirm your email" not in str(m["Subject"])]


def outbox(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return [(r[0], r[1]) for r in conn.execute("SELECT subject, state FROM outbox WHERE kind = 'job_status'")]
    finally:
        conn.close()


def expire_leases(db: Path) -> int:
    """What the lease running out would do to the dead process's rows (no server is running now)."""
    conn = sqlite3.connect(db)
    try:
        with conn:
            return conn.execute("UPDATE outbox SET lease_until = 0 WHERE state = 'pending' AND lease_until > 0").rowcount
    finally:
        conn.close()


def token_of(subject: str, ids: list[str]) -> str | None:
    hits = [j for j in ids if j in subject]
    return hits[0] if len(hits) == 1 else None


def test_sigkill_mid_burst_loses_nothing_and_duplicates_only_in_flight(tmp_path: Path) -> None:
    smtp = SMTPTestServer(tmp_path, mode="none")
    slow = SlowHandler(SMTP_DELAY_S)
    smtp.handler = slow
    smtp.start()
    procs: list[QJMProcess] = []
    try:
        data_dir = tmp_path / "srv"
        data_dir.mkdir()
        env = qjm_env(data_dir, require_verified_email="false", mail_rate_per_minute=6000, **smtp.settings())
        db = data_dir / "qjm" / "qjm.sqlite3"
        first = QJMProcess(data_dir=data_dir, env=env)
        procs.append(first)
        first.start()

        email = f"burst-{secrets.token_hex(4)}@example.org"
        r = httpx.post(first.api + "auth/register", json={"email": email, "password": PASSWORD}, timeout=20)
        assert r.status_code == 202, r.text
        r = httpx.post(first.api + "auth/login", json={"email": email, "password": PASSWORD}, timeout=20)
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        ids = [f"burst{i:03d}q" for i in range(N_JOBS)]  # no id is a substring of another
        r = httpx.post(first.api + "jobs", headers=headers, timeout=20,
                       json={"jobs": [{"job_id": j, "source": "local", "notify_status": ["DONE"]} for j in ids]})
        assert r.status_code == 201, r.text
        with httpx.Client(timeout=20) as client:
            for j in ids:  # the kernel reports each local job finished: one email each
                r = client.post(first.api + f"jobs/{j}/status", headers=headers, json={"status": "DONE"})
                assert r.status_code == 200, r.text

        wait_until(lambda: len(job_subjects(smtp, email)) >= N_JOBS // 4, "a quarter of the burst", procs)
        first.kill()
        with slow.count_lock:
            in_handler_at_kill = slow.started - slow.answered
        time.sleep(SMTP_DELAY_S * 4)  # let the relay finish with whatever the dead process had sent

        delivered_first = Counter(token_of(s, ids) for s in job_subjects(smtp, email))
        recorded = {token_of(s, ids) for s, state in outbox(db) if state == "sent"}
        # In flight: reached the relay, but the dead process never recorded the 250.
        in_flight = sum(1 for j in delivered_first if j not in recorded)
        assert len(delivered_first) < N_JOBS, "the burst ended before the kill; nothing was tested"
        assert expire_leases(db) >= 1

        second = QJMProcess(data_dir=data_dir, env=env)
        procs.append(second)
        second.start()
        wait_until(lambda: len(outbox(db)) == N_JOBS and all(state == "sent" for _, state in outbox(db)),
                   "the outbox to drain after the restart", procs)

        got = Counter(token_of(s, ids) for s in job_subjects(smtp, email))
        assert None not in got, f"unexpected subjects: {job_subjects(smtp, email)}"
        lost = [j for j in ids if got[j] == 0]
        duplicated = sum(c - 1 for c in got.values() if c > 1)
        print(f"\nkill mid-burst: delivered before kill {sum(delivered_first.values())}/{N_JOBS}, "
              f"in flight {in_flight} (in the relay's handler at the kill: {in_handler_at_kill}), "
              f"lost: {len(lost)}, duplicated: {duplicated}")
        assert lost == []
        assert duplicated <= in_flight
        assert in_flight <= 2  # mail_concurrency (2) connections, one message each at a time
    finally:
        for p in procs:
            p.stop()
        smtp.stop()


def channel_outbox(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return [(r[0], r[1]) for r in conn.execute(
            "SELECT subject, state FROM outbox WHERE kind = 'job_status' AND channel_id IS NOT NULL")]
    finally:
        conn.close()


def test_sigkill_mid_webhook_burst_loses_nothing_and_duplicates_only_in_flight(tmp_path: Path, receiver: Any) -> None:
    """The same for a webhook channel (Apprise json://, issue 12: channel deliveries go
    through the outbox with its leases): the process dies while deliveries are in flight at
    a slow receiver; after the restart every job's message arrives, duplicates only for
    requests the receiver had taken when the process died."""
    receiver.delay = SMTP_DELAY_S
    data_dir = tmp_path / "srv"
    data_dir.mkdir()
    env = qjm_env(data_dir, require_verified_email="false", smtp_host="", channel_allowed_hosts="127.0.0.1")
    db = data_dir / "qjm" / "qjm.sqlite3"
    procs: list[QJMProcess] = []
    try:
        first = QJMProcess(data_dir=data_dir, env=env)
        procs.append(first)
        first.start()
        email = f"hookburst-{secrets.token_hex(4)}@example.org"
        r = httpx.post(first.api + "auth/register", json={"email": email, "password": PASSWORD}, timeout=20)
        assert r.status_code == 202, r.text
        r = httpx.post(first.api + "auth/login", json={"email": email, "password": PASSWORD}, timeout=20)
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = httpx.post(first.api + "channels", headers=headers, timeout=20,
                       json={"url": f"json://{receiver.base}/burst", "notify_status": ["DONE"]})
        assert r.status_code == 201, r.text
        ids = [f"hook{i:03d}q" for i in range(N_JOBS)]
        r = httpx.post(first.api + "jobs", headers=headers, timeout=20,
                       json={"jobs": [{"job_id": j, "source": "local", "notify_status": ["DONE"]} for j in ids]})
        assert r.status_code == 201, r.text
        with httpx.Client(timeout=20) as client:
            for j in ids:
                r = client.post(first.api + f"jobs/{j}/status", headers=headers, json={"status": "DONE"})
                assert r.status_code == 200, r.text

        def titles() -> list[str]:
            return [b["title"] for b in receiver.bodies("/burst")]

        wait_until(lambda: len(titles()) >= N_JOBS // 4, "a quarter of the burst", procs)
        first.kill()
        with receiver.lock:
            in_handler_at_kill = len(receiver.requests) - receiver.answered
        time.sleep(SMTP_DELAY_S * 4)

        delivered_first = Counter(token_of(t, ids) for t in titles())
        recorded = {token_of(s, ids) for s, state in channel_outbox(db) if state == "sent"}
        in_flight = sum(1 for j in delivered_first if j not in recorded)
        assert len(delivered_first) < N_JOBS, "the burst ended before the kill; nothing was tested"
        assert expire_leases(db) >= 1

        second = QJMProcess(data_dir=data_dir, env=env)
        procs.append(second)
        second.start()
        wait_until(lambda: len(channel_outbox(db)) == N_JOBS and all(state == "sent" for _, state in channel_outbox(db)),
                   "the channel deliveries to drain after the restart", procs)

        got = Counter(token_of(t, ids) for t in titles())
        assert None not in got, f"unexpected titles: {titles()}"
        lost = [j for j in ids if got[j] == 0]
        duplicated = sum(c - 1 for c in got.values() if c > 1)
        print(f"\nkill mid-webhook-burst: delivered before kill {sum(delivered_first.values())}/{N_JOBS}, "
              f"in flight {in_flight} (in the receiver at the kill: {in_handler_at_kill}), "
              f"lost: {len(lost)}, duplicated: {duplicated}")
        assert lost == []
        assert duplicated <= in_flight
        assert in_flight <= 4  # channel_concurrency (4) deliveries at once
    finally:
        for p in procs:
            p.stop()
