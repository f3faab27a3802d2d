"""Stop links, end to end: the real server (watcher + mailer), the fake IBM API, aiosmtpd.

Every job mail carries RFC 8058 `List-Unsubscribe` (https) + `List-Unsubscribe-Post`; a
real one-click POST (form body, no login, no cookies) stops that job's mail; the footer's
"stop all" link shows a page on GET (changing nothing) and stops on POST.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.watcher.test_e2e_mail import _true, cycles, job_mail, start, text_of, until

PUBLIC = "https://qjm.example.org/"


@pytest.fixture
def qjm_config(qjm_config: dict[str, Any], fake_ibm: Any, smtp_server: Any) -> dict[str, Any]:
    qjm_config.update(smtp_server.settings())
    qjm_config.update(ibm_iam_url=fake_ibm.base, ibm_api_url=fake_ibm.api_url, poll_interval=0.2, public_url=PUBLIC)
    return qjm_config


def on_test_server(api: httpx.AsyncClient, url: str) -> str:
    """A link made for the public URL, aimed at the test server (same path and query)."""
    assert url.startswith(PUBLIC), url
    parts = urlsplit(url)
    base = str(api.base_url).removesuffix("qjm/api/")
    return f"{base}{parts.path.lstrip('/')}?{parts.query}"


async def test_one_click_stops_one_job_and_the_footer_stops_all(
    qjm_services: Any, api: httpx.AsyncClient, make_user: Any, fake_ibm: Any, smtp_server: Any
) -> None:
    started = await start(qjm_services)
    user = await make_user(ibm_quantum_token=fake_ibm.key(), default_instance=fake_ibm.default_crn)
    for name in ("stop-a", "stop-b", "stop-c"):
        fake_ibm.add_job(name, "Queued")
    r = await api.post("jobs", headers=user.headers, json={"jobs": [
        {"job_id": n, "notify_status": ["RUNNING", "DONE"]} for n in ("stop-a", "stop-b", "stop-c")]})
    assert r.status_code == 201, r.text
    fake_ibm.set_status("stop-a", "Running")
    await until(lambda: _true(len(job_mail(smtp_server.messages, user.email)) >= 1), "the RUNNING mail")
    [running] = job_mail(smtp_server.messages, user.email)
    assert running["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header = running["List-Unsubscribe"]
    assert header.startswith(f"<{PUBLIC}qjm/unsubscribe?token=") and header.endswith(">")
    raw = next(r for r in smtp_server.handler.raw if b"stop-a" in r and b"List-Unsubscribe:" in r)
    on_the_wire = raw.split(b"List-Unsubscribe: ", 1)[1].split(b"\r\n", 1)[0].decode()
    assert on_the_wire == header  # one line, not RFC 2047-encoded by a 78-column flattener
    one_click = on_test_server(api, header[1:-1])

    # What a mail provider sends (RFC 8058 §3.2): a form POST, no cookies, no credentials.
    async with httpx.AsyncClient(timeout=20, follow_redirects=False) as provider:
        r = await provider.post(one_click, content=b"List-Unsubscribe=One-Click",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 200, r.text
        assert r.json()["scope"] == "job"
        again = await provider.post(one_click, content=b"List-Unsubscribe=One-Click",
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert again.status_code == 200  # idempotent
        forged = await provider.post(one_click[:-3] + "AAA", content=b"List-Unsubscribe=One-Click",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert forged.status_code == 422 and forged.json()["error"]["field"] == "token"
    assert (await api.get("jobs/stop-a", headers=user.headers)).json()["notify_status"] == []

    fake_ibm.set_status("stop-a", "Completed")
    fake_ibm.set_status("stop-b", "Running")
    await until(lambda: _true(len(job_mail(smtp_server.messages, user.email)) >= 2), "stop-b's RUNNING mail")
    await cycles(started, 3)
    mails = job_mail(smtp_server.messages, user.email)
    assert [("stop-a" in m["Subject"], "stop-b" in m["Subject"]) for m in mails] == [(True, False), (False, True)]

    # The footer: GET shows a confirmation page and changes nothing; the page's POST stops.
    footer = next(line.split(": ", 1)[1] for line in text_of(mails[1]).splitlines() if line.startswith("Stop all notification email: "))
    page_url = on_test_server(api, footer)
    async with httpx.AsyncClient(timeout=20, follow_redirects=False) as browser:
        page = await browser.get(page_url)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert f"Stop all job notification email to {user.email}?" in page.text
        assert (await api.get("notifications/preferences", headers=user.headers)).json()["mail_stopped"] is False
        token = page_url.split("token=", 1)[1]
        r = await browser.post(page_url.split("?", 1)[0], json={"token": token})
        assert r.status_code == 200 and r.json()["scope"] == "account", r.text
    assert (await api.get("notifications/preferences", headers=user.headers)).json()["mail_stopped"] is True

    fake_ibm.set_status("stop-b", "Completed")
    await cycles(started, 4)
    assert len(job_mail(smtp_server.messages, user.email)) == 2  # stopped: no DONE mail for stop-b

    r = await api.put("notifications/preferences", headers=user.headers, json={"mail_stopped": False})
    assert r.status_code == 200 and r.json()["mail_stopped"] is False
    fake_ibm.set_status("stop-c", "Running")
    await until(lambda: _true(len(job_mail(smtp_server.messages, user.email)) >= 3), "mail on again")
    assert "stop-c" in job_mail(smtp_server.messages, user.email)[2]["Subject"]
    r = await api.put("notifications/preferences", headers=user.headers, json={"mail_stopped": "maybe"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "mail_stopped"


async def test_preferences_validate_and_round_trip(api: httpx.AsyncClient, make_user: Any) -> None:
    user = await make_user()
    r = await api.get("notifications/preferences", headers=user.headers)
    assert r.json() == {"mail_stopped": False, "mail_stopped_at": None, "time_zone": "UTC", "quiet_start": None,
                        "quiet_end": None, "quiet_breakthrough": [], "digest_minutes": 0}
    r = await api.put("notifications/preferences", headers=user.headers, json={
        "time_zone": "Europe/Zurich", "quiet_start": "22:00", "quiet_end": "07:00", "quiet_breakthrough": ["error"],
        "digest_minutes": 60})
    assert r.status_code == 200, r.text
    assert (r.json()["time_zone"], r.json()["quiet_breakthrough"], r.json()["digest_minutes"]) == ("Europe/Zurich", ["ERROR"], 60)
    for body, field in (
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"quiet_start": "25:00"}, "quiet_start"),
        ({"quiet_end": None}, "quiet_end"),
        ({"digest_minutes": 2}, "digest_minutes"),
        ({"digest_minutes": 5000}, "digest_minutes"),
        ({"quiet_breakthrough": ["SOON"]}, "quiet_breakthrough.0"),
        ({"bedtime": "now"}, "bedtime"),
    ):
        r = await api.put("notifications/preferences", headers=user.headers, json=body)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, (body, r.text)
    r = await api.put("notifications/preferences", headers=user.headers, json={"quiet_start": None, "quiet_end": None})
    assert r.status_code == 200 and r.json()["quiet_start"] is None and r.json()["time_zone"] == "Europe/Zurich"


async def test_a_group_mails_one_click_stops_that_group(
    qjm_services: Any, api: httpx.AsyncClient, make_user: Any, fake_ibm: Any, smtp_server: Any
) -> None:
    """A group milestone email is job mail about a group: its RFC 8058 one-click stops the
    notifications of that group's jobs (and of no other job)."""
    started = await start(qjm_services)
    user = await make_user(ibm_quantum_token=fake_ibm.key(), default_instance=fake_ibm.default_crn)
    for name in ("grp-a", "grp-b", "solo"):
        fake_ibm.add_job(name, "Queued")
    r = await api.post("jobs", headers=user.headers, json={"jobs": [
        {"job_id": "grp-a", "notify_status": ["RUNNING", "DONE"], "group": "night run"},
        {"job_id": "grp-b", "notify_status": ["RUNNING", "DONE"], "group": "night run"},
        {"job_id": "solo", "notify_status": ["DONE"]}]})
    assert r.status_code == 201, r.text
    fake_ibm.set_status("grp-a", "Running")
    await until(lambda: _true(any("first job running" in m["Subject"] for m in job_mail(smtp_server.messages, user.email))),
                "the group's first-running mail")
    group_mail = next(m for m in job_mail(smtp_server.messages, user.email) if "first job running" in m["Subject"])
    assert group_mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click = on_test_server(api, group_mail["List-Unsubscribe"][1:-1])
    async with httpx.AsyncClient(timeout=20, follow_redirects=False) as provider:
        page = await provider.get(one_click)
        assert page.status_code == 200 and "Stop all notifications about group night run?" in page.text
        r = await provider.post(one_click, content=b"List-Unsubscribe=One-Click",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and r.json()["scope"] == "group", r.text
    jobs = {j["job_id"]: j for j in (await api.get("jobs", headers=user.headers)).json()["jobs"]}
    assert (jobs["grp-a"]["notify_status"], jobs["grp-b"]["notify_status"], jobs["solo"]["notify_status"]) == ([], [], ["DONE"])

    before = len(job_mail(smtp_server.messages, user.email))
    for name in ("grp-a", "grp-b", "solo"):
        fake_ibm.set_status(name, "Completed")
    await until(lambda: _true(len(job_mail(smtp_server.messages, user.email)) > before), "solo's DONE mail")
    await cycles(started, 4)
    later = [m["Subject"] for m in job_mail(smtp_server.messages, user.email)[before:]]
    assert len(later) == 1 and "solo" in later[0], later  # nothing more about the stopped group
