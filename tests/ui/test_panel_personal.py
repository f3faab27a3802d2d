"""Personal mode in a real JupyterLab through Debian chromium: no qjm sign-in form.

`jupyter lab` with its default identity source (`jupyter`). The browser opens Lab with
Jupyter's token, as a user does; the panel asks only for an address (and optionally the
IBM key), the confirmation link from the real email (aiosmtpd) is opened in the same
browser, and the job table is there with no password anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.process import QJMProcess, free_port, qjm_env
from tests.kernel.conftest import body_text, wait_for_mail
from tests.ui.test_panel import CHROMIUM, HEADLESS_ARGS, WAIT_MS, _prepare_jupyter_dirs, _shot, open_panel

pytestmark = [pytest.mark.ui, pytest.mark.slow]

from playwright.sync_api import expect, sync_playwright  # noqa: E402


@pytest.fixture
def lab(tmp_path, smtp_server) -> Iterator[QJMProcess]:
    data_dir = tmp_path / "lab"
    data_dir.mkdir()
    _prepare_jupyter_dirs(data_dir)
    port = free_port()  # known before start: the emailed links must point at this server
    env = qjm_env(data_dir, ibm_iam_url="http://127.0.0.1:9/", ibm_api_url="http://127.0.0.1:9/",
                  smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_security="none",
                  public_url=f"http://127.0.0.1:{port}/")
    proc = QJMProcess(data_dir=data_dir, env=env, command="lab", port=port,
                      extra_args=["--LabApp.expose_app_in_browser=True"])
    try:
        yield proc.start()
    finally:
        proc.stop()


def test_panel_under_jupyter_identity_asks_only_for_an_address(lab, smtp_server) -> None:
    token = {"Authorization": f"token {lab.jupyter_token}"}
    console_errors: list[str] = []
    email = "lab-owner@example.org"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=HEADLESS_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            panel = open_panel(page, lab)

            # First open: no sign-in form, only the address (and an optional key).
            setup = panel.get_by_role("heading", name="Where should job notices go?")
            expect(setup).to_be_visible(timeout=WAIT_MS)
            expect(panel.get_by_role("heading", name="Sign in to qjm")).to_be_hidden()
            expect(panel.get_by_label("Password")).to_be_hidden()
            expect(panel.locator(".qjm-live")).to_contain_text("Live", timeout=WAIT_MS)
            _shot(page, "panel_personal_first_open.png")
            form = panel.locator("form.qjm-setup")
            form.get_by_label("Email").fill(email)
            form.get_by_role("button", name="Save").click()  # a cookie-authenticated PATCH: Lab sends the XSRF header
            expect(panel.locator(".qjm-banner")).to_contain_text(f"on its way to {email}", timeout=WAIT_MS)

            # The real email's link, opened in the same browser.
            mails = wait_for_mail(smtp_server, lambda m: email in str(m["To"]) and "token=" in body_text(m))
            assert mails, [m["Subject"] for m in smtp_server.messages]
            link = re.search(r"https?://\S+/qjm/verify\?token=[A-Za-z0-9_\-.%]+", body_text(mails[-1]))
            assert link, body_text(mails[-1])
            confirm = page.context.new_page()  # same browser session, Jupyter's cookie and all
            confirm.goto(link.group(0), timeout=WAIT_MS)
            confirm.get_by_role("button", name="Confirm my email address").click()
            expect(confirm.locator("body")).to_contain_text("confirmed", ignore_case=True, timeout=WAIT_MS)
            me = httpx.get(lab.api + "me", headers=token, timeout=20).json()
            assert me["is_verified"] is True and me["email"] == email, me

            # A job registered by this Jupyter user's kernel shows up in the panel.
            r = httpx.post(lab.api + "jobs", json={"job_id": "local-personal-1", "source": "local", "label": "Mine"},
                           headers=token, timeout=20)
            assert r.status_code == 201, r.text
            expect(panel.locator("tr.qjm-row")).to_have_count(1, timeout=WAIT_MS)
            expect(panel.locator("tr.qjm-row")).to_contain_text("Mine")
            page.reload()
            panel = page.locator("#qjm-job-panel")
            expect(panel.locator("tr.qjm-row")).to_have_count(1, timeout=WAIT_MS)
            panel.locator(".qjm-account summary").first.click()
            expect(panel.locator(".qjm-facts")).to_contain_text(email)
            expect(panel.locator(".qjm-facts")).to_contain_text("verified")
            expect(panel.get_by_role("button", name=re.compile("sign out", re.I))).to_have_count(0)
            _shot(page, "panel_personal_confirmed.png")
        finally:
            browser.close()
    assert not [e for e in console_errors if "qjm" in e.lower()], console_errors
