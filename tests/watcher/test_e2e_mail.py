"""End to end: the real server (watcher + mailer running), the fake IBM API, aiosmtpd.

A user registers with an IBM key through the API, registers jobs, the jobs move in the
fake, and exactly the right emails arrive over SMTP. Waiting is by deadline on an
observable condition (a cycle count, a message count), never a timed assertion.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from tests.fixtures.server import ibm_key

DEADLINE = 30.0


@pytest.fixture
def qjm_config(qjm_config: dict[str, Any], fake_ibm: Any, smtp_server: Any) -> dict[str, Any]:
    qjm_config.update(smtp_server.settings())
    qjm_config.update(ibm_iam_url=fake_ibm.base, ibm_api_url=fake_ibm.api_url, poll_interval=0.2)
    return qjm_config




async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


async def cycles(services: Any, n: int) -> None:
    """Let the running poller complete n more cycles (proves nothing more is due)."""
    target = services.poller.cycles + n
    await until(lambda: _true(services.poller.cycles >= target), f"{n} poll cycles")


async def start(services: Any) -> Any:
    """The test server does not run `_post_start`: start the watcher and mailer here."""
    await services.start_background()
    return services


async def _true(value: bool) -> bool:
    return value


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def job_mail(messages: list[EmailMessage], to: str) -> list[EmailMessage]:
    """Everything but the account's own verification mail."""
    return [m for m in messages if m["To"] and to in m["To"] and "Confirm your email" not in m["Subject"]]


async def test_job_mail_end_to_end(qjm_services: Any, api: httpx.AsyncClient, make_user: Any, fake_ibm: Any, smtp_server: Any) -> None:
    started = await start(qjm_services)
    key = fake_ibm.key()
    user = await make_user(ibm_quantum_token=key, default_instance=fake_ibm.default_crn)
    fake_ibm.add_job("e2e-skip", "Queued")
    fake_ibm.add_job("e2e-fail", "Running")
    fake_ibm.add_job("e2e-wait", "Queued")
    r = await api.post("jobs", headers=user.headers, json={"jobs": [
        {"job_id": "e2e-skip", "notify_status": ["RUNNING", "DONE"], "label": "bell pair"},
        {"job_id": "e2e-fail"},  # the account's defaults: DONE, ERROR, CANCELLED
        {"job_id": "e2e-wait", "notify_status": ["DONE"]},
    ]})
    assert r.status_code == 201, r.text

    async def seen() -> bool:
        jobs = (await api.get("jobs", headers=user.headers)).json()["jobs"]
        return all(j["status"] != "INITIALIZING" for j in jobs)

    await until(seen, "the first poll")
    fake_ibm.set_status("e2e-skip", "Completed")
    fake_ibm.set_status("e2e-fail", "Failed", reason="out of memory")

    await until(lambda: _true(len(job_mail(smtp_server.messages, user.email)) >= 2), "two job emails")
    await cycles(started, 3)
    mails = job_mail(smtp_server.messages, user.email)
    assert len(mails) == 2, [m["Subject"] for m in mails]
    by_subject = {m["Subject"]: m for m in mails}
    skip = next(m for s, m in by_subject.items() if "bell pair" in s)
    fail = next(m for s, m in by_subject.items() if "e2e-fail" in s)
    assert "DONE" in skip["Subject"]
    assert "RUNNING" in text_of(skip) and "DONE" in text_of(skip)  # the skipped status, same message
    assert "ERROR" in fail["Subject"]
    assert "out of memory" in text_of(fail)
    assert not any(key in m.as_string() for m in smtp_server.messages)  # the key never leaves the server

    jobs = {j["job_id"]: j for j in (await api.get("jobs", headers=user.headers)).json()["jobs"]}
    assert (jobs["e2e-skip"]["status"], jobs["e2e-skip"]["watch_state"]) == ("DONE", "final")
    assert (jobs["e2e-fail"]["status"], jobs["e2e-fail"]["error_reason"]) == ("ERROR", "out of memory")
    assert (jobs["e2e-wait"]["status"], jobs["e2e-wait"]["watch_state"]) == ("QUEUED", "active")

    log = (await api.get("notifications", headers=user.headers)).json()
    assert sorted(n["kind"] for n in log["notifications"] if n["kind"] == "job_status") == ["job_status"] * 2


