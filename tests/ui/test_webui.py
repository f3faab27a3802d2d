"""The qjm web UI on a real `jupyter qjm` (no JupyterLab), driven through Debian chromium.

A member signs up in the browser, follows the emailed link (aiosmtpd), signs in, and
watches jobs change live while a "kernel" reports status over the API; opens a job's
page and its timeline; edits the account. An administrator manages users. The same UI
is checked at phone width (375 px) and with the keyboard alone, and the page runs under
its strict CSP without a violation.
"""

from __future__ import annotations

import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.fixtures.browser import ARTIFACTS, CHROMIUM, HEADLESS_ARGS, WAIT_MS, require_chromium, shot
from tests.fixtures.server import IBM_KEY_MARKER, ibm_key

pytestmark = [pytest.mark.ui, pytest.mark.slow]
require_chromium()

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

PASSWORD = "correct horse battery"
ADA = "ada@example.org"
ADMIN = "root@example.org"


def _mail_link(smtp, to: str, subject: str, path: str) -> str:  # noqa: ANN001
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for msg in smtp.messages:
            if to in str(msg["To"]) and subject in str(msg["Subject"]):
                text = str(msg.get_body(preferencelist=("plain",)).get_content())
                return next(u for u in re.findall(r"https?://\S+", text) if path in u)
        time.sleep(0.1)
    pytest.fail(f"no {subject!r} mail for {to}")


@pytest.fixture
def group_server(start_qjm, smtp_server):  # noqa: ANN001, ANN201
    return start_qjm(
        command="qjm", **smtp_server.settings(), admin_emails=ADMIN,
        ibm_iam_url="http://127.0.0.1:9/", ibm_api_url="http://127.0.0.1:9/",
    )


