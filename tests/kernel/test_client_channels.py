"""JobManagerClient's channel and preference methods against a real `jupyter qjm` process,
delivering to a real HTTP receiver on 127.0.0.1 (Apprise's json:// webhook): add, list,
test, change, delete a channel, its delivery log, group milestones on it, and the quiet
hours / digest preferences; sync forms and `_async` twins inside a running loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator


import pytest

from qjm_jupyter.client import JobManagerClient
from qjm_jupyter.errors import QJMHTTPError
from tests.fixtures.process import QJMProcess, qjm_env
from tests.fixtures.receiver import Receiver
from tests.fixtures.smtp import SMTPTestServer

from .conftest import Account

DEADLINE = 30.0


@pytest.fixture(scope="module")
def qjm_server(tmp_path_factory: pytest.TempPathFactory, kernel_smtp: SMTPTestServer) -> Iterator[QJMProcess]:
    """The module's `jupyter qjm`, allowed to deliver to 127.0.0.1 (where the receiver listens)."""
    d = tmp_path_factory.mktemp("qjm-channels")
    env = qjm_env(d, smtp_host=kernel_smtp.host, smtp_port=kernel_smtp.port, smtp_security="none",
                  public_url="http://qjm.test/", poll_interval=0.3, channel_allowed_hosts="127.0.0.1")
    proc = QJMProcess(data_dir=d, env=env)
    try:
        yield proc.start()
    finally:
        proc.stop()


def client_for(account: Account) -> JobManagerClient:
    return JobManagerClient(url=account.url, email=account.email, password=account.password, timeout=20)


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.1)


def titles(receiver: Receiver, path: str) -> list[str]:
    return [b["title"] for b in receiver.bodies(path)]


def register_local(client: JobManagerClient, job_ids: list[str], notify: list[str], group: str | None = None) -> None:
    """Local jobs (their status comes from the kernel's reports, so the test moves them)."""
    jobs = [{"job_id": j, "source": "local", "channel": "local", "notify_status": notify,
             **({"group": group} if group else {})} for j in job_ids]
    assert client._run(client._call("POST", "jobs", json={"jobs": jobs}))["created"] == len(job_ids)


def test_channels_from_the_client(account: Account, config_dir, receiver: Receiver, capsys) -> None:  # type: ignore[no-untyped-def]
    client = client_for(account)
    secret = "hook-secret-4711"
    hook = client.add_channel(f"json://{receiver.base}/hook?+X-Token={secret}", ["running", "done"], label="lab chat")
    assert (hook["scheme"], hook["host"], hook["label"], hook["notify_status"], hook["enabled"]) == (
        "json", "127.0.0.1", "lab chat", ["RUNNING", "DONE"], True)
    assert secret not in repr(hook)
    with pytest.raises(QJMHTTPError) as err:
        client.add_channel("jsons://169.254.169.254/latest/meta-data")
    assert (err.value.status, err.value.field) == (422, "url")
    listed = client.all_channel_info()
    assert [c["id"] for c in listed] == [hook["id"]] and secret not in repr(listed)
    assert client.channel_info(hook) == hook == client.channel_info(hook["id"])
    client.print_all_channel_info()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("id") and out[2].startswith(hook["id"]) and "lab chat" in out[2]

    queued = client.test_channel(hook)
    assert queued["id"]
    wait_until(lambda: len(receiver.bodies("/hook")) >= 1, "the test message")
    assert receiver.requests[0].headers.get("X-Token") == secret

    register_local(client, ["cl-1"], ["RUNNING", "DONE"])
    client.report_status("cl-1", "RUNNING")
    client.report_status("cl-1", "DONE")
    wait_until(lambda: len(receiver.bodies("/hook")) >= 3, "RUNNING and DONE on the webhook")
    # Deliveries run concurrently (channel_concurrency): the order of arrival is not promised.
    assert sorted(t.split(" · ")[0] for t in titles(receiver, "/hook")) == [
        "[qjm] DONE", "[qjm] RUNNING", "[qjm] Test: notifications reach this channel"]
    wait_until(lambda: {d["state"] for d in client.channel_deliveries(hook)} == {"sent"}, "the delivery log to settle")
    log = client.channel_deliveries(hook)
    assert [d["kind"] for d in log] == ["job_status", "job_status", "test"]  # newest first
    assert all(d["channel_id"] == hook["id"] for d in log)
    assert [d["kind"] for d in client.channel_deliveries(hook, limit=1, offset=2)] == ["test"]
    assert {d["channel_id"] for d in client.delivery_log(limit=100) if d["channel_id"]} == {hook["id"]}

    changed = client.update_channel(hook, label=None, notify_status=["error"])
    assert (changed["label"], changed["notify_status"], changed["enabled"]) == (None, ["ERROR"], True)
    assert client.update_channel(hook, enabled=False)["enabled"] is False
    with pytest.raises(QJMHTTPError) as err:
        client.update_channel(hook, url="json://10.1.2.3/x")
    assert (err.value.status, err.value.field) == (422, "url")
    client.delete_channel(hook)
    assert client.all_channel_info() == []
    with pytest.raises(QJMHTTPError) as err:
        client.channel_info(hook)
    assert err.value.status == 404
    with pytest.raises(ValueError, match="not a channel id"):
        client.delete_channel({"scheme": "json"})
    client.close()


