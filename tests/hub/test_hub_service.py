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


def watch_in_kernel(hub: Hub, name: str, token: str, email: str) -> str:
    """Run `%%qjm_watch` in a kernel of the member's own server (through the proxy); the job id."""
    server = SimpleNamespace(url=f"{hub.url}user/{name}/", jupyter_token=token)
    loaded, watched, job_id = run_in_server_kernel(server, ["%load_ext qjm_jupyter", WATCH_CELL, "print(job.job_id())"])  # type: ignore[arg-type]
    assert loaded == "" and "watching 1 job on aer_simulator" in watched, (loaded, watched)
    assert f"you will get an email at {email} on DONE" in watched, watched  # the member's address, named
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
    job_a = watch_in_kernel(hub, "alice", alice, "alice@example.org")
    job_b = watch_in_kernel(hub, "bob", bob, "bob@example.org")
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


def _hub_sign_in(context, hub: Hub, name: str) -> None:  # type: ignore[no-untyped-def]
    """Sign in to the Hub itself (its login form), landing on the Hub's home page: no server spawned."""
    from tests.fixtures.browser import WAIT_MS

    page = context.new_page()
    page.goto(hub.url + "hub/login?next=/hub/home", timeout=WAIT_MS)
    page.locator("#username_input").fill(name)
    page.locator("#password_input").fill("pw")
    page.locator("#login_submit").click()
    page.wait_for_url("**/hub/home", timeout=WAIT_MS)
    page.close()


