"""Notification settings and "Cancel job" in the web UI of a real `jupyter qjm`, through Debian chromium.

A channel pointing at a real JSON-webhook receiver on 127.0.0.1 (the operator allows that
host, as `channel_allowed_hosts` does in tests/notify/test_channels.py) is added in the
browser, sent a test that the receiver gets and the channel's delivery log shows; a URL
the SSRF guard refuses shows the server's error by the URL field. Time zone, quiet hours
and digest are saved and read back over the API. An IBM job (the fake IBM API) is
cancelled from the job list and another from its page; a local job whose kernel still
checks in is cancelled through it, and one whose kernel is gone says so. The page is checked at phone width and by keyboard.
"""

from __future__ import annotations

import sqlite3
import time

import httpx
import pytest

from tests.fixtures.browser import CHROMIUM, HEADLESS_ARGS, WAIT_MS, require_chromium, shot

pytestmark = [pytest.mark.ui, pytest.mark.slow]
require_chromium()

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

PASSWORD = "correct horse battery"
ADA = "ada@example.org"
WIDER_THAN_SCREEN = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
  .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


def _fits_phone(page: Page) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375, page.evaluate(WIDER_THAN_SCREEN)


def verified_account(srv, api: httpx.Client, email: str = ADA) -> dict[str, str]:  # noqa: ANN001
    """Register, mark verified in the server's SQLite file, sign in: bearer headers."""
    assert api.post("auth/register", json={"email": email, "password": PASSWORD}).status_code == 202
    with sqlite3.connect(srv.data_dir / "qjm" / "qjm.sqlite3", timeout=20) as conn:
        assert conn.execute("UPDATE users SET is_verified = 1 WHERE email = ?", (email,)).rowcount == 1
    r = api.post("auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def wait_for(predicate, what: str, timeout: float = 30) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def server(start_qjm, smtp_server, fake_ibm):  # noqa: ANN001, ANN201
    return start_qjm(
        command="qjm", **smtp_server.settings(), ibm_iam_url=fake_ibm.base, ibm_api_url=fake_ibm.api_url,
        channel_allowed_hosts="127.0.0.1",
    )


def test_web_ui_channels_preferences_cancel(server, fake_ibm, receiver) -> None:  # noqa: ANN001
    app_url = f"{server.url}qjm/"
    problems: list[str] = []
    api = httpx.Client(base_url=server.api, timeout=20)
    me = verified_account(server, api)
    assert api.patch("me", headers=me, json={"ibm_quantum_token": fake_ibm.key(),
                                              "default_instance": fake_ibm.default_crn}).status_code == 200
    fake_ibm.add_job("ibm-queued-0001", "Queued")
    fake_ibm.add_job("ibm-running-0002", "Running")
    for job_id, label in (("ibm-queued-0001", "Queued sweep"), ("ibm-running-0002", "Running VQE")):
        r = api.post("jobs", headers=me, json={"job_id": job_id, "label": label})
        assert r.status_code == 201, r.text
    for job_id, label in (("local-orphan-0003", "Orphan"), ("local-live-0004", "Live Aer run")):
        r = api.post("jobs", headers=me, json={"job_id": job_id, "source": "local", "label": label})
        assert r.status_code == 201, r.text
    jobs = {j["job_id"]: j["id"] for j in api.get("jobs", headers=me).json()["jobs"]}

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=HEADLESS_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Zurich",
                                          permissions=["notifications"])  # what a click on "allow" would give
            page = context.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(app_url, timeout=WAIT_MS)
            page.get_by_label("Email").fill(ADA)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in", exact=True).click()
            rows = page.locator("tr.qjm-row")
            expect(rows).to_have_count(4, timeout=WAIT_MS)

            # -- cancel an IBM job from the list: confirm, IBM cancels, the row says so ----------
            queued = page.locator(f'tr[data-job="{jobs["ibm-queued-0001"]}"]')
            queued.get_by_role("button", name="Cancel job ibm-queued-0001").click()
            dialog = page.get_by_role("dialog")
            expect(dialog).to_contain_text("Cancel this job on IBM Quantum?")
            dialog.get_by_role("button", name="Cancel", exact=True).click()  # changed my mind: nothing sent
            assert not [c for c in fake_ibm.calls if c.path.endswith("/ibm-queued-0001/cancel")]
            queued.get_by_role("button", name="Cancel job ibm-queued-0001").click()
            page.get_by_role("dialog").get_by_role("button", name="Cancel job").click()
            expect(queued.locator(".qjm-cell-status .qjm-chip")).to_have_text("Cancelled", timeout=WAIT_MS)
            expect(page.locator(".qjm-banner")).to_contain_text("ibm-queued-0001: cancelled on IBM Quantum")
            expect(queued.get_by_role("button", name="Cancel job ibm-queued-0001")).to_have_count(0)
            assert fake_ibm.jobs["ibm-queued-0001"].data["status"] == "Cancelled"
            assert api.get(f"jobs/{jobs['ibm-queued-0001']}", headers=me).json()["status"] == "CANCELLED"
            shot(page, "webui_cancel_list.png")

            # A local job whose kernel is gone: the server's 409 is shown, nothing changes.
            orphan = page.locator(f'tr[data-job="{jobs["local-orphan-0003"]}"]')
            orphan.get_by_role("button", name="Cancel job local-orphan-0003").click()
            expect(page.get_by_role("dialog")).to_contain_text("Cancel this local job?")
            page.get_by_role("dialog").get_by_role("button", name="Cancel job").click()
            expect(page.locator(".qjm-banner")).to_contain_text("the kernel that runs this job is gone", timeout=WAIT_MS)
            expect(orphan.locator(".qjm-cell-status .qjm-chip")).to_have_text("Initializing")

            # A local job whose kernel still checks in: the request reaches the kernel, which cancels it.
            checkin = api.post("jobs/local/checkin", headers=me, json={"job_ids": ["local-live-0004"]})
            assert checkin.status_code == 200 and checkin.json()["cancel"] == [], checkin.text
            live = page.locator(f'tr[data-job="{jobs["local-live-0004"]}"]')
            live.get_by_role("button", name="Cancel job local-live-0004").click()
            page.get_by_role("dialog").get_by_role("button", name="Cancel job").click()
            expect(page.locator(".qjm-banner")).to_contain_text("the kernel running this job will cancel it", timeout=WAIT_MS)
            expect(live.locator(".qjm-cancel-pending")).to_have_text("cancel requested")
            expect(live.get_by_role("button", name="Cancel job local-live-0004")).to_have_count(0)
            checkin = api.post("jobs/local/checkin", headers=me, json={"job_ids": ["local-live-0004"]})
            assert checkin.json()["cancel"] == ["local-live-0004"], checkin.text  # the kernel hears of it
            r = api.post(f"jobs/{jobs['local-live-0004']}/status", headers=me, json={"status": "CANCELLED"})
            assert r.status_code == 200, r.text
            expect(live.locator(".qjm-cell-status .qjm-chip")).to_have_text("Cancelled", timeout=WAIT_MS)
            expect(live.locator(".qjm-cancel-pending")).to_have_count(0)

            # From a job's page, by keyboard.
            page.goto(f"{app_url}jobs/{jobs['ibm-running-0002']}")
            expect(page.get_by_role("heading", name="Running VQE")).to_be_visible(timeout=WAIT_MS)
            page.get_by_role("button", name="Cancel job").focus()
            page.keyboard.press("Enter")
            expect(page.get_by_role("dialog")).to_be_visible()
            page.keyboard.press("Tab")  # from the dialog's Cancel to its "Cancel job"
            page.keyboard.press("Enter")
            expect(page.locator(".qjm-job-head .qjm-chip")).to_have_text("Cancelled", timeout=WAIT_MS)
            expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
            expect(page.locator(".qjm-timeline-item").last).to_have_attribute("data-status", "CANCELLED")
            shot(page, "webui_cancel_job_page.png")

            # -- the notifications page --------------------------------------------------------------
            page.get_by_role("link", name="Notifications").click()
            expect(page).to_have_url(f"{app_url}notifications")
            expect(page.get_by_role("heading", name="Notifications", exact=True)).to_be_visible()
            expect(page.locator(".qjm-channels-empty")).to_be_visible(timeout=WAIT_MS)

            # A URL the SSRF guard refuses: the server's error, by the URL field.
            url_field = page.get_by_label("Apprise URL")
            url_field.fill("jsons://169.254.169.254/latest/meta-data")
            url_field.press("Enter")  # the keyboard submits the form
            url_error = page.locator("#qjm-channel-url-error")
            expect(url_error).not_to_be_empty(timeout=WAIT_MS)
            assert url_field.get_attribute("aria-invalid") == "true"
            expect(url_field).to_be_focused()
            shot(page, "webui_channel_refused.png")
            assert api.get("channels", headers=me).json()["channels"] == []

            # A real JSON webhook on this machine (the operator allowed 127.0.0.1).
            secret = "sekrit-hook-token-42"
            url_field.fill(f"json://{receiver.base}/hook?+X-Token={secret}")
            page.get_by_label("Name (optional)").fill("lab chat")
            form = page.locator(".qjm-channel-form")
            for status in ("Running", "Done", "Error"):
                form.get_by_label(status, exact=True).check()
            page.get_by_role("button", name="Add channel").click()
            item = page.locator("li.qjm-channel")
            expect(item).to_have_count(1, timeout=WAIT_MS)
            expect(url_error).to_be_empty()
            expect(item.locator(".qjm-channel-target")).to_have_text("json://127.0.0.1")
            expect(item).to_contain_text("Running · Done · Error")
            assert secret not in page.content()
            [channel] = api.get("channels", headers=me).json()["channels"]
            assert (channel["label"], channel["notify_status"]) == ("lab chat", ["RUNNING", "DONE", "ERROR"])

            # Send test: the receiver gets it, the result and the delivery log say so.
            item.get_by_role("button", name="Send a test to lab chat").focus()
            page.keyboard.press("Enter")
            expect(item.locator(".qjm-channel-result")).to_have_text("Test delivered.", timeout=WAIT_MS)
            wait_for(lambda: len(receiver.bodies("/hook")) == 1, "the test at the receiver")
            [received] = [r for r in receiver.requests if r.path.startswith("/hook")]
            assert received.headers.get("X-Token") == secret
            log = item.locator(".qjm-log-item")
            expect(log).to_have_count(1, timeout=WAIT_MS)
            expect(log.first).to_have_attribute("data-state", "sent")
            expect(log.first).to_have_attribute("data-kind", "test")

            # Statuses and the on/off switch, saved on the server.
            item.get_by_role("button", name="Choose statuses for lab chat").click()
            item.get_by_label("Running", exact=True).uncheck()
            item.get_by_role("button", name="Save statuses").click()
            expect(item.locator(".qjm-channel-statuses")).to_have_text("Notify on: Done · Error", timeout=WAIT_MS)
            item.get_by_role("button", name="Turn off lab chat").click()
            expect(item).to_have_attribute("data-enabled", "false", timeout=WAIT_MS)
            [channel] = api.get("channels", headers=me).json()["channels"]
            assert (channel["enabled"], channel["notify_status"]) == (False, ["DONE", "ERROR"])
            item.get_by_role("button", name="Turn on lab chat").click()
            expect(item).to_have_attribute("data-enabled", "true", timeout=WAIT_MS)

            # -- when email arrives: the browser's zone is suggested; quiet hours; digest --------
            tz = page.get_by_label("Time zone")
            expect(tz).to_have_value("Europe/Zurich")  # from the browser (Intl), the server has UTC
            expect(page.locator("#qjm-pref-tz-hint")).to_contain_text("Suggested from this browser")
            page.get_by_label("Hold job email during quiet hours, then send one summary").check()
            page.get_by_label("From", exact=True).fill("22:30")
            page.get_by_label("Until", exact=True).fill("07:15")
            page.get_by_label("Errors still arrive at once").check()
            page.get_by_label("One summary every").check()
            page.get_by_label("Minutes between summaries").fill("0")
            page.get_by_role("button", name="Save email timing").click()
            expect(page.locator("#qjm-pref-digest_minutes-error")).to_contain_text("1 to 1439")
            page.get_by_label("Minutes between summaries").fill("30")
            page.get_by_role("button", name="Save email timing").click()
            expect(page.locator(".qjm-banner")).to_contain_text("Email timing saved", timeout=WAIT_MS)
            prefs = api.get("notifications/preferences", headers=me).json()
            assert (prefs["time_zone"], prefs["quiet_start"], prefs["quiet_end"], prefs["quiet_breakthrough"],
                    prefs["digest_minutes"]) == ("Europe/Zurich", "22:30", "07:15", ["ERROR"], 30)
            expect(page.locator(".qjm-prefs-summary")).to_contain_text("every 30 min; quiet 22:30–07:15 Europe/Zurich")
            # A zone the server does not know: its 4xx by the zone field.
            tz.fill("Mars/Olympus_Mons")
            page.get_by_role("button", name="Save email timing").click()
            expect(page.locator("#qjm-pref-time_zone-error")).not_to_be_empty(timeout=WAIT_MS)
            assert api.get("notifications/preferences", headers=me).json()["time_zone"] == "Europe/Zurich"
            page.reload()
            expect(page.get_by_label("Time zone")).to_have_value("Europe/Zurich", timeout=WAIT_MS)
            expect(page.get_by_label("One summary a day")).not_to_be_checked()
            page.get_by_label("One summary a day").check()
            page.get_by_label("Hold job email during quiet hours, then send one summary").uncheck()
            page.get_by_role("button", name="Save email timing").click()
            expect(page.locator(".qjm-banner")).to_contain_text("Email timing saved", timeout=WAIT_MS)
            prefs = api.get("notifications/preferences", headers=me).json()
            assert (prefs["quiet_start"], prefs["quiet_end"], prefs["digest_minutes"]) == (None, None, 1440)

            # The desktop switch asks the browser only when clicked.
            expect(page.locator(".qjm-desktop-state")).to_contain_text("Off")
            page.get_by_role("button", name="Turn on desktop notifications").focus()
            page.keyboard.press("Enter")
            expect(page.locator(".qjm-desktop-state")).to_contain_text("On:", timeout=WAIT_MS)
            expect(page.get_by_role("button", name="Turn off desktop notifications")).to_be_visible()
            shot(page, "webui_notifications.png", full_page=True)

            # Delete the channel (confirmed).
            item = page.locator("li.qjm-channel")
            item.get_by_role("button", name="Delete lab chat").click()
            page.get_by_role("dialog").get_by_role("button", name="Delete channel").click()
            expect(item).to_have_count(0, timeout=WAIT_MS)
            assert api.get("channels", headers=me).json()["channels"] == []

            # -- phone width: nothing sideways ------------------------------------------------------
            assert api.post("channels", headers=me, json={
                "url": f"json://{receiver.base}/a-rather-long/path/for/a/webhook?+X-Token={secret}",
                "label": "a channel with a rather long name for a phone screen"}).status_code == 201
            phone_ctx = browser.new_context(viewport={"width": 375, "height": 740}, device_scale_factor=2,
                                            is_mobile=True, has_touch=True)
            phone = phone_ctx.new_page()
            phone.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            phone.goto(f"{app_url}notifications")
            phone.get_by_label("Email").fill(ADA)
            phone.get_by_label("Password").fill(PASSWORD)
            phone.get_by_role("button", name="Sign in", exact=True).click()
            expect(phone.locator("li.qjm-channel")).to_have_count(1, timeout=WAIT_MS)
            expect(phone.get_by_label("Time zone")).to_be_visible()
            _fits_phone(phone)
            shot(phone, "webui_phone_notifications.png", full_page=True)
            phone.goto(app_url)
            expect(phone.locator("tr.qjm-row")).to_have_count(4, timeout=WAIT_MS)
            _fits_phone(phone)
            shot(phone, "webui_phone_jobs_cancel.png", full_page=True)
            phone_ctx.close()
        finally:
            browser.close()
    assert [m for m in problems if "Content Security Policy" in m] == []
    assert [m for m in problems if "qjm" in m.lower() or "Uncaught" in m] == [], problems
