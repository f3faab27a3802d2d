"""Where emailed links lead, decided per message: into Lab when the server has it, to
the web UI otherwise. (The end-to-end proof is test_email_links.py.)"""

from __future__ import annotations

from qjm_jupyter_server.notify.facts import Links
from qjm_jupyter_server.notify.messages import MessageFactory
from qjm_jupyter_server.settings import Settings
from tests.notify.conftest import T0, a_job, a_user


def test_links_without_lab_go_to_the_web_ui() -> None:
    links = Links("https://qjm.example.org/", has_lab=False)
    assert links.job("j_1/x") == "https://qjm.example.org/qjm/jobs/j_1%2Fx"
    assert links.account() == "https://qjm.example.org/qjm/account"
    assert links.notifications() == "https://qjm.example.org/qjm/notifications"
    assert links.group("sweep 1") == "https://qjm.example.org/qjm/?group=sweep+1"
    assert links.page("reset", "t") == "https://qjm.example.org/qjm/reset?token=t"


def test_links_with_lab_deep_link_into_the_panel() -> None:
    links = Links("https://hub.example.org/user/ada/", has_lab=True)
    assert links.job("j_1") == "https://hub.example.org/user/ada/lab?qjm-job=j_1"
    assert links.account() == "https://hub.example.org/user/ada/lab?qjm-settings=1"
    assert links.notifications() == "https://hub.example.org/user/ada/lab?qjm-notifications=1"
    assert links.group("g") == "https://hub.example.org/user/ada/lab?qjm-group=g"
    assert links.page("verify", "t") == "https://hub.example.org/user/ada/qjm/verify?token=t"


def test_the_factory_asks_whether_lab_is_there_for_every_message() -> None:
    """Lab loads after this extension; the answer is read when a message is built."""
    answer = {"lab": False}
    f = MessageFactory(Settings(public_url="http://h/"), has_lab=lambda: answer["lab"])
    job = a_job()
    before = f.job_status(a_user(), job, ["DONE"], T0)
    answer["lab"] = True
    after = f.job_status(a_user(), job, ["DONE"], T0)
    assert f"http://h/qjm/jobs/{job.id}" in before.text and "lab?" not in before.text
    assert f"http://h/lab?qjm-job={job.id}" in after.text


def test_manage_notifications_leads_to_the_notification_settings() -> None:
    """The footer's "Manage notifications" opens channels, quiet hours and digests, not the
    account page (where they are not)."""
    f = MessageFactory(Settings(public_url="http://h/"), has_lab=lambda: False)
    note = f.job_status(a_user(), a_job(), ["DONE"], T0)
    assert "Manage notifications: http://h/qjm/notifications" in note.text
    assert 'href="http://h/qjm/notifications">Manage notifications' in (note.html or "")