def test_the_service_web_ui_signs_members_in_with_hub_oauth(hub: Hub, kernel_smtp: SMTPTestServer) -> None:
    """The service's own web UI (where its emails lead) signs members in with Hub OAuth: no qjm
    sign-in form, the service cookie's identity, XSRF as the Hub requires, Hub admins as admins."""
    from tests.fixtures.browser import CHROMIUM, HEADLESS_ARGS, WAIT_MS, shot

    if not CHROMIUM.exists():
        pytest.skip("needs Debian chromium at /usr/bin/chromium")
    from playwright.sync_api import expect, sync_playwright

    started = time.monotonic()
    hub.login("alice").close()  # once signed in, the Hub holds her email (the authenticator's user info)
    alice = hub.user_token("alice")
    if hub.admin("GET", "users/bob").status_code == 404:
        assert hub.admin("POST", "users/bob").status_code == 201
    bob = hub.user_token("bob")
    # alice's job finishes: the mail links to its page in the service's web UI
    r = httpx.post(hub.service_api + "jobs", json={"job_id": "local-webui-1", "source": "local", "label": "Through OAuth",
                                                   "notify_status": ["DONE"]}, headers=auth(alice), timeout=30)
    assert r.status_code == 201, r.text
    job = r.json()["jobs"][0] if "jobs" in r.json() else r.json()
    r = httpx.post(hub.service_api + f"jobs/{job['id']}/status", json={"status": "DONE"}, headers=auth(alice), timeout=30)
    assert r.status_code == 200, r.text
    mails = wait_for_mail(kernel_smtp, lambda m: "alice@example.org" in str(m["To"]) and "local-webui-1" in body_text(m))
    assert mails, [m["Subject"] for m in kernel_smtp.messages]
    found = re.search(r"\S+/services/qjm/qjm/jobs/[^\s\"<>]+", body_text(mails[-1]))
    assert found, body_text(mails[-1])
    link = found.group(0)
    assert link.startswith(hub.url), link
    service_cookie = "service-qjm"  # HubOAuth's cookie: the service's OAuth client id

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=HEADLESS_ARGS)
        try:
            # -- alice, signed in to the Hub, follows the emailed link --------------------------------
            ctx_a = browser.new_context(viewport={"width": 1280, "height": 860})
            _hub_sign_in(ctx_a, hub, "alice")
            page = ctx_a.new_page()
            page.goto(link, timeout=WAIT_MS)  # -> Hub authorize -> /services/qjm/oauth_callback -> the job page
            page.wait_for_url(link, timeout=WAIT_MS)
            expect(page.get_by_role("heading", name="Through OAuth")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_role("heading", name="Sign in to qjm")).to_have_count(0)
            expect(page.get_by_label("Password")).to_have_count(0)
            assert service_cookie in {c["name"] for c in ctx_a.cookies()}, ctx_a.cookies()
            shot(page, "webui_hub_job.png")

            # the web UI's own calls carry the XSRF token the Hub requires; without it the cookie is not enough
            api = hub.service_api
            made = page.evaluate(
                """async ([api, xsrf]) => {
                    const post = headers => fetch(api + 'jobs', {method: 'POST', credentials: 'same-origin',
                        headers: {'Content-Type': 'application/json', ...headers},
                        body: JSON.stringify({job_id: 'local-webui-2', source: 'local'})});
                    const me = headers => fetch(api + 'me', {credentials: 'same-origin', headers});
                    return [(await post({})).status, (await post({'X-XSRFToken': xsrf})).status,
                            (await me({})).status, (await me({'X-XSRFToken': xsrf})).status];
                }""",
                [api, page.evaluate("document.body.dataset.qjmXsrf")],
            )
            assert made[0] in (401, 403) and made[1] == 201, made
            assert made[2] == 401 and made[3] == 200, made  # the Hub's rule: no cookie-only fetch, GET included
            # a cross-site POST with only the service cookie (a form or no-cors fetch from another site)
            jar = "; ".join(f"{c['name']}={c['value']}" for c in ctx_a.cookies() if "/services/qjm" in c["path"]
                            or c["path"] == "/")
            # (Jupyter answers a foreign Origin with 404; without an Origin the missing XSRF token refuses it)
            for extra in ({"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
                           "Content-Type": "application/x-www-form-urlencoded"},
                          {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors",
                           "Content-Type": "text/plain"},
                          {"Content-Type": "text/plain"},
                          {"Content-Type": "application/json"}):
                r = httpx.post(api + "jobs", content=b'{"job_id": "local-forged", "source": "local"}',
                               headers={"Cookie": jar, **extra}, timeout=30)
                assert r.status_code in ((401, 403, 404) if "Origin" in extra else (401, 403)), (extra, r.status_code, r.text)
            # the same cookies do carry alice's identity where no XSRF is needed (a page view)
            r = httpx.get(hub.url + "services/qjm/qjm/", headers={"Cookie": jar}, timeout=30)
            assert r.status_code == 200 and 'data-qjm-identity="hub"' in r.text, r.text[:300]
            listed = httpx.get(api + "jobs", headers=auth(alice), timeout=30).json()["jobs"]
            assert "local-forged" not in {j["job_id"] for j in listed}
            assert "local-webui-2" in {j["job_id"] for j in listed}  # the one made with the token

            # a Hub admin is an admin of the web UI
            page.goto(hub.url + "services/qjm/qjm/admin/users", timeout=WAIT_MS)
            expect(page.get_by_role("heading", name="Users")).to_be_visible(timeout=WAIT_MS)
            expect(page.locator("tr[data-user]").filter(has_text="alice@example.org")).to_have_count(1, timeout=WAIT_MS)

            # -- bob, signed in to the Hub, opens alice's link: not found; no admin pages ------------------
            ctx_b = browser.new_context(viewport={"width": 1280, "height": 860})
            _hub_sign_in(ctx_b, hub, "bob")
            page_b = ctx_b.new_page()
            page_b.goto(link, timeout=WAIT_MS)
            page_b.wait_for_url(link, timeout=WAIT_MS)
            expect(page_b.get_by_text("No such job")).to_be_visible(timeout=WAIT_MS)
            expect(page_b.get_by_role("heading", name="Through OAuth")).to_have_count(0)
            expect(page_b.get_by_role("heading", name="Sign in to qjm")).to_have_count(0)
            page_b.goto(hub.url + "services/qjm/qjm/admin/users", timeout=WAIT_MS)
            expect(page_b.get_by_text("This page is for administrators")).to_be_visible(timeout=WAIT_MS)
            assert httpx.get(api + "admin/users", headers=auth(bob), timeout=30).status_code == 403
            ctx_b.close()

            # -- no Hub login: the link ends on the Hub's login page -----------------------------------
            ctx_n = browser.new_context()
            page_n = ctx_n.new_page()
            page_n.goto(link, timeout=WAIT_MS)
            page_n.wait_for_url("**/hub/login**", timeout=WAIT_MS)
            expect(page_n.locator("#username_input")).to_be_visible(timeout=WAIT_MS)
            ctx_n.close()

            # -- the service cookie expires while the page is open: the next API call's 401 takes the
            # page through the Hub's OAuth again (silently: the Hub session lasts) and back to the job
            page.goto(link, timeout=WAIT_MS)
            expect(page.get_by_role("heading", name="Through OAuth")).to_be_visible(timeout=WAIT_MS)
            page.evaluate("window.__qjmBeforeExpiry = true")
            ctx_a.clear_cookies(name=service_cookie)
            page.wait_for_function("() => window.__qjmBeforeExpiry === undefined", timeout=WAIT_MS)  # reloaded
            page.wait_for_url(link, timeout=WAIT_MS)
            expect(page.get_by_role("heading", name="Through OAuth")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_role("heading", name="Sign in to qjm")).to_have_count(0)
            assert service_cookie in {c["name"] for c in ctx_a.cookies()}, ctx_a.cookies()

            # -- the web UI's sign-out ends the service session ----------------------------------------
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url("**/hub/**", timeout=WAIT_MS)
            assert service_cookie not in {c["name"] for c in ctx_a.cookies()}, ctx_a.cookies()
            page.goto(link, timeout=WAIT_MS)
            page.wait_for_url("**/hub/login**", timeout=WAIT_MS)
            ctx_a.close()
        finally:
            browser.close()
    print(f"\nHub web UI test (s): {round(time.monotonic() - started, 1)}")