def test_group_milestones_reach_a_channel_once(account: Account, config_dir, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    """A group of jobs: the channel gets its per-job messages and one message per milestone,
    even when the kernel reports the final statuses twice."""
    client = client_for(account)
    client.add_channel(f"json://{receiver.base}/group", ["RUNNING", "DONE", "ERROR"])
    ids = ["gm-1", "gm-2", "gm-3"]
    register_local(client, ids, ["RUNNING", "DONE", "ERROR"], group="sweep-7")
    client.report_status("gm-1", "RUNNING")
    client.report_status("gm-2", "RUNNING")
    for _ in range(2):  # a kernel may report again: nothing new goes out
        client.report_status("gm-1", "DONE")
        client.report_status("gm-2", "ERROR", reason="boom")
        client.report_status("gm-3", "DONE")
    wait_until(lambda: sum("group sweep-7" in t for t in titles(receiver, "/group")) >= 2, "both milestones")
    wait_until(lambda: len(receiver.bodies("/group")) >= 7, "every per-job message")
    time.sleep(2.5)  # a channel sender's idle pause: anything late would arrive now
    got = titles(receiver, "/group")
    assert sorted(t for t in got if "group sweep-7" in t) == [  # sent concurrently: any order
        "[qjm] group sweep-7: all 3 jobs finished (2 DONE, 1 ERROR)", "[qjm] group sweep-7: first job running"]
    assert len(got) == 7, got  # gm-1 RUNNING, gm-2 RUNNING, 3 finals, 2 milestones
    client.close()


def test_preferences_and_async_twins_in_a_running_loop(account: Account, config_dir) -> None:  # type: ignore[no-untyped-def]
    client = client_for(account)

    async def cell() -> None:
        asyncio.get_running_loop()
        before = client.notification_preferences()  # the sync form, with the loop running
        assert (before["time_zone"], before["quiet_start"], before["digest_minutes"], before["mail_stopped"]) == (
            "UTC", None, 0, False)
        prefs = await client.update_notification_preferences_async(
            time_zone="Europe/Zurich", quiet_start="22:00", quiet_end="07:00", quiet_breakthrough=["error"],
            digest_minutes=60)
        assert (prefs["time_zone"], prefs["quiet_start"], prefs["quiet_end"], prefs["quiet_breakthrough"],
                prefs["digest_minutes"]) == ("Europe/Zurich", "22:00", "07:00", ["ERROR"], 60)
        assert await client.notification_preferences_async() == prefs
        # Only what is given changes; None turns quiet hours off.
        off = await client.update_notification_preferences_async(quiet_start=None, quiet_end=None)
        assert (off["quiet_start"], off["quiet_end"], off["time_zone"], off["digest_minutes"]) == (
            None, None, "Europe/Zurich", 60)
        with pytest.raises(QJMHTTPError) as err:
            await client.update_notification_preferences_async(time_zone="Mars/Olympus")
        assert (err.value.status, err.value.field) == (422, "time_zone")
        with pytest.raises(QJMHTTPError) as err:
            await client.update_notification_preferences_async(digest_minutes=2)
        assert (err.value.status, err.value.field) == (422, "digest_minutes")
        assert await client.all_channel_info_async() == []
        await client.aclose()

    asyncio.run(cell())
    client.close()


def test_every_channel_method_has_its_async_twin() -> None:
    names = ["all_channel_info", "print_all_channel_info", "channel_info", "add_channel", "update_channel",
             "delete_channel", "test_channel", "channel_deliveries", "delivery_log", "notification_preferences",
             "update_notification_preferences"]
    for name in names:
        sync, twin = getattr(JobManagerClient, name), getattr(JobManagerClient, f"{name}_async")
        assert asyncio.iscoroutinefunction(twin) and not asyncio.iscoroutinefunction(sync), name
        assert sync.__name__ == name, name