def _verified_login(api: httpx.Client, smtp, email: str) -> dict[str, str]:  # noqa: ANN001
    r = api.post("auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 202, r.text
    link = _mail_link(smtp, email, "Confirm your email", "/qjm/verify?")
    assert api.post("auth/verify/confirm", json={"token": parse_qs(urlsplit(link).query)["token"][0]}).status_code == 200
    r = api.post("auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _login_token(api: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, str]:
    r = api.post("auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


WIDER_THAN_SCREEN = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
  .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


def _fits_phone(page: Page) -> None:
    """Nothing wider than the 375 px screen: no sideways scrolling on a phone."""
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375, page.evaluate(WIDER_THAN_SCREEN)


def _sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_web_ui_sign_up_mail_link_live_jobs_account_admin_phone_keyboard(group_server, smtp_server) -> None:
    srv = group_server
    app_url = f"{srv.url}qjm/"
    problems: list[str] = []

    def no_key(response: httpx.Response) -> None:
        response.read()
        assert IBM_KEY_MARKER.encode() not in response.content, f"IBM key leaked in {response.request.url}"

    api = httpx.Client(base_url=srv.api, timeout=20, event_hooks={"response": [no_key]})
    timings: dict[str, float] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=HEADLESS_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            page = context.new_page()
            watch = lambda pg: pg.on(  # noqa: E731
                "console", lambda m: problems.append(m.text) if m.type == "error" else None
            )
            watch(page)
            page.on("pageerror", lambda e: problems.append(str(e)))

            # -- first load: the shell, the bundle, the sign-in form ----------------------------
            t0 = time.monotonic()
            response = page.goto(app_url, timeout=WAIT_MS)
            assert response is not None and response.status == 200
            csp = response.headers["content-security-policy"]
            assert "script-src 'nonce-" in csp and "default-src 'none'" in csp and "'unsafe-inline'" not in csp
            assert response.headers["referrer-policy"] == "no-referrer"
            expect(page.get_by_role("heading", name="Sign in to qjm")).to_be_visible(timeout=WAIT_MS)
            timings["first_load_to_sign_in_form_ms"] = round((time.monotonic() - t0) * 1000, 1)
            nav = page.evaluate("() => JSON.stringify(performance.getEntriesByType('navigation')[0].toJSON())")
            timings["navigation_load_event_end_ms"] = round(json.loads(nav)["loadEventEnd"], 1)
            shot(page, "webui_sign_in.png")

            # -- sign up in the browser, follow the emailed link ---------------------------------
            page.get_by_role("button", name="Create an account").click()
            expect(page).to_have_url(f"{app_url}sign-up")
            expect(page.get_by_role("heading", name="Create a qjm account")).to_be_visible()
            page.get_by_label("Email").fill(ADA)
            page.get_by_label("Password").fill("short")
            page.get_by_role("button", name="Create account").click()
            expect(page.locator("#qjm-signin-error")).to_contain_text("password")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Create account").click()
            expect(page.locator("#qjm-signin-info")).to_contain_text("Account created", timeout=WAIT_MS)
            expect(page).to_have_url(f"{app_url}sign-in")
            link = _mail_link(smtp_server, ADA, "Confirm your email", "/qjm/verify?")
            assert link.startswith(srv.url)
            verify = context.new_page()
            watch(verify)
            verify.goto(link)
            verify.get_by_role("button", name="Confirm my email address").click()
            expect(verify.locator("#result")).to_contain_text("is confirmed", timeout=WAIT_MS)
            verify.get_by_role("link", name="Sign in to qjm").click()  # from the page to the web UI
            expect(verify).to_have_url(f"{app_url}sign-in")
            expect(verify.get_by_role("heading", name="Sign in to qjm")).to_be_visible(timeout=WAIT_MS)
            verify.close()

            # -- sign in; jobs registered and changed by a "kernel" appear live -----------------------
            _sign_in(page, ADA, "wrong password")
            expect(page.locator("#qjm-signin-error")).to_contain_text("Wrong email or password", timeout=WAIT_MS)
            _sign_in(page, ADA)
            expect(page.get_by_role("heading", name="Your quantum jobs")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_text("No jobs yet")).to_be_visible(timeout=WAIT_MS)
            assert page.evaluate("() => Object.keys(window.localStorage)") == []
            kernel = _login_token(api, ADA)
            r = api.post("jobs", headers=kernel, json={"jobs": [
                {"job_id": "local-bell-0001", "backend": "aer_simulator", "label": "Bell state", "source": "local",
                 "notify_status": ["RUNNING", "DONE"], "group": "sweep-7"},
                {"job_id": "local-ghz-0002", "backend": "aer_simulator", "label": "GHZ sweep", "source": "local"},
            ]})
            assert r.status_code == 201, r.text
            ids = {j["label"]: j["id"] for j in r.json()["jobs"]}
            rows = page.locator("tr.qjm-row")
            expect(rows).to_have_count(2, timeout=WAIT_MS)
            bell = page.locator(f'tr[data-job="{ids["Bell state"]}"]')
            expect(bell.locator(".qjm-cell-status .qjm-chip")).to_have_text("Initializing")
            assert api.post(f"jobs/{ids['Bell state']}/status", headers=kernel, json={"status": "RUNNING"}).status_code == 200
            expect(bell.locator(".qjm-cell-status .qjm-chip")).to_have_text("Running", timeout=WAIT_MS)
            expect(page.locator(".qjm-banner")).to_contain_text("is running", timeout=WAIT_MS)
            expect(page.locator(".qjm-live")).to_contain_text("Live")
            shot(page, "webui_jobs.png")

            # Search, filter, notify editor (saved on the server).
            page.get_by_label("Search jobs by label, job id or backend").fill("ghz")
            expect(rows).to_have_count(1)
            page.get_by_label("Search jobs by label, job id or backend").fill("")
            page.locator('.qjm-filter[data-status="RUNNING"]').click()
            expect(rows).to_have_count(1)
            page.locator('.qjm-filter[data-status="RUNNING"]').click()
            ghz = page.locator(f'tr[data-job="{ids["GHZ sweep"]}"]')
            ghz.get_by_role("button", name="Choose notices for local-ghz-0002").click()
            for status, wanted in (("Running", True), ("Done", False), ("Error", False), ("Cancelled", False)):
                ghz.get_by_label(status, exact=True).set_checked(wanted)
            ghz.get_by_role("button", name="Save").click()
            expect(ghz.locator(".qjm-notify")).to_have_text("Running")
            assert api.get(f"jobs/{ids['GHZ sweep']}", headers=kernel).json()["notify_status"] == ["RUNNING"]

            # -- a job's page: facts and a timeline that grows live ---------------------------------
            bell.get_by_role("link", name="Bell state").click()
            expect(page).to_have_url(f"{app_url}jobs/{ids['Bell state']}")
            expect(page.get_by_role("heading", name="Bell state")).to_be_visible()
            timeline = page.locator(".qjm-timeline-item")
            history = api.get(f"jobs/{ids['Bell state']}", headers=kernel).json()["history"]
            assert [e["status"] for e in history][-1] == "RUNNING"
            expect(timeline).to_have_count(len(history))
            assert api.post(f"jobs/{ids['Bell state']}/status", headers=kernel, json={"status": "DONE"}).status_code == 200
            expect(timeline).to_have_count(len(history) + 1, timeout=WAIT_MS)
            expect(timeline.last).to_have_attribute("data-status", "DONE")
            expect(page.locator(".qjm-job-head .qjm-chip")).to_have_text("Done")
            expect(page.locator(".qjm-job-facts")).to_contain_text("sweep-7")
            shot(page, "webui_job.png")
            page.go_back()
            expect(page.get_by_role("heading", name="Your quantum jobs")).to_be_visible()

            # -- the account page -------------------------------------------------------------------
            page.get_by_role("link", name="Account").click()
            expect(page).to_have_url(f"{app_url}account")
            expect(page.locator(".qjm-facts")).to_contain_text("verified")
            key = ibm_key("ab12cd34ef561234")
            page.get_by_label("Set API key").fill(key)
            page.locator(".qjm-key-form").get_by_role("button", name="Save").click()
            expect(page.locator(".qjm-key-summary")).to_have_text("set, ends with …1234", timeout=WAIT_MS)
            assert key not in page.content()
            crn = "crn:v1:bluemix:public:quantum-computing:us-east:a/abc:def::"
            page.get_by_label("Default IBM Quantum instance (CRN)").fill(crn)
            defaults = page.locator(".qjm-defaults")
            for status, wanted in (("Done", True), ("Error", True), ("Cancelled", False), ("Running", True)):
                defaults.get_by_label(status, exact=True).set_checked(wanted)
            page.get_by_role("button", name="Save defaults").click()
            expect(page.locator(".qjm-banner")).to_contain_text("Defaults saved", timeout=WAIT_MS)
            me = api.get("me", headers=kernel).json()
            assert me["default_instance"] == crn and me["notify_default"] == ["RUNNING", "DONE", "ERROR"]
            expect(page.locator(".qjm-log-item").first).to_be_visible(timeout=WAIT_MS)
            expect(page.locator('.qjm-log-item[data-kind="verify"]')).to_contain_text("Confirm your email")
            page.locator(".qjm-key-summary").locator("..").get_by_role("button", name="Clear the IBM Quantum API key").click()
            page.get_by_role("dialog").get_by_role("button", name="Clear key").click()
            expect(page.locator(".qjm-key-summary")).to_have_text("not set", timeout=WAIT_MS)
            change = page.get_by_role("form", name="Change password")
            change.get_by_label("Current password").fill(PASSWORD)
            change.get_by_label("New password (at least 8 characters)").fill(PASSWORD + " 2")
            change.get_by_role("button", name="Change password").click()
            expect(page.locator(".qjm-banner")).to_contain_text("Password changed", timeout=WAIT_MS)
            expect(page.locator(".qjm-facts")).to_contain_text(ADA)  # still signed in, with the new password
            shot(page, "webui_account.png", full_page=True)

            # A second tab of the same browser is signed in already (the session is shared
            # between live tabs, never through localStorage).
            second = context.new_page()
            watch(second)
            second.goto(f"{app_url}jobs/{ids['GHZ sweep']}")
            expect(second.get_by_role("heading", name="GHZ sweep")).to_be_visible(timeout=WAIT_MS)
            second.close()

            # A member is no administrator.
            expect(page.get_by_role("link", name="Admin")).to_have_count(0)
            page.goto(f"{app_url}admin/users")
            expect(page.get_by_text("This page is for administrators")).to_be_visible(timeout=WAIT_MS)

            # -- the administrator --------------------------------------------------------------------
            _verified_login(api, smtp_server, ADMIN)
            admin_ctx = browser.new_context(viewport={"width": 1280, "height": 860})
            admin = admin_ctx.new_page()
            watch(admin)
            admin.goto(f"{app_url}admin")
            expect(admin.get_by_role("heading", name="Sign in to qjm")).to_be_visible(timeout=WAIT_MS)
            _sign_in(admin, ADMIN)
            expect(admin.get_by_role("heading", name="Users")).to_be_visible(timeout=WAIT_MS)
            ada_row = admin.locator("tr[data-user]").filter(has_text=ADA)
            expect(ada_row).to_contain_text("yes")
            shot(admin, "webui_admin_users.png")
            ada_row.get_by_role("button", name=f"Deactivate {ADA}").click()
            expect(ada_row.get_by_role("button", name=f"Activate {ADA}")).to_be_visible(timeout=WAIT_MS)
            assert api.post("auth/login", json={"email": ADA, "password": PASSWORD + " 2"}).status_code in (401, 403)
            ada_row.get_by_role("button", name=f"Activate {ADA}").click()
            expect(ada_row.get_by_role("button", name=f"Deactivate {ADA}")).to_be_visible(timeout=WAIT_MS)
            ada_row.get_by_role("button", name=f"Promote {ADA} to admin").click()
            expect(ada_row.get_by_role("button", name=f"Demote {ADA}")).to_be_visible(timeout=WAIT_MS)
            users = api.get("admin/users", headers=_login_token(api, ADMIN)).json()["users"]
            assert next(u for u in users if u["email"] == ADA)["is_admin"] is True
            admin.get_by_role("link", name="All jobs").click()
            expect(admin.locator("tr[data-job]")).to_have_count(2, timeout=WAIT_MS)
            expect(admin.locator("tr[data-job]").first).to_contain_text("local-")
            shot(admin, "webui_admin_jobs.png")
            admin_ctx.close()

            # -- phone width: one column, nothing wider than the screen ---------------------------
            phone_ctx = browser.new_context(viewport={"width": 375, "height": 740}, device_scale_factor=2,
                                            is_mobile=True, has_touch=True)
            phone = phone_ctx.new_page()
            watch(phone)
            phone.goto(app_url)
            _sign_in(phone, ADA, PASSWORD + " 2")
            expect(phone.locator("tr.qjm-row")).to_have_count(2, timeout=WAIT_MS)
            _fits_phone(phone)
            shot(phone, "webui_phone_jobs.png")
            phone.goto(f"{app_url}jobs/{ids['Bell state']}")
            expect(phone.locator(".qjm-timeline-item")).to_have_count(len(history) + 1, timeout=WAIT_MS)
            _fits_phone(phone)
            shot(phone, "webui_phone_job.png")
            phone.goto(f"{app_url}admin/users")
            expect(phone.locator("tr[data-user]")).to_have_count(2, timeout=WAIT_MS)
            _fits_phone(phone)
            shot(phone, "webui_phone_admin.png")
            phone.goto(f"{app_url}account")
            expect(phone.locator(".qjm-key-summary")).to_be_visible(timeout=WAIT_MS)
            _fits_phone(phone)
            shot(phone, "webui_phone_account.png", full_page=True)
            phone_ctx.close()

            # -- the keyboard alone: sign in, reach a job and the account page -----------------------
            kb_ctx = browser.new_context(viewport={"width": 1024, "height": 800})
            kb = kb_ctx.new_page()
            watch(kb)
            kb.goto(app_url)
            expect(kb.get_by_role("heading", name="Sign in to qjm")).to_be_visible(timeout=WAIT_MS)
            focused = lambda: kb.evaluate(  # noqa: E731
                "() => { const e = document.activeElement; return (e.id || e.textContent || '').trim(); }"
            )
            kb.keyboard.press("Tab")
            assert focused() == "Skip to content"
            kb.keyboard.press("Tab")
            assert focused().endswith("qjm")  # the brand link
            kb.keyboard.press("Tab")
            assert focused() == "qjm-email"
            kb.keyboard.type(ADA)
            kb.keyboard.press("Tab")
            assert focused() == "qjm-password"
            kb.keyboard.type(PASSWORD + " 2")
            kb.keyboard.press("Enter")
            expect(kb.locator("tr.qjm-row")).to_have_count(2, timeout=WAIT_MS)
            # Tab order: skip link, brand, Jobs, Notifications, Account, Admin, Sign out, then the page.
            kb.locator(".qjm-brand").focus()
            order = []
            for _ in range(5):
                kb.keyboard.press("Tab")
                order.append(focused())
            assert order == ["Jobs", "Notifications", "Account", "Admin", "Sign out"], order
            kb.keyboard.press("Shift+Tab")
            kb.keyboard.press("Shift+Tab")
            assert focused() == "Account"
            kb.keyboard.press("Enter")
            expect(kb).to_have_url(f"{app_url}account")
            expect(kb.get_by_role("heading", name="Account", exact=True)).to_be_focused()
            kb.go_back()
            expect(kb.locator("tr.qjm-row")).to_have_count(2, timeout=WAIT_MS)
            # A job's own page, by keyboard: focus its link and press Enter.
            kb.get_by_role("link", name="GHZ sweep").focus()
            kb.keyboard.press("Enter")
            expect(kb.get_by_role("heading", name="GHZ sweep")).to_be_focused(timeout=WAIT_MS)
            # The delete confirmation is a modal dialog: Escape cancels and nothing is deleted.
            kb.get_by_role("button", name="Delete from qjm").focus()
            kb.keyboard.press("Enter")
            expect(kb.get_by_role("dialog")).to_be_visible()
            assert focused() == "Cancel"
            kb.keyboard.press("Escape")
            expect(kb.get_by_role("dialog")).to_have_count(0)
            assert api.get(f"jobs/{ids['GHZ sweep']}", headers=_login_token(api, ADA, PASSWORD + " 2")).status_code == 200
            kb.keyboard.press("Tab")  # focus is back in the page
            kb_ctx.close()
        finally:
            browser.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "webui_timings.json").write_text(json.dumps(timings, indent=2))
    csp_violations = [m for m in problems if "Content Security Policy" in m]
    assert csp_violations == []
    assert [m for m in problems if "qjm" in m.lower() or "Uncaught" in m] == [], problems