async def test_invalid_key_one_alert_then_resume_after_patch_me(
    qjm_services: Any, api: httpx.AsyncClient, make_user: Any, fake_ibm: Any, smtp_server: Any
) -> None:
    started = await start(qjm_services)
    key = fake_ibm.key()
    user = await make_user(ibm_quantum_token=key, default_instance=fake_ibm.default_crn)
    fake_ibm.add_job("kx", "Queued")
    r = await api.post("jobs", headers=user.headers, json={"jobs": [{"job_id": "kx"}]})
    assert r.status_code == 201, r.text

    async def queued() -> bool:
        return (await api.get("jobs/kx", headers=user.headers)).json()["status"] == "QUEUED"

    await until(queued, "the first poll")
    fake_ibm.revoke_key(key)
    fake_ibm.expire_tokens()

    async def invalid() -> bool:
        return (await api.get("me", headers=user.headers)).json()["ibm_key"]["state"] == "invalid"

    await until(invalid, "the key to be marked invalid")
    await until(lambda: _true(len(job_mail(smtp_server.messages, user.email)) >= 1), "the key alert")
    calls = len(fake_ibm.calls)
    await cycles(started, 3)
    assert len(fake_ibm.calls) == calls  # paused: IBM is not called with a dead key
    [alert] = job_mail(smtp_server.messages, user.email)
    assert "rejected" in alert["Subject"]

    fake_ibm.set_status("kx", "Completed")
    new_key = ibm_key()
    fake_ibm.add_key(new_key)
    r = await api.patch("me", headers=user.headers, json={"ibm_quantum_token": new_key})
    assert r.status_code == 200, r.text
    assert r.json()["ibm_key"]["state"] == "ok"
    await until(lambda: _true(len(job_mail(smtp_server.messages, user.email)) >= 2), "the DONE email")
    await cycles(started, 3)
    mails = job_mail(smtp_server.messages, user.email)
    assert len(mails) == 2
    assert "DONE" in mails[1]["Subject"]


async def test_kernel_reported_local_job(qjm_services: Any, api: httpx.AsyncClient, make_user: Any, fake_ibm: Any, smtp_server: Any) -> None:
    started = await start(qjm_services)
    user = await make_user(ibm_quantum_token=fake_ibm.key(), default_instance=fake_ibm.default_crn)
    fake_ibm.add_job("ibm-1", "Queued")
    r = await api.post("jobs", headers=user.headers, json={"jobs": [
        {"job_id": "sim-1", "source": "local", "notify_status": ["RUNNING", "DONE"]},
        {"job_id": "ibm-1"},
    ]})
    assert r.status_code == 201, r.text

    r = await api.post("jobs/sim-1/status", headers=user.headers, json={"status": "done"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["watch_state"], body["source"]) == ("DONE", "final", "local")
    assert [h["status"] for h in body["history"]] == ["DONE"]
    # A repeated report changes nothing and mails nothing.
    r = await api.post("jobs/sim-1/status", headers=user.headers, json={"status": "DONE"})
    assert r.status_code == 200 and r.json()["status"] == "DONE"

    r = await api.post("jobs/ibm-1/status", headers=user.headers, json={"status": "DONE"})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["field"] == "job_id" and "IBM" in r.json()["error"]["message"]
    r = await api.post("jobs/sim-1/status", headers=user.headers, json={"status": "FINISHED"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "status"
    r = await api.post("jobs/nope/status", headers=user.headers, json={"status": "DONE"})
    assert r.status_code == 404
    r = await api.post("jobs/sim-1/status", json={"status": "DONE"})
    assert r.status_code == 401
    other = await make_user()
    r = await api.post("jobs/sim-1/status", headers=other.headers, json={"status": "ERROR"})
    assert r.status_code == 404

    await until(lambda: _true(len(job_mail(smtp_server.messages, user.email)) >= 1), "the local job's email")
    await cycles(started, 3)
    [mail] = job_mail(smtp_server.messages, user.email)
    assert "DONE" in mail["Subject"] and "RUNNING" in text_of(mail)
