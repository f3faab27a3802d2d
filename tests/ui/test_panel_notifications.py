"""Notification settings and "Cancel job" in the Quantum jobs panel of a real JupyterLab.

The same parts as the web UI's (tests/ui/test_webui_notifications.py), mounted in the Lab
side panel: cancel an IBM job (the fake IBM API) from the list with Lab's dialog; turn on
desktop notifications from the panel (the browser is asked only then, and Lab's command
follows); add a channel to a real JSON-webhook receiver on 127.0.0.1, see a refused URL's
error by its field, send a test and see it arrive and in the channel's log; save email
timing and read it back over the API.
"""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.browser import CHROMIUM, HEADLESS_ARGS, REPO, WAIT_MS, require_chromium, shot
from tests.fixtures.process import QJMProcess

pytestmark = [pytest.mark.ui, pytest.mark.slow]

require_chromium()
if not (REPO / "server_ext" / "qjm_jupyter_server" / "labextension" / "package.json").exists():
    pytest.skip("labextension not built (cd labextension && jlpm install && jlpm build:prod)", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.ui.test_panel import _prepare_jupyter_dirs, open_panel  # noqa: E402
from tests.ui.test_webui_notifications import ADA, PASSWORD, verified_account, wait_for  # noqa: E402


@pytest.fixture
def lab(start_qjm, tmp_path, fake_ibm) -> QJMProcess:  # noqa: ANN001
    data_dir = tmp_path / "lab"
    data_dir.mkdir()
    _prepare_jupyter_dirs(data_dir)
    return start_qjm(
        command="lab", data_dir=data_dir, extra_args=["--LabApp.expose_app_in_browser=True"],
        ibm_iam_url=fake_ibm.base, ibm_api_url=fake_ibm.api_url, smtp_host="", identity_source="accounts",
        channel_allowed_hosts="127.0.0.1",
    )


def test_panel_cancel_desktop_channels_preferences(lab, fake_ibm, receiver) -> None:  # noqa: ANN001
    api = httpx.Client(base_url=lab.api, timeout=20)
    me = verified_account(lab, api)
    assert api.patch("me", headers=me, json={"ibm_quantum_token": fake_ibm.key(),
                                              "default_instance": fake_ibm.default_crn}).status_code == 200
    fake_ibm.add_job("ibm-queued-0101", "Queued")
    r = api.post("jobs", headers=me, json={"job_id": "ibm-queued-0101", "label": "Queued sweep"})
    assert r.status_code == 201, r.text
    job = r.json()["id"] if "id" in r.json() else r.json()["jobs"][0]["id"]
    console_errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=HEADLESS_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="America/New_York",
                                          permissions=["notifications"])
            page = context.new_page()
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            panel = open_panel(page, lab)
            panel.get_by_label("Email").fill(ADA)
            panel.get_by_label("Password").fill(PASSWORD)
            panel.get_by_role("button", name="Sign in").click()
            row = panel.locator(f'tr[data-job="{job}"]')
            expect(row).to_be_visible(timeout=WAIT_MS)

            # -- cancel from the list, confirmed in Lab's dialog --------------------------------------
            row.get_by_role("button", name="Cancel job ibm-queued-0101").click()
            lab_dialog = page.locator(".jp-Dialog")
            expect(lab_dialog).to_contain_text("Cancel this job on IBM Quantum?")
            lab_dialog.get_by_role("button", name="Cancel job").click()
            expect(row.locator(".qjm-cell-status .qjm-chip")).to_have_text("Cancelled", timeout=WAIT_MS)
            expect(panel.locator(".qjm-banner")).to_contain_text("cancelled on IBM Quantum")
            assert fake_ibm.jobs["ibm-queued-0101"].data["status"] == "Cancelled"
            assert api.get(f"jobs/{job}", headers=me).json()["status"] == "CANCELLED"

            # -- the notification settings, from the header's bell ---------------------------------
            panel.get_by_role("button", name="Notification settings").click()
            settings = panel.locator(".qjm-notifications")
            expect(settings.locator(".qjm-channels-empty")).to_be_visible(timeout=WAIT_MS)
            toggled = "() => window.jupyterapp.commands.isToggled('qjm:desktop-notifications')"
            assert page.evaluate(toggled) is False
            expect(settings.locator(".qjm-desktop-state")).to_contain_text("Off")
            settings.get_by_role("button", name="Turn on desktop notifications").click()
            expect(settings.locator(".qjm-desktop-state")).to_contain_text("On:", timeout=WAIT_MS)
            assert page.evaluate(toggled) is True

            url_field = settings.get_by_label("Apprise URL")
            url_field.fill("json://10.0.0.5/hook")
            settings.get_by_role("button", name="Add channel").click()
            expect(settings.locator("#qjm-channel-url-error")).not_to_be_empty(timeout=WAIT_MS)
            shot(page, "panel_channel_refused.png")
            url_field.fill(f"json://{receiver.base}/panel-hook")
            settings.get_by_label("Name (optional)").fill("phone")
            settings.get_by_role("button", name="Add channel").click()
            item = settings.locator("li.qjm-channel")
            expect(item).to_have_count(1, timeout=WAIT_MS)
            expect(item.locator(".qjm-channel-target")).to_have_text("json://127.0.0.1")
            item.get_by_role("button", name="Send a test to phone").click()
            expect(item.locator(".qjm-channel-result")).to_have_text("Test delivered.", timeout=WAIT_MS)
            wait_for(lambda: len(receiver.bodies("/panel-hook")) == 1, "the test at the receiver")
            expect(item.locator('.qjm-log-item[data-state="sent"]')).to_have_count(1, timeout=WAIT_MS)

            tz = settings.get_by_label("Time zone")
            expect(tz).to_have_value("America/New_York")
            settings.get_by_label("Hold job email during quiet hours, then send one summary").check()
            settings.get_by_label("From", exact=True).fill("23:00")
            settings.get_by_label("Until", exact=True).fill("06:00")
            settings.get_by_label("One summary a day").check()
            settings.get_by_role("button", name="Save email timing").click()
            expect(panel.locator(".qjm-banner")).to_contain_text("Email timing saved", timeout=WAIT_MS)
            prefs = api.get("notifications/preferences", headers=me).json()
            assert (prefs["time_zone"], prefs["quiet_start"], prefs["quiet_end"], prefs["quiet_breakthrough"],
                    prefs["digest_minutes"]) == ("America/New_York", "23:00", "06:00", ["ERROR"], 1440)
            settings.locator("summary").first.scroll_into_view_if_needed()
            shot(page, "panel_notifications.png")
            item.scroll_into_view_if_needed()
            shot(page, "panel_channels.png")
        finally:
            browser.close()
    assert not [e for e in console_errors if "qjm" in e.lower()], console_errors
