"""Channels (Apprise URLs): the SSRF guard, the API (URLs never returned, encrypted at rest),
delivery through the outbox to a real HTTP receiver on 127.0.0.1 (JSON webhook and ntfy),
once per channel, retries with backoff, and the per-channel delivery log."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from qjm_jupyter_server.clock import ManualClock
from qjm_jupyter_server.domain import Channel
from qjm_jupyter_server.errors import InvalidInput
from qjm_jupyter_server.notify.channel_sender import ChannelSender
from qjm_jupyter_server.notify.channels import check_reachable, inspect
from qjm_jupyter_server.notify.messages import MessageFactory
from qjm_jupyter_server.secrets import KeyRing
from qjm_jupyter_server.settings import Settings
from tests.fixtures.receiver import Receiver
from tests.fixtures.server import JWT_SECRET, fernet_key
from tests.watcher.test_e2e_mail import _true, cycles, job_mail, start, until

from .conftest import T0, a_job, a_user

REFUSED = [
    "json://127.0.0.1:8080/hook",  # loopback
    "jsons://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
    "json://10.0.0.5/hook",  # private
    "ntfy://192.168.1.10/topic",  # private, ntfy self-hosted mode
    "json://localhost/hook",  # a name that resolves to loopback
    "jsons://[::1]/x",  # IPv6 loopback
    "json://[::ffff:127.0.0.1]/x",  # IPv4-mapped loopback
    "mailto://u:p@127.0.0.1/?to=a@example.org",  # an SMTP host on the server's machine
    "file:///etc/passwd",  # a file, not a notification
    "windows://",  # a desktop notification on the server itself
    "syslog://",
    "nonsense://whatever",
]


async def verdict(url: str, settings: Settings) -> str:
    try:
        await check_reachable(inspect(url, settings), settings)
    except InvalidInput as exc:
        assert exc.field == "url"
        return "refused"
    return "ok"


async def test_the_ssrf_guard_refuses_the_servers_own_network_by_default() -> None:
    settings = Settings()
    assert {u: await verdict(u, settings) for u in REFUSED} == {u: "refused" for u in REFUSED}
    # Public targets: fixed-host services (tokens only), ntfy.sh cloud mode, a public literal address.
    for url in ("slack://T1/B1/C1", "discord://123/abc", "ntfy://my-topic", "json://8.8.8.8/hook"):
        assert await verdict(url, settings) == "ok", url


async def test_the_operator_restricts_schemes_and_may_allow_a_host() -> None:
    only_ntfy = Settings(channel_schemes=("ntfys",))
    assert await verdict("json://8.8.8.8/hook", only_ntfy) == "refused"
    assert await verdict("ntfys://8.8.8.8/topic", only_ntfy) == "ok"
    local = Settings(channel_allowed_hosts=("127.0.0.1",))
    assert await verdict("json://127.0.0.1:9/hook", local) == "ok"
    assert await verdict("json://10.0.0.5/hook", local) == "refused"  # only the named host
    assert await verdict("jsons://169.254.169.254/", local) == "refused"


async def test_delivery_retries_then_sends_and_a_4xx_fails_for_good(outbox_store, receiver: Receiver, tmp_path: Path) -> None:
    clock = ManualClock(T0)
    settings = Settings(public_url="http://qjm.test/", channel_allowed_hosts=("127.0.0.1",), channel_timeout=5.0)
    keyring = KeyRing.load_or_create(tmp_path / "keys", JWT_SECRET, fernet_key())
    user = a_user()
    await outbox_store.create_user(user)
    hook = Channel(id="c_hook", user_id=user.id, url_cipher=keyring.encrypt(user.id, f"json://{receiver.base}/hook"),
                   scheme="json", host="127.0.0.1", created_at=T0, updated_at=T0)
    await outbox_store.create_channel(hook)
    messages = MessageFactory(settings)
    row = messages.job_status_for_channel(user, a_job(), ["DONE"], hook, T0)
    assert await outbox_store.enqueue([row, row]) == 1  # once per channel
    sender = ChannelSender(outbox_store, keyring, settings, clock, "w1")

    receiver.fail_next = [500]
    assert await sender.drain_once() == 1
    [pending] = await outbox_store.list_notifications(user.id, 10, 0, channel_id="c_hook")
    assert (pending.state, pending.attempts) == ("pending", 1) and "500" in (pending.last_error or "")
    assert await sender.drain_once() == 0  # backing off
    clock.advance(60_000)
    assert await sender.drain_once() == 1
    [sent] = await outbox_store.list_notifications(user.id, 10, 0, channel_id="c_hook")
    assert (sent.state, sent.attempts) == ("sent", 2)
    [body] = receiver.bodies("/hook")
    assert body["title"] == "[qjm] DONE · bell state · ibm_fez"
    assert "IBM Quantum job bell state is now DONE" in body["message"] and "ran 1 h 02 min" in body["message"]

    receiver.fail_next = [404]
    await outbox_store.enqueue([messages.channel_test(user, hook, T0 + 5)])
    assert await sender.drain_once() == 1
    failed = (await outbox_store.list_notifications(user.id, 10, 0, channel_id="c_hook"))[0]
    assert failed.state == "failed" and "404" in (failed.last_error or "")


# -- end to end: the real server, the fake IBM API, aiosmtpd and the receiver -------------------------
@pytest.fixture
def qjm_config(qjm_config: dict[str, Any], fake_ibm: Any, smtp_server: Any) -> dict[str, Any]:
    qjm_config.update(smtp_server.settings())
    qjm_config.update(ibm_iam_url=fake_ibm.base, ibm_api_url=fake_ibm.api_url, poll_interval=0.2,
                      channel_allowed_hosts=["127.0.0.1"])
    return qjm_config


async def test_channels_end_to_end(
    qjm_services: Any, api: httpx.AsyncClient, make_user: Any, fake_ibm: Any, smtp_server: Any, receiver: Receiver,
    qjm_data_dir: Path,
) -> None:
    started = await start(qjm_services)
    user = await make_user(ibm_quantum_token=fake_ibm.key(), default_instance=fake_ibm.default_crn)
    secret = "sekrit-webhook-token-123"
    r = await api.post("channels", headers=user.headers, json={
        "url": f"json://{receiver.base}/hook?+X-Token={secret}", "label": "lab chat", "notify_status": ["running", "DONE"]})
    assert r.status_code == 201, r.text
    hook = r.json()
    assert (hook["scheme"], hook["host"], hook["notify_status"]) == ("json", "127.0.0.1", ["RUNNING", "DONE"])
    r = await api.post("channels", headers=user.headers, json={"url": f"ntfy://{receiver.base}/jobs-topic", "notify_status": ["DONE"]})
    assert r.status_code == 201, r.text
    ntfy = r.json()
    r = await api.post("channels", headers=user.headers, json={"url": "jsons://169.254.169.254/latest/meta-data"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "url"
    r = await api.post("channels", headers=user.headers, json={"url": "file:///etc/passwd"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "url"
    listed = await api.get("channels", headers=user.headers)
    assert secret not in listed.text and [c["id"] for c in listed.json()["channels"]] == [hook["id"], ntfy["id"]]
    other = await make_user()
    assert (await api.get(f"channels/{hook['id']}", headers=other.headers)).status_code == 404
    assert secret.encode() not in b"".join(p.read_bytes() for p in qjm_data_dir.glob("qjm.sqlite3*"))  # encrypted at rest

    r = await api.post(f"channels/{hook['id']}/test", headers=user.headers)
    assert r.status_code == 202, r.text
    await until(lambda: _true(len(receiver.bodies("/hook")) >= 1), "the test notification")
    assert "Test" in receiver.bodies("/hook")[0]["title"]
    assert receiver.requests[0].headers.get("X-Token") == secret

    fake_ibm.add_job("ch-1", "Queued")
    r = await api.post("jobs", headers=user.headers, json={"job_id": "ch-1", "notify_status": ["RUNNING", "DONE"]})
    assert r.status_code == 201
    fake_ibm.set_status("ch-1", "Running")
    await until(lambda: _true(len(receiver.bodies("/hook")) >= 2), "RUNNING on the webhook")
    fake_ibm.set_status("ch-1", "Completed")
    await until(lambda: _true(len(receiver.bodies("/")) >= 4), "DONE on both channels")
    await until(lambda: _true(len(job_mail(smtp_server.messages, user.email)) >= 2), "both emails")
    await cycles(started, 4)
    titles = [b["title"] for b in receiver.bodies("/hook")]
    assert [t.split(" · ")[0] for t in titles] == ["[qjm] Test: notifications reach this channel", "[qjm] RUNNING", "[qjm] DONE"]
    [ntfy_body] = [r.body for r in receiver.requests if r.path == "/"]  # ntfy publishes JSON to /
    assert ntfy_body["topic"] == "jobs-topic" and ntfy_body["title"].startswith("[qjm] DONE · ch-1")
    assert len(job_mail(smtp_server.messages, user.email)) == 2  # email unchanged beside the channels

    r = await api.get(f"channels/{hook['id']}/deliveries", headers=user.headers)
    log = r.json()
    assert log["total"] == 3 and {n["state"] for n in log["notifications"]} == {"sent"}
    assert all(n["channel_id"] == hook["id"] for n in log["notifications"])

    r = await api.patch(f"channels/{ntfy['id']}", headers=user.headers, json={"enabled": False, "label": "phone"})
    assert r.status_code == 200 and (r.json()["enabled"], r.json()["label"]) == (False, "phone")
    r = await api.patch(f"channels/{ntfy['id']}", headers=user.headers, json={"url": "json://10.1.2.3/x"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "url"
    assert (await api.delete(f"channels/{ntfy['id']}", headers=user.headers)).status_code == 204
    assert (await api.delete(f"channels/{ntfy['id']}", headers=user.headers)).status_code == 404
    await asyncio.sleep(0)


def test_the_operators_scheme_list_is_enforced_by_a_running_server(start_qjm: Any) -> None:
    """`QJM_CHANNEL_SCHEMES=ntfys` on a real `jupyter qjm`: a JSON webhook is refused (422 on
    `url`, naming what is allowed), an ntfys channel on a public address is taken, and the
    default refusal of the server's own network still holds."""
    proc = start_qjm(channel_schemes="ntfys", require_verified_email="false")
    email, password = "schemes@example.org", "correct horse battery"
    r = httpx.post(proc.api + "auth/register", json={"email": email, "password": password}, timeout=20)
    assert r.status_code == 202, r.text
    token = httpx.post(proc.api + "auth/login", json={"email": email, "password": password}, timeout=20).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    r = httpx.post(proc.api + "channels", headers=headers, json={"url": "json://8.8.8.8/hook"}, timeout=20)
    assert r.status_code == 422 and r.json()["error"]["field"] == "url", r.text
    assert "ntfys" in r.json()["error"]["message"]
    r = httpx.post(proc.api + "channels", headers=headers, json={"url": "ntfys://8.8.8.8/topic"}, timeout=20)
    assert r.status_code == 201 and r.json()["scheme"] == "ntfys", r.text
    for own in ("ntfys://169.254.169.254/topic", "ntfys://127.0.0.1:8080/topic"):  # metadata, loopback
        r = httpx.post(proc.api + "channels", headers=headers, json={"url": own}, timeout=20)
        assert r.status_code == 422 and r.json()["error"]["field"] == "url", r.text
    listed = httpx.get(proc.api + "channels", headers=headers, timeout=20).json()["channels"]
    assert [(c["scheme"], c["host"]) for c in listed] == [("ntfys", "8.8.8.8")]
