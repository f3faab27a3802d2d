"""Two real servers: a group `jupyter qjm` and a member's `jupyter lab` in remote mode.

The group server (SQLite, its watcher polling the fake IBM API, mail to aiosmtpd) holds
the accounts and jobs. The member's Lab has `QJM_REMOTE_URL` pointing at it and nothing
else: its panel (in Debian chromium), its kernels' `JobManagerClient()` and `%qjm_watch`
all go through the member's own Jupyter server. With the group server stopped, the
member answers a JSON 502 at once and the panel says the group server is unreachable.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from tests.fixtures.process import QJMProcess
from tests.fixtures.server_kernel import run_in_server_kernel
from tests.fixtures.smtp import SMTPTestServer
from tests.kernel.conftest import body_text, create_verified_account, wait_for_mail

from tests.ui.test_panel import CHROMIUM, HEADLESS_ARGS, WAIT_MS, _prepare_jupyter_dirs, _shot

pytestmark = [pytest.mark.ui, pytest.mark.slow, pytest.mark.timeout(400)]

from playwright.sync_api import expect, sync_playwright  # noqa: E402

PASSWORD = "correct horse battery staple"


@pytest.fixture
def smtp(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = SMTPTestServer(tmp_path / "smtp", mode="none")
    (tmp_path / "smtp").mkdir(exist_ok=True)
    server.start()
    yield server
    server.stop()


def test_member_lab_uses_the_group_server(start_qjm, fake_ibm, smtp: SMTPTestServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    group: QJMProcess = start_qjm(
        command="qjm", smtp_host=smtp.host, smtp_port=smtp.port, smtp_security="none",
        ibm_iam_url=fake_ibm.base, ibm_api_url=fake_ibm.api_url, poll_interval=0.3,
    )
    email = f"member-{secrets.token_hex(3)}@example.org"
    member_dir = tmp_path / "member"
    member_dir.mkdir()
    _prepare_jupyter_dirs(member_dir)
    member: QJMProcess = start_qjm(
        command="lab", data_dir=member_dir, extra_args=["--LabApp.expose_app_in_browser=True"],
        remote_url=group.url,
        # read by the member's kernels (the client), not by the server: no QJM_URL anywhere
        email=email, password=PASSWORD, config_dir=str(tmp_path / "kernel-config"),
    )
    status = httpx.get(member.api + "status", timeout=10).json()
    assert (status["mode"], status["remote_url"]) == ("member", group.url)
    assert httpx.get(group.api + "status", timeout=10).json()["mode"] == "group"
    assert not (member_dir / "qjm" / "qjm.sqlite3").exists()

    # Sign up and verify through the member's server; the group server mails the link.
    account = create_verified_account(member.url, smtp, email=email, password=PASSWORD,
                                      default_instance=fake_ibm.default_crn)
    api = httpx.Client(base_url=member.api, timeout=20)
    token = api.post("auth/login", json={"email": email, "password": PASSWORD}).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    r = api.patch("me", json={"ibm_quantum_token": fake_ibm.key()}, headers=bearer)
    assert r.status_code == 200, r.text
    fake_ibm.add_job("member-job-1", "Queued", instance=fake_ibm.default_crn)

    # A kernel of the member's Lab: %qjm_login and %qjm_watch reach the group server.
    out = run_in_server_kernel(member, [
        "%load_ext qjm_jupyter",
        "%qjm_login",
        "%qjm_watch 'member-job-1' --on RUNNING,DONE --label remote",
        "from qjm_jupyter import JobManagerClient\nprint(JobManagerClient().server_status()['mode'])",
    ])
    assert out[1].strip() == f"logged in to {member.url} as {account.email}", out
    assert out[2].strip().startswith("watching 1 job"), out
    assert out[3].strip() == "member"
    # The job lives on the group server.
    direct = httpx.get(group.api + "jobs", headers=bearer, timeout=20).json()
    assert [j["job_id"] for j in direct["jobs"]] == ["member-job-1"]

    # The group server's watcher sees the job move and mails it.
    fake_ibm.set_status("member-job-1", "Running")
    fake_ibm.set_status("member-job-1", "Completed")
    done = wait_for_mail(smtp, lambda m: email in str(m["To"]) and "member-job-1" in body_text(m)
                         and "DONE" in (str(m["Subject"]) + body_text(m)).upper(), timeout=60)
    assert done, [m["Subject"] for m in smtp.messages]

    # The group's web UI is served through the member's server too (same page, same CSP).
    page_direct, page_member = httpx.get(group.url + "qjm/", timeout=20), httpx.get(member.url + "qjm/", timeout=20)
    assert page_member.status_code == page_direct.status_code == 200
    assert page_member.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in page_member.headers
    assert "set-cookie" not in page_member.headers

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=HEADLESS_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.goto(f"{member.url}lab?token={member.jupyter_token}", timeout=WAIT_MS)
            tab = page.locator('.jp-SideBar [data-id="qjm-job-panel"]')
            expect(tab).to_be_attached(timeout=WAIT_MS)
            tab.click()
            panel = page.locator("#qjm-job-panel")
            panel.get_by_label("Email").fill(email)
            panel.get_by_label("Password").fill(PASSWORD)
            panel.get_by_role("button", name="Sign in").click()
            rows = panel.locator("tr.qjm-row")
            expect(rows).to_have_count(1, timeout=WAIT_MS)
            expect(rows.first).to_contain_text("member-job-1")
            expect(rows.first).to_contain_text("remote")
            expect(rows.first.locator(".qjm-chip")).to_have_text("Done", timeout=WAIT_MS)
            _shot(page, "remote_member_panel.png")

            # The group server goes away: a JSON 502 at once, and the panel says so.
            group.stop()
            r = httpx.get(member.api + "jobs", headers=bearer, timeout=10)  # 10 s: a hang fails here
            assert r.status_code == 502
            assert r.json()["error"]["code"] == "group_server_unreachable"
            expect(panel.locator(".qjm-banner")).to_contain_text("Group server unreachable", timeout=WAIT_MS)
            _shot(page, "remote_member_group_down.png")
        finally:
            browser.close()
