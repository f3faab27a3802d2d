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
from dataclasses import dataclass
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


@dataclass
class Burst:
    """Where a burst is observed: what reached the far end (subjects or titles, in order),
    the burst's outbox rows (subject, state), and requests the far end holds unanswered."""

    delivered: Callable[[], list[str]]
    rows: Callable[[], list[tuple[str, str]]]
    in_handler: Callable[[], int]


def send_burst(proc: QJMProcess, prefix: str, channel_url: str | None = None) -> list[str]:
    """An account whose N_JOBS local jobs the kernel reports DONE: one notification each
    (by email, and to `channel_url` when given). Returns the job ids."""
    email = f"{prefix}-{secrets.token_hex(4)}@example.org"
    r = httpx.post(proc.api + "auth/register", json={"email": email, "password": PASSWORD}, timeout=20)
    assert r.status_code == 202, r.text
    r = httpx.post(proc.api + "auth/login", json={"email": email, "password": PASSWORD}, timeout=20)
    assert r.status_code == 200, r.text
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    if channel_url:
        r = httpx.post(proc.api + "channels", headers=headers, timeout=20, json={"url": channel_url, "notify_status": ["DONE"]})
        assert r.status_code == 201, r.text
    ids = [f"{prefix}{i:03d}q" for i in range(N_JOBS)]  # no id is a substring of another
    r = httpx.post(proc.api + "jobs", headers=headers, timeout=20,
                   json={"jobs": [{"job_id": j, "source": "local", "notify_status": ["DONE"]} for j in ids]})
    assert r.status_code == 201, r.text
    with httpx.Client(timeout=20) as client:
        for j in ids:  # the kernel reports each local job finished
            r = client.post(proc.api + f"jobs/{j}/status", headers=headers, json={"status": "DONE"})
            assert r.status_code == 200, r.text
    return ids


def kill_mid_burst_and_restart(burst: Burst, ids: list[str], data_dir: Path, env: dict[str, str],
                               procs: list[QJMProcess], what: str) -> int:
    """Kill the running process a quarter into the burst, let its leases run out, start a
    second one on the same database; holds that nothing is lost and that duplicates are
    at most the deliveries in flight at the kill. Returns that number."""
    db = data_dir / "qjm" / "qjm.sqlite3"
    wait_until(lambda: len(burst.delivered()) >= N_JOBS // 4, "a quarter of the burst", procs)
    procs[-1].kill()
    in_handler_at_kill = burst.in_handler()
    time.sleep(SMTP_DELAY_S * 4)  # let the far end finish with whatever the dead process had sent

    delivered_first = Counter(token_of(s, ids) for s in burst.delivered())
    recorded = {token_of(s, ids) for s, state in burst.rows() if state == "sent"}
    # In flight: reached the far end, but the dead process never recorded the answer.
    in_flight = sum(1 for j in delivered_first if j not in recorded)
    assert len(delivered_first) < N_JOBS, "the burst ended before the kill; nothing was tested"
    assert expire_leases(db) >= 1

    second = QJMProcess(data_dir=data_dir, env=env)
    procs.append(second)
    second.start()
    wait_until(lambda: len(burst.rows()) == N_JOBS and all(state == "sent" for _, state in burst.rows()),
               "the outbox to drain after the restart", procs)

    got = Counter(token_of(s, ids) for s in burst.delivered())
    assert None not in got, f"unexpected deliveries: {burst.delivered()}"
    lost = [j for j in ids if got[j] == 0]
    duplicated = sum(c - 1 for c in got.values() if c > 1)
    print(f"\nkill mid-{what}: delivered before kill {sum(delivered_first.values())}/{N_JOBS}, "
          f"in flight {in_flight} (held by the far end at the kill: {in_handler_at_kill}), "
          f"lost: {len(lost)}, duplicated: {duplicated}")
    assert lost == []
    assert duplicated <= in_flight
    return in_flight


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
        procs.append(QJMProcess(data_dir=data_dir, env=env).start())
        ids = send_burst(procs[0], "burst")

        def in_handler() -> int:
            with slow.count_lock:
                return slow.started - slow.answered

        burst = Burst(delivered=lambda: [str(m["Subject"]) for m in smtp.messages if "Confirm your email" not in str(m["Subject"])],
                      rows=lambda: outbox(db), in_handler=in_handler)
        in_flight = kill_mid_burst_and_restart(burst, ids, data_dir, env, procs, "burst")
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
        procs.append(QJMProcess(data_dir=data_dir, env=env).start())
        ids = send_burst(procs[0], "hook", channel_url=f"json://{receiver.base}/burst")

        def in_handler() -> int:
            with receiver.lock:
                return len(receiver.requests) - receiver.answered

        burst = Burst(delivered=lambda: [b["title"] for b in receiver.bodies("/burst")],
                      rows=lambda: channel_outbox(db), in_handler=in_handler)
        in_flight = kill_mid_burst_and_restart(burst, ids, data_dir, env, procs, "webhook-burst")
        assert in_flight <= 4  # channel_concurrency (4) deliveries at once
    finally:
        for p in procs:
            p.stop()
