"""The Quantum jobs panel in a real JupyterLab, driven through Debian chromium.

A real `jupyter lab` subprocess with the qjm server extension and the built
labextension; a real account in its SQLite file; jobs registered over the API; status
changes through the kernel-report endpoint. The browser signs in through the panel
like a user and must see the row change and a toast appear without reloading.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.browser import CHROMIUM, HEADLESS_ARGS, REPO, WAIT_MS, require_chromium, shot
from tests.fixtures.process import QJMProcess
from tests.fixtures.server import IBM_KEY_MARKER, ibm_key

pytestmark = [pytest.mark.ui, pytest.mark.slow]

BUILD = REPO / "server_ext" / "qjm_jupyter_server" / "labextension"
PASSWORD = "correct horse battery"

require_chromium()
if not (BUILD / "package.json").exists():
    pytest.skip("labextension not built (cd labextension && jlpm install && jlpm build:prod)", allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402


def _prepare_jupyter_dirs(data_dir: Path) -> None:
    """Silence the news toast; make the built extension visible even without a develop link."""
    labconfig = data_dir / "config" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    installed = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "qjm-jupyter" / "package.json"
    if not installed.exists():
        link = data_dir / "data" / "labextensions" / "qjm-jupyter"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(BUILD, target_is_directory=True)


@pytest.fixture
def lab(start_qjm, tmp_path) -> QJMProcess:
    data_dir = tmp_path / "lab"
    data_dir.mkdir()
    _prepare_jupyter_dirs(data_dir)
    return start_qjm(
        command="lab",
        data_dir=data_dir,
        extra_args=["--LabApp.expose_app_in_browser=True"],
        ibm_iam_url="http://127.0.0.1:9/",
        ibm_api_url="http://127.0.0.1:9/",
        smtp_host="",
        identity_source="accounts",  # the qjm sign-in form (personal mode: test_panel_personal.py)
    )


@pytest.fixture
def http(lab: QJMProcess) -> Iterator[httpx.Client]:
    def no_key(response: httpx.Response) -> None:
        response.read()
        assert IBM_KEY_MARKER.encode() not in response.content, f"IBM key leaked in {response.request.url}"

    with httpx.Client(base_url=lab.api, timeout=20, event_hooks={"response": [no_key]}) as client:
        yield client


@pytest.fixture
def account(lab: QJMProcess, http: httpx.Client) -> dict[str, str]:
    """A registered account with a verified email, an IBM key set, and its bearer headers."""
    email = "ada@example.org"
    r = http.post("auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 202, r.text
    db = lab.data_dir / "qjm" / "qjm.sqlite3"
    with sqlite3.connect(db, timeout=20) as conn:
        assert conn.execute("UPDATE users SET is_verified = 1 WHERE email = ?", (email,)).rowcount == 1
    r = http.post("auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    key = ibm_key("ab12cd34ef561234")
    r = http.patch("me", json={"ibm_quantum_token": key}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["ibm_key"]["last4"] == "1234"
    return {"email": email, "key": key, **headers}


def _headers(account: dict[str, str]) -> dict[str, str]:
    return {"Authorization": account["Authorization"]}


@pytest.fixture
def jobs(http: httpx.Client, account: dict[str, str]) -> dict[str, str]:
    """Three local jobs; returns label -> our job id."""
    body = {
        "jobs": [
            {"job_id": "local-bell-0001", "backend": "aer_simulator", "label": "Bell state", "source": "local",
             "notify_status": ["RUNNING", "DONE", "ERROR"]},
            {"job_id": "local-ghz-0002", "backend": "aer_simulator", "label": "GHZ sweep", "source": "local"},
            {"job_id": "local-vqe-0003", "backend": "aer_simulator", "label": "VQE H2", "source": "local",
             "notify_status": []},
        ]
    }
    r = http.post("jobs", json=body, headers=_headers(account))
    assert r.status_code == 201, r.text
    return {j["label"]: j["id"] for j in r.json()["jobs"]}


def _report(http: httpx.Client, account: dict[str, str], job_id: str, status: str, reason: str | None = None) -> None:
    payload = {"status": status} | ({"reason": reason} if reason else {})
    r = http.post(f"jobs/{job_id}/status", json=payload, headers=_headers(account))
    assert r.status_code == 200, r.text


def open_panel(page: Page, lab: QJMProcess):  # noqa: ANN201 - a Playwright Locator
    """Load Lab, wait for the qjm plugin, open the Quantum jobs panel from its side-bar tab."""
    page.goto(f"{lab.url}lab?token={lab.jupyter_token}", timeout=WAIT_MS)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('qjm:open-panel')",
                           timeout=WAIT_MS)
    page.locator('.jp-SideBar [data-id="qjm-job-panel"]').click()
    panel = page.locator("#qjm-job-panel")
    expect(panel).to_be_visible()
    return panel


def _shot(page: Page, name: str) -> None:
    shot(page, name)


def _row(page: Page, job_id: str):
    return page.locator(f'#qjm-job-panel tr[data-job="{job_id}"]')


def test_panel_sign_in_live_updates_toasts_and_themes(lab, http, account, jobs) -> None:
    console_errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=HEADLESS_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{lab.url}lab?token={lab.jupyter_token}", timeout=WAIT_MS)

            # The side-bar tab exists and opens the panel.
            commands = ["qjm:open-panel", "qjm:sign-in", "qjm:sign-out", "qjm:refresh"]
            page.wait_for_function(
                "(ids) => window.jupyterapp && ids.every(id => window.jupyterapp.commands.hasCommand(id))",
                arg=commands, timeout=WAIT_MS,
            )
            tab = page.locator('.jp-SideBar [data-id="qjm-job-panel"]')
            expect(tab).to_be_attached(timeout=WAIT_MS)
            tab.click()
            panel = page.locator("#qjm-job-panel")
            expect(panel).to_be_visible()

            # Sign up and ask for a password reset from the panel.
            expect(panel.get_by_role("heading", name="Sign in to qjm")).to_be_visible()
            panel.get_by_role("button", name="Create an account").click()
            expect(panel.get_by_role("heading", name="Create a qjm account")).to_be_visible()
            panel.get_by_label("Email").fill("bob@example.org")
            panel.get_by_label("Password").fill(PASSWORD)
            _shot(page, "panel_sign_up.png")
            panel.get_by_role("button", name="Create account").click()
            expect(panel.locator("#qjm-signin-info")).to_contain_text("Account created", timeout=WAIT_MS)
            with sqlite3.connect(lab.data_dir / "qjm" / "qjm.sqlite3", timeout=20) as conn:
                assert conn.execute("SELECT COUNT(*) FROM users WHERE email = 'bob@example.org'").fetchone() == (1,)
            panel.get_by_role("button", name="Forgot password?").click()
            expect(panel.get_by_role("heading", name="Reset your password")).to_be_visible()
            expect(panel.locator("#qjm-password")).to_have_count(0)
            panel.get_by_label("Email").fill(account["email"])
            panel.get_by_role("button", name="Email me a reset link").click()
            expect(panel.locator("#qjm-signin-info")).to_contain_text("a link to choose a new password", timeout=WAIT_MS)

            # Sign in through the form (labels are real labels: find inputs by them).
            expect(panel.get_by_role("heading", name="Sign in to qjm")).to_be_visible()
            panel.get_by_label("Email").fill(account["email"])
            panel.get_by_label("Password").fill("wrong password")
            panel.get_by_role("button", name="Sign in").click()
            expect(panel.locator("#qjm-signin-error")).to_contain_text("Wrong email or password")
            panel.get_by_label("Password").fill(PASSWORD)
            panel.get_by_label("Password").press("Enter")

            # The job table.
            expect(panel.locator("tr.qjm-row")).to_have_count(3, timeout=WAIT_MS)
            bell = _row(page, jobs["Bell state"])
            expect(bell).to_contain_text("Bell state")
            expect(bell).to_contain_text("local-bell-0001")
            expect(bell).to_contain_text("aer_simulator")
            expect(bell.locator(".qjm-chip")).to_have_text("Initializing")
            expect(_row(page, jobs["VQE H2"])).to_contain_text("Not watched")
            expect(panel.locator(".qjm-live")).to_contain_text("Live", timeout=WAIT_MS)

            # Account: verified, key shown only by its last four characters.
            panel.locator(".qjm-account summary").first.click()
            expect(panel.locator(".qjm-facts")).to_contain_text("verified")
            expect(panel.locator(".qjm-key-summary")).to_have_text("set, ends with …1234")
            assert account["key"] not in page.content()
            _shot(page, "panel_light.png")

            # Live: the kernel reports RUNNING then DONE; the row follows and toasts appear.
            _report(http, account, jobs["Bell state"], "RUNNING")
            expect(bell.locator(".qjm-chip")).to_have_text("Running", timeout=WAIT_MS)
            toast = page.locator(".Toastify__toast").filter(has_text="Bell state")
            expect(toast.filter(has_text="is running")).to_be_visible(timeout=WAIT_MS)
            _report(http, account, jobs["Bell state"], "DONE")
            expect(bell.locator(".qjm-chip")).to_have_text("Done", timeout=WAIT_MS)
            expect(toast.filter(has_text="is done")).to_be_visible(timeout=WAIT_MS)
            expect(bell).to_have_attribute("data-status", "DONE")
            page.wait_for_timeout(800)  # let the toast finish sliding in before the picture (not an assertion)
            _shot(page, "panel_light_toast.png")

            # A job the user does not watch changes silently.
            _report(http, account, jobs["VQE H2"], "ERROR", reason="Qubit index out of range")
            vqe = _row(page, jobs["VQE H2"])
            expect(vqe.locator(".qjm-chip")).to_have_text("Error", timeout=WAIT_MS)
            expect(vqe).to_contain_text("Qubit index out of range")
            expect(page.locator(".Toastify__toast").filter(has_text="VQE H2")).to_have_count(0)

            # The delivery log loads when opened.
            panel.get_by_text("Email delivery log").click()
            expect(panel.locator(".qjm-log-body")).not_to_have_text("Loading…", timeout=WAIT_MS)
            expect(panel.locator(".qjm-log-body .qjm-form-error")).to_have_count(0)
            expect(panel.locator('.qjm-log-item[data-kind="reset"]')).to_contain_text("Reset your password")

            # Filter by status and search by label.
            panel.locator('.qjm-filter[data-status="DONE"]').click()
            expect(panel.locator("tr.qjm-row")).to_have_count(1)
            panel.locator('.qjm-filter[data-status="DONE"]').click()
            panel.get_by_label("Search jobs by label, job id or backend").fill("ghz")
            expect(panel.locator("tr.qjm-row")).to_have_count(1)
            expect(panel.locator("tr.qjm-row")).to_contain_text("GHZ sweep")
            panel.get_by_label("Search jobs by label, job id or backend").fill("")

            # Per-row notices: GHZ sweep -> only RUNNING, saved on the server.
            ghz = _row(page, jobs["GHZ sweep"])
            ghz.get_by_role("button", name="Choose notices for local-ghz-0002").click()
            for status, wanted in (("Running", True), ("Done", False), ("Error", False), ("Cancelled", False)):
                box = ghz.get_by_label(status, exact=True)
                box.set_checked(wanted)
            _shot(page, "panel_light_notify_editor.png")
            ghz.get_by_role("button", name="Save").click()
            expect(ghz.locator(".qjm-notify")).to_have_text("Running")
            r = http.get(f"jobs/{jobs['GHZ sweep']}", headers=_headers(account))
            assert r.json()["notify_status"] == ["RUNNING"]

            # Reload: still signed in for this tab, and the panel is restored open.
            page.reload()
            expect(page.locator("#qjm-job-panel")).to_be_visible(timeout=WAIT_MS)
            expect(page.locator("#qjm-job-panel tr.qjm-row")).to_have_count(3, timeout=WAIT_MS)
            expect(_row(page, jobs["Bell state"]).locator(".qjm-chip")).to_have_text("Done")
            assert not [k for k in page.evaluate("() => Object.keys(window.localStorage)") if "qjm" in k]

            # An emailed link opened in a new tab of this Lab: signed in already (a live tab
            # shares its session), the panel open at the job, the parameter gone from the address.
            linked = context.new_page()
            linked.goto(f"{lab.url}lab?qjm-job={jobs['GHZ sweep']}&token={lab.jupyter_token}", timeout=WAIT_MS)
            lpanel = linked.locator("#qjm-job-panel")
            # The linked row flashes (for 2.5 s) once the list is there.
            linked.wait_for_selector(f'#qjm-job-panel tr.qjm-row-flash[data-job="{jobs["GHZ sweep"]}"]', timeout=WAIT_MS)
            expect(lpanel).to_be_visible(timeout=WAIT_MS)
            expect(lpanel.locator("tr.qjm-row")).to_have_count(3, timeout=WAIT_MS)
            expect(lpanel.get_by_role("heading", name="Sign in to qjm")).to_be_hidden()
            expect(linked).not_to_have_url(re.compile("qjm-job"), timeout=WAIT_MS)
            _shot(linked, "panel_deep_link_new_tab.png")
            linked.close()

            # An email's "Manage notifications" link opens the notification settings.
            linked = context.new_page()
            linked.goto(f"{lab.url}lab?qjm-notifications=1&token={lab.jupyter_token}", timeout=WAIT_MS)
            expect(linked.locator("#qjm-job-panel .qjm-notifications-details")).to_have_attribute("open", "", timeout=WAIT_MS)
            expect(linked).not_to_have_url(re.compile("qjm-notifications"), timeout=WAIT_MS)
            linked.close()

            # A job deleted elsewhere (a kernel's delete_job, another tab) leaves the panel at its next poll.
            r = http.delete(f"jobs/{jobs['VQE H2']}", headers=_headers(account))
            assert r.status_code == 204, r.text
            expect(_row(page, jobs["VQE H2"])).to_have_count(0, timeout=WAIT_MS)
            expect(page.locator("#qjm-job-panel tr.qjm-row")).to_have_count(2)
            expect(_row(page, jobs["Bell state"])).to_be_visible()

            # Dark theme.
            page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
            expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false", timeout=WAIT_MS)
            page.locator("#qjm-job-panel .qjm-account summary").first.click()
            page.wait_for_timeout(500)  # let the theme's transition settle before the picture (not an assertion)
            _shot(page, "panel_dark.png")

            # A wide panel shows real table columns (container query); drag the splitter.
            handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:not(.lm-mod-hidden)").first
            box = handle.bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 300)
            page.mouse.down()
            page.mouse.move(box["x"] + 520, box["y"] + 300, steps=8)
            page.mouse.up()
            expect(page.locator("#qjm-job-panel thead")).to_be_visible()
            _shot(page, "panel_dark_wide.png")

            # Signing out everywhere (another tab, the CLI) sends this tab back to sign-in at its next poll.
            r = http.post("auth/logout-all", headers=_headers(account))
            assert r.status_code == 204, r.text
            panel = page.locator("#qjm-job-panel")
            expect(panel.get_by_role("heading", name="Sign in to qjm")).to_be_visible(timeout=WAIT_MS)
            expect(panel.locator(".qjm-banner")).to_contain_text("Sign in again")
            _shot(page, "panel_dark_signed_out.png")
        finally:
            browser.close()
    assert not [e for e in console_errors if "qjm" in e.lower()], console_errors
