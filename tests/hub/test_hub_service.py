"""`jupyter qjm` as a JupyterHub managed service, with a REAL JupyterHub (proxy, OAuth, spawner).

Two members, each with a kernel in their own single-user server: `%%qjm_watch` there uses
the Hub token the kernel's environment holds, and each member gets only their own mail.
The service's API shows nobody another member's jobs, and refuses requests that carry
no Hub identity. The Hub's admin flag and the authenticator's email carry over.
"""

from __future__ import annotations

import re
import time
from types import SimpleNamespace
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from tests.fixtures.hub import Hub
from tests.fixtures.server_kernel import run_in_server_kernel
from tests.fixtures.smtp import SMTPTestServer
from tests.kernel.conftest import body_text, kernel_smtp, wait_for_mail  # noqa: F401 - kernel_smtp: a fixture

pytestmark = [pytest.mark.hub, pytest.mark.slow, pytest.mark.timeout(900)]

WATCH_CELL = (
    "%%qjm_watch --on DONE --label hub\n"
    "from qiskit import QuantumCircuit\nfrom qiskit_aer import AerSimulator\n"
    "qc = QuantumCircuit(1, 1); qc.h(0); qc.measure(0, 0)\n"
    "job = AerSimulator().run(qc, shots=16); job.result()"
)


@pytest.fixture(scope="module")
def hub(hub_factory, kernel_smtp: SMTPTestServer) -> Hub:  # type: ignore[no-untyped-def]
    return hub_factory(smtp_host=kernel_smtp.host, smtp_port=kernel_smtp.port,
                       emails={"alice": "alice@example.org"}, admins={"alice"})


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


def watch_in_kernel(hub: Hub, name: str, token: str) -> str:
    """Run `%%qjm_watch` in a kernel of the member's own server (through the proxy); the job id."""
    server = SimpleNamespace(url=f"{hub.url}user/{name}/", jupyter_token=token)
    loaded, watched, job_id = run_in_server_kernel(server, ["%load_ext qjm_jupyter", WATCH_CELL, "print(job.job_id())"])  # type: ignore[arg-type]
    assert loaded == "" and "watching 1 job on aer_simulator" in watched, (loaded, watched)
    return job_id.strip()


