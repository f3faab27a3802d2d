"""The sender against real aiosmtpd servers (plain, STARTTLS, implicit TLS), real SQLite outbox.

Every test runs twice: against relays that advertise PIPELINING (the sender pipelines,
RFC 2920) and against relays that do not (one reply at a time).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme

from qjm_jupyter_server.notify.outcomes import GIVE_UP_MS
from tests.fixtures.smtp import SMTPTestServer, serve

MIN = 60_000


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def relay_pipelining(request) -> bool:
    return bool(request.param)


@pytest.fixture
def smtp_server(tmp_path, relay_pipelining) -> Iterator[SMTPTestServer]:
    yield from serve(SMTPTestServer(tmp_path, mode="none", pipelining=relay_pipelining))


@pytest.fixture
def smtp_server_starttls(tmp_path, smtp_ca, relay_pipelining) -> Iterator[SMTPTestServer]:
    yield from serve(SMTPTestServer(tmp_path, mode="starttls", auth=True, ca=smtp_ca, pipelining=relay_pipelining))


@pytest.fixture
def smtp_server_tls(tmp_path, smtp_ca, relay_pipelining) -> Iterator[SMTPTestServer]:
    yield from serve(SMTPTestServer(tmp_path, mode="tls", auth=True, ca=smtp_ca, pipelining=relay_pipelining))


async def states(store) -> dict[str, int]:
    return {s: await store.count_outbox(s) for s in ("pending", "sent", "failed")}


async def test_plain_delivers_multipart_with_headers(smtp_server, make_sender, enqueue, outbox_store):
    [row] = await enqueue(1)
    sender = make_sender(smtp_server.settings())
    assert await sender.drain_once() == 1
    [msg] = smtp_server.messages
    assert msg["To"] == "user0@example.org"
    assert msg["Subject"] == row.subject
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"].strip() == f"<qjm.{row.id}@notify.test>"
    assert msg["Date"]
    assert msg.get_content_type() == "multipart/alternative"
    assert "test email" in msg.get_body(("plain",)).get_content()
    assert "<p>" in msg.get_body(("html",)).get_content()
    assert smtp_server.handler.envelopes[0] == ("qjm@notify.test", ["user0@example.org"])
    assert await states(outbox_store) == {"pending": 0, "sent": 1, "failed": 0}
    [stored] = await outbox_store.list_notifications(None, 10, 0)
    assert stored.sent_at is not None and stored.text == "" and stored.html == ""  # single-use links gone


async def test_connection_reused_for_a_burst(smtp_server, make_sender, enqueue):
    await enqueue(25)
    sender = make_sender(smtp_server.settings())
    assert await sender.drain_once() == 25
    assert len(smtp_server.messages) == 25
    assert smtp_server.sessions == 1
    assert sender.sessions_opened == 1


async def test_connection_cap_reconnects(smtp_server, make_sender, enqueue):
    await enqueue(7)
    sender = make_sender(smtp_server.settings())
    sender.per_connection = 3
    assert await sender.drain_once() == 7
    assert len(smtp_server.messages) == 7
    assert smtp_server.sessions == 3


async def test_concurrency_bounds_connections(smtp_server, make_sender, enqueue):
    await enqueue(40)
    sender = make_sender(smtp_server.settings(), mail_concurrency=3)
    assert await sender.drain_once() == 40
    assert len(smtp_server.messages) == 40
    assert sender.sessions_opened == 3
    assert len({m["To"] for m in smtp_server.messages}) == 40  # none twice


async def test_starttls_with_trusted_ca_and_auth(smtp_server_starttls, make_sender, enqueue, outbox_store):
    await enqueue(2)
    sender = make_sender(smtp_server_starttls.settings())
    assert await sender.drain_once() == 2
    assert len(smtp_server_starttls.messages) == 2
    assert smtp_server_starttls.authenticator.attempts == 1
    assert await states(outbox_store) == {"pending": 0, "sent": 2, "failed": 0}


async def test_starttls_untrusted_ca_fails_closed_and_retries(smtp_server_starttls, make_sender, enqueue, outbox_store, tmp_path, clock):
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    await enqueue(1)
    sender = make_sender(smtp_server_starttls.settings(smtp_ca_file=str(other)))
    assert await sender.drain_once() == 1
    assert smtp_server_starttls.messages == []
    [row] = await outbox_store.list_notifications(None, 10, 0)
    assert row.state == "pending" and row.attempts == 1
    assert "certificate" in (row.last_error or "").lower()
    assert row.next_attempt_at > clock.now_ms()


async def test_starttls_never_downgrades_to_plain(smtp_server, make_sender, enqueue, outbox_store):
    """A relay that offers no STARTTLS gets nothing when security is starttls."""
    await enqueue(1)
    sender = make_sender(smtp_server.settings(smtp_security="starttls"))
    assert await sender.drain_once() == 1
    assert smtp_server.messages == []
    [row] = await outbox_store.list_notifications(None, 10, 0)
    assert row.state == "pending" and row.last_error


async def test_implicit_tls_with_auth(smtp_server_tls, make_sender, enqueue):
    await enqueue(3)
    sender = make_sender(smtp_server_tls.settings())
    assert await sender.drain_once() == 3
    assert len(smtp_server_tls.messages) == 3
    assert smtp_server_tls.sessions == 1


async def test_wrong_password_is_retried_not_failed(smtp_server_starttls, make_sender, enqueue, outbox_store):
    await enqueue(1)
    sender = make_sender(smtp_server_starttls.settings(smtp_password="wrong"))
    await sender.drain_once()
    [row] = await outbox_store.list_notifications(None, 10, 0)
    assert row.state == "pending" and "login" in (row.last_error or "").lower()
    assert smtp_server_starttls.messages == []


async def test_451_is_retried_later_and_delivered_once(smtp_server, make_sender, enqueue, outbox_store, clock):
    await enqueue(1)
    smtp_server.tempfail_next(2)
    sender = make_sender(smtp_server.settings())
    assert await sender.drain_once() == 1
    [row] = await outbox_store.list_notifications(None, 10, 0)
    assert row.state == "pending" and row.last_error.startswith("451")
    assert await sender.drain_once() == 0  # not due yet: backoff
    clock.advance(1 * MIN)
    assert await sender.drain_once() == 1  # second 451
    assert await sender.drain_once() == 0
    clock.advance(3 * MIN)
    assert await sender.drain_once() == 1
    clock.advance(60 * MIN)
    assert await sender.drain_once() == 0
    assert len(smtp_server.messages) == 1
    assert smtp_server.handler.rejected == ["451", "451"]
    [row] = await outbox_store.list_notifications(None, 10, 0)
    assert row.state == "sent" and row.attempts == 3


async def test_550_fails_for_good_and_the_burst_goes_on(smtp_server, make_sender, enqueue, outbox_store, clock):
    await enqueue(3)
    smtp_server.permfail_next(1)
    sender = make_sender(smtp_server.settings())
    assert await sender.drain_once() == 3
    clock.advance(48 * 60 * MIN)
    assert await sender.drain_once() == 0
    assert len(smtp_server.messages) == 2
    assert smtp_server.sessions == 1
    failed = [n for n in await outbox_store.list_notifications(None, 10, 0) if n.state == "failed"]
    assert len(failed) == 1 and failed[0].last_error.startswith("550") and "no such user" in failed[0].last_error


async def test_smtp_down_then_up_delivers_all_once(smtp_server, make_sender, enqueue, outbox_store, clock):
    await enqueue(5)
    smtp_server.stop()
    sender = make_sender(smtp_server.settings())
    assert await sender.drain_once() == 5
    assert await states(outbox_store) == {"pending": 5, "sent": 0, "failed": 0}
    rows = await outbox_store.list_notifications(None, 10, 0)
    assert all("connection" in (r.last_error or "") for r in rows)
    smtp_server.start()
    assert await sender.drain_once() == 0  # backoff holds them
    clock.advance(1 * MIN)
    assert await sender.drain_once() == 5
    clock.advance(24 * 60 * MIN)
    assert await sender.drain_once() == 0
    assert sorted(m["To"] for m in smtp_server.messages) == sorted(r.to_addr for r in rows)
    assert await states(outbox_store) == {"pending": 0, "sent": 5, "failed": 0}


async def test_gives_up_after_a_day(smtp_server, make_sender, enqueue, outbox_store, clock):
    await enqueue(1)
    smtp_server.stop()
    sender = make_sender(smtp_server.settings())
    await sender.drain_once()
    clock.advance(GIVE_UP_MS)
    assert await sender.drain_once() == 1
    [row] = await outbox_store.list_notifications(None, 10, 0)
    assert row.state == "failed" and row.last_error.startswith("gave up after 2 attempts")


async def test_dead_workers_lease_is_taken_over_after_expiry(smtp_server, make_sender, enqueue, outbox_store, clock):
    await enqueue(2)
    claimed = await outbox_store.claim_outbox("dead-process", clock.now_ms(), 5 * MIN, 10)
    assert len(claimed) == 2
    sender = make_sender(smtp_server.settings())
    assert await sender.drain_once() == 0  # lease still alive
    clock.advance(5 * MIN + 1)
    assert await sender.drain_once() == 2
    assert len(smtp_server.messages) == 2
    # the dead process wakes up: its fenced writes change nothing
    assert not await outbox_store.mark_sent(claimed[0].id, "dead-process", clock.now_ms())
    assert not await outbox_store.mark_failed(claimed[1].id, "dead-process", "late", clock.now_ms())
    assert await states(outbox_store) == {"pending": 0, "sent": 2, "failed": 0}


async def test_two_senders_never_send_a_row_twice(smtp_server, make_sender, enqueue):
    import asyncio

    await enqueue(30)
    a = make_sender(smtp_server.settings(), owner="worker-a")
    b = make_sender(smtp_server.settings(), owner="worker-b")
    handled = await asyncio.gather(a.drain_once(), b.drain_once())
    assert sum(handled) == 30
    assert sorted(m["To"] for m in smtp_server.messages) == sorted(f"user{i}@example.org" for i in range(30))


async def test_rate_limit_caps_claims_per_bucket(smtp_server, make_sender, enqueue, outbox_store, clock):
    await enqueue(12)
    sender = make_sender(smtp_server.settings(), mail_rate_per_minute=5)
    assert await sender.drain_once() == 5
    assert await sender.drain_once() == 0  # bucket empty, the clock has not moved
    clock.advance(24_000)  # 2 tokens at 5/min
    assert await sender.drain_once() == 2
    clock.advance(10 * MIN)  # refills to the capacity (5), never more
    assert await sender.drain_once() == 5
    assert len(smtp_server.messages) == 12


async def test_no_smtp_host_means_no_sending(make_sender, enqueue, outbox_store):
    await enqueue(2)
    sender = make_sender({"smtp_host": ""})
    await sender.start()
    assert not sender.running
    assert await sender.drain_once() == 0
    await sender.stop()
    assert await states(outbox_store) == {"pending": 2, "sent": 0, "failed": 0}


async def test_background_task_drains(smtp_server, make_sender, enqueue):
    sender = make_sender(smtp_server.settings())
    await sender.start()
    try:
        await enqueue(3)
        sender.wake()
        assert len(await smtp_server.wait_for(3)) == 3
    finally:
        await sender.stop()
    assert not sender.running


async def test_crlf_in_address_fails_permanently_without_injection(smtp_server, make_sender, outbox_store, clock):
    from qjm_jupyter_server.notify.messages import MessageFactory
    from qjm_jupyter_server.settings import Settings

    from .conftest import a_user

    n = MessageFactory(Settings()).test_message(a_user(email="x@example.org\r\nBcc: evil@example.org"), clock.now_ms())
    await outbox_store.enqueue([n])
    sender = make_sender(smtp_server.settings())
    assert await sender.drain_once() == 1
    assert smtp_server.messages == []
    [row] = await outbox_store.list_notifications(None, 10, 0)
    assert row.state == "failed"
