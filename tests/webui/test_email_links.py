"""Every link of every email template opens, on the server that sent it, in both modes.

A real `jupyter qjm` (no JupyterLab: links must lead to the qjm web UI) and a real
`jupyter lab` (links may deep-link into the Lab panel), each over a real port, mailing
through aiosmtpd, watching the fake IBM Quantum API. The test makes the server send one
email of every template (account mail, job mail from kernel reports, and the watcher's
lost / forbidden / key-rejected mail), then follows every link in every email, text and
HTML part, and wants a 200 with the page the link promises.
"""

from __future__ import annotations

import re
import time
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import qjm_jupyter_server
from qjm_jupyter_server.domain import IBM_WORKLOADS_URL
from tests.fixtures.server import ibm_key

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
DEADLINE = 60.0
TEMPLATES = Path(qjm_jupyter_server.__file__).parent / "notify" / "templates"
# The outbox `kind` of each template's mail (the delivery log reports it).
KIND_TEMPLATE = {
    "verify": "verify_email",
    "reset": "reset_password",
    "notice": "account_notice",
    "test": "test_message",
    "job_status": "job_status",
    "group": "group_milestone",
    "key_invalid": "key_invalid",
    "forbidden": "instance_forbidden",
    "job_lost": "job_lost",
    "digest": "digest",
}


class _Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href" and v]


def links_of(msg: EmailMessage) -> list[str]:
    text = str(msg.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    html = str(msg.get_body(preferencelist=("html",)).get_content())  # type: ignore[union-attr]
    parser = _Hrefs()
    parser.feed(html)
    found = re.findall(r"https?://[^\s<>\"']+", text) + parser.hrefs
    return sorted(set(found))


def wait_for(check, what: str):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + DEADLINE
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.2)


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def expected_page(server_url: str, link: str) -> str:
    """A marker the answer to `link` must contain: which page the link promises."""
    rest = link[len(server_url):]
    path = urlsplit(rest).path
    if path == "lab":
        return '"appName": "JupyterLab"'
    if path in ("qjm/verify", "qjm/reset"):
        return {"qjm/verify": "Confirm your email address", "qjm/reset": "Choose a new password"}[path]
    if path == "qjm/unsubscribe":  # the stop links: a GET only shows what the button would stop
        return "Stop notifications · qjm-jupyter"
    if path.startswith("qjm/jobs/"):
        return 'data-qjm-page="job"'
    if path == "qjm/account":
        return 'data-qjm-page="account"'
    if path == "qjm/notifications":
        return 'data-qjm-page="notifications"'
    if path in ("qjm/", "qjm"):
        return 'data-qjm-page="jobs"'
    pytest.fail(f"an emailed link leads nowhere qjm knows: {link}")