def test_members_watch_from_kernels_and_see_only_their_own(hub: Hub, kernel_smtp: SMTPTestServer, tmp_path: Path) -> None:
    timings = dict(hub.timings)
    api = hub.service_api
    # alice signs in to the Hub once (its authenticator knows her email); bob only exists
    hub.login("alice").close()
    assert hub.admin("POST", "users/bob").status_code == 201
    alice, bob = hub.user_token("alice"), hub.user_token("bob")

    me_a = httpx.get(api + "me", headers=auth(alice), timeout=30)
    assert me_a.status_code == 200, hub.log()
    assert me_a.json()["email"] == "alice@example.org" and me_a.json()["is_verified"] is True
    assert me_a.json()["is_admin"] is True  # a Hub admin
    me_b = httpx.get(api + "me", headers=auth(bob), timeout=30).json()
    assert me_b["email"] == "" and me_b["is_admin"] is False
    assert me_a.json()["id"] != me_b["id"]

    # bob is asked once for an address, confirmed by the emailed link
    r = httpx.patch(api + "me", json={"email": "bob@example.org"}, headers=auth(bob), timeout=30)
    assert r.status_code == 200, r.text
    mails = wait_for_mail(kernel_smtp, lambda m: "bob@example.org" in str(m["To"]) and "token=" in body_text(m))
    assert mails, [m["Subject"] for m in kernel_smtp.messages]
    link = re.search(r"(\S+/services/qjm/qjm/verify)\?token=([A-Za-z0-9_\-.%]+)", body_text(mails[-1]))
    assert link, body_text(mails[-1])  # the link points at the service, through the Hub's proxy
    r = httpx.post(api + "auth/verify/confirm", json={"token": unquote(link.group(2))}, timeout=30)
    assert r.status_code == 200, r.text
    assert httpx.get(api + "me", headers=auth(bob), timeout=30).json()["is_verified"] is True

    # each member's kernel, in their own single-user server, with no qjm password
    t = time.monotonic()
    hub.spawn("alice")
    hub.spawn("bob")
    timings["spawn two servers"] = time.monotonic() - t
    t = time.monotonic()
    job_a = watch_in_kernel(hub, "alice", alice)
    job_b = watch_in_kernel(hub, "bob", bob)
    timings["two kernels watch"] = time.monotonic() - t

    mail_a = wait_for_mail(kernel_smtp, lambda m: job_a in body_text(m))
    mail_b = wait_for_mail(kernel_smtp, lambda m: job_b in body_text(m))
    assert mail_a and mail_b, [m["Subject"] for m in kernel_smtp.messages]
    assert {str(m["To"]) for m in mail_a} == {"alice@example.org"}
    assert {str(m["To"]) for m in mail_b} == {"bob@example.org"}

    # neither reads the other's jobs through the service's API
    jobs_a = httpx.get(api + "jobs", headers=auth(alice), timeout=30).json()["jobs"]
    jobs_b = httpx.get(api + "jobs", headers=auth(bob), timeout=30).json()["jobs"]
    assert [j["job_id"] for j in jobs_a] == [job_a]
    assert [j["job_id"] for j in jobs_b] == [job_b]
    assert httpx.get(api + f"jobs/{jobs_a[0]['id']}", headers=auth(bob), timeout=30).status_code == 404
    assert httpx.delete(api + f"jobs/{jobs_a[0]['id']}", headers=auth(bob), timeout=30).status_code == 404
    assert httpx.get(api + f"jobs/{jobs_a[0]['id']}", headers=auth(alice), timeout=30).status_code == 200
    # admins are Hub admins
    assert httpx.get(api + "admin/users", headers=auth(alice), timeout=30).status_code == 200
    assert httpx.get(api + "admin/users", headers=auth(bob), timeout=30).status_code == 403

    # no Hub identity: refused
    for headers in ({}, {"Authorization": "token not-a-hub-token"}):
        r = httpx.get(api + "me", headers=headers, timeout=30)
        assert r.status_code == 401, r.text
        r = httpx.post(api + "jobs", json={"job_id": "x", "source": "local"}, headers=headers, timeout=30)
        assert r.status_code in (401, 403), r.text
    assert len(jobs_a) == 1
    print(f"\nHub test timings (s): { {k: round(v, 1) for k, v in timings.items()} }")


def test_the_panel_in_a_members_lab_reaches_the_service_through_the_proxy(hub: Hub) -> None:
    from tests.ui.test_panel import CHROMIUM, HEADLESS_ARGS, WAIT_MS, _shot

    if not CHROMIUM.exists():
        pytest.skip("needs Debian chromium at /usr/bin/chromium")
    from playwright.sync_api import expect, sync_playwright

    alice = hub.user_token("alice")
    r = httpx.post(hub.service_api + "jobs", json={"job_id": "local-proxy-1", "source": "local", "label": "Via the Hub"},
                   headers=auth(alice), timeout=30)
    assert r.status_code == 201, r.text
    hub.spawn("alice")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=HEADLESS_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.goto(hub.url + "hub/login", timeout=WAIT_MS)
            page.locator("#username_input").fill("alice")
            page.locator("#password_input").fill("pw")
            page.locator("#login_submit").click()
            page.wait_for_url("**/user/alice/lab**", timeout=WAIT_MS)
            page.wait_for_function("() => document.querySelector('.jp-SideBar [data-id=\"qjm-job-panel\"]')",
                                   timeout=WAIT_MS)
            page.locator('.jp-SideBar [data-id="qjm-job-panel"]').click()
            panel = page.locator("#qjm-job-panel")
            row = panel.locator("tr.qjm-row").filter(has_text="Via the Hub")
            expect(row).to_be_visible(timeout=WAIT_MS)  # the service's job, not the member server's own store
            expect(panel.get_by_role("heading", name="Sign in to qjm")).to_be_hidden()
            _shot(page, "panel_hub_member.png")
        finally:
            browser.close()