@pytest.mark.parametrize("mode", ["qjm", "lab"])
def test_every_emailed_link_opens_on_the_server_that_sent_it(mode, start_qjm, smtp_server, fake_ibm) -> None:
    assert set(KIND_TEMPLATE.values()) == {
        p.name.removesuffix(".txt.j2") for p in TEMPLATES.glob("*.txt.j2") if not p.name.startswith("_")
    }, "a template without a trigger here: teach this test to send it"
    crn0, crn1 = fake_ibm.crn(0), fake_ibm.crn(1)
    srv = start_qjm(
        command=mode, **smtp_server.settings(), ibm_iam_url=fake_ibm.base, ibm_api_url=fake_ibm.api_url,
        poll_interval=0.2,
    )
    api = httpx.Client(base_url=srv.api, timeout=20)
    mail_to = lambda to: [m for m in smtp_server.messages if to in str(m["To"])]  # noqa: E731

    def account(email: str, key: str) -> dict[str, str]:
        r = api.post("auth/register", json={"email": email, "password": PASSWORD, "ibm_quantum_token": key,
                                            "default_instance": crn0})
        assert r.status_code == 202, r.text
        verify = wait_for(lambda: [m for m in mail_to(email) if "Confirm your email" in str(m["Subject"])],
                          f"{email}'s verification mail")[0]
        link = next(u for u in links_of(verify) if "/qjm/verify?" in u)
        r = api.post("auth/verify/confirm", json={"token": token_of(link)})  # what the page's button does
        assert r.status_code == 200, r.text
        r = api.post("auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    # ada: a key for instance 0 only.
    ada = account("ada@example.org", fake_ibm.key("ada1", instances=[crn0]))
    # Account mail: a password change notice, a reset link, a test email.
    r = api.patch("me", headers=ada, json={"password": PASSWORD + "!", "current_password": PASSWORD})
    assert r.status_code == 200, r.text
    r = api.post("auth/login", json={"email": "ada@example.org", "password": PASSWORD + "!"})
    ada = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert api.post("auth/password/forgot", json={"email": "ada@example.org"}).status_code == 202
    assert api.post("notifications/test", headers=ada).status_code == 202
    # Job mail from kernel reports: a group of two local jobs, both run and finish.
    r = api.post("jobs", headers=ada, json={"jobs": [
        {"job_id": f"local-{n}", "source": "local", "group": "sweep", "label": f"point {n}",
         "notify_status": ["RUNNING", "DONE"]} for n in (1, 2)
    ]})
    assert r.status_code == 201, r.text
    for job in r.json()["jobs"]:
        for status in ("RUNNING", "DONE"):
            assert api.post(f"jobs/{job['id']}/status", headers=ada, json={"status": status}).status_code == 200
    # Held mail: quiet hours around now hold a job mail; turning them off sends it as one summary.
    hour = time.gmtime().tm_hour
    r = api.put("notifications/preferences", headers=ada, json={
        "quiet_start": f"{(hour - 1) % 24:02d}:00", "quiet_end": f"{(hour + 1) % 24:02d}:59"})
    assert r.status_code == 200, r.text
    r = api.post("jobs", headers=ada, json={"job_id": "local-held", "source": "local", "notify_status": ["RUNNING"]})
    assert r.status_code == 201, r.text
    assert api.post("jobs/local-held/status", headers=ada, json={"status": "RUNNING"}).status_code == 200
    assert api.put("notifications/preferences", headers=ada, json={"quiet_start": None, "quiet_end": None}).status_code == 200
    # Watcher mail: a job IBM does not know (lost), a job on an instance the key may not read.
    fake_ibm.add_job("ibm-here", "Running", instance=crn0)
    r = api.post("jobs", headers=ada, json={"jobs": [
        {"job_id": "ibm-here", "instance": crn0}, {"job_id": "ibm-gone", "instance": crn0},
        {"job_id": "ibm-elsewhere", "instance": crn1},
    ]})
    assert r.status_code == 201, r.text
    # bob: a key IBM rejects.
    bob = account("bob@example.org", ibm_key("rejected"))
    assert api.post("jobs", headers=bob, json={"jobs": [{"job_id": "ibm-bob", "instance": crn0}]}).status_code == 201

    def kinds() -> set[str]:
        sent: set[str] = set()
        for who in (ada, bob):
            log = api.get("notifications", headers=who, params={"limit": 200}).json()["notifications"]
            sent |= {n["kind"] for n in log if n["state"] == "sent"}
        return sent if sent >= set(KIND_TEMPLATE) else set()

    assert wait_for(kinds, "one sent email of every template") >= set(KIND_TEMPLATE)
    messages = smtp_server.messages
    assert len(messages) >= len(KIND_TEMPLATE)

    # Follow every link as the recipient's browser would (signed in to Jupyter, as they are in Lab).
    browser = httpx.Client(timeout=30, follow_redirects=True,
                           headers={"Authorization": f"token {srv.jupyter_token}"})
    followed: dict[str, int] = {}
    for msg in messages:
        for link in links_of(msg):
            if link.startswith(IBM_WORKLOADS_URL + "/"):
                continue  # IBM Quantum's own page: not ours to serve
            assert link.startswith(srv.url), f"{msg['Subject']!r} links off its server: {link}"
            if mode == "qjm":
                assert "/lab" not in link, f"{msg['Subject']!r} links into a JupyterLab `jupyter qjm` lacks: {link}"
            if link in followed:
                continue
            r = browser.get(link)
            followed[link] = r.status_code
            assert r.status_code == 200, f"{msg['Subject']!r}: {link} answered {r.status_code}"
            marker = expected_page(srv.url, link)
            assert marker in r.text, f"{msg['Subject']!r}: {link} is not the page it promises ({marker})"
    # Every kind of link was there: job, notification settings ("manage notifications"), account
    # (a refused IBM key or instance), group, verify, reset.
    paths = {urlsplit(link[len(srv.url):]).path for link in followed}
    if mode == "qjm":
        assert {"qjm/verify", "qjm/reset", "qjm/account", "qjm/notifications", "qjm/"} <= paths, paths
        assert any(p.startswith("qjm/jobs/") for p in paths), paths
    else:
        assert {"qjm/verify", "qjm/reset", "lab"} <= paths, paths
        queries = " ".join(followed)
        assert "qjm-job=" in queries and "qjm-settings=1" in queries and "qjm-group=" in queries
        assert "qjm-notifications=1" in queries
