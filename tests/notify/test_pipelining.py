"""SMTP PIPELINING (RFC 2920): a burst over real aiosmtpd relays that advertise it.

Each test runs the real sender against a real relay, through a real TCP proxy on
127.0.0.1 that counts the chunks the client writes: a client that waits for every reply
writes once per command (four per message), a pipelining one once per message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterator

import pytest

from qjm_jupyter_server.notify.pipelining import wire_content
from tests.fixtures.smtp import SMTPTestServer, serve
from tests.fixtures.tcp_proxy import DelayProxy

MIN = 60_000


async def states(store) -> dict[str, int]:
    return {s: await store.count_outbox(s) for s in ("pending", "sent", "failed")}


@pytest.fixture(params=["none", "starttls"])
def relay(request, tmp_path, smtp_ca) -> Iterator[SMTPTestServer]:
    """A pipelining relay: plain, or STARTTLS with AUTH (trustme CA, verified)."""
    mode = request.param
    yield from serve(SMTPTestServer(tmp_path, mode=mode, auth=mode != "none", ca=smtp_ca if mode != "none" else None))


@pytest.fixture
def proxy_for(jp_asyncio_loop) -> Iterator[Callable[[SMTPTestServer], Awaitable[DelayProxy]]]:
    """A counting proxy in front of a relay (sync fixture on the tests' loop)."""
    proxies: list[DelayProxy] = []

    async def make(server: SMTPTestServer) -> DelayProxy:
        proxy = DelayProxy(server.host, server.port)
        await proxy.start()
        proxies.append(proxy)
        return proxy

    yield make
    for p in proxies:
        jp_asyncio_loop.run_until_complete(p.stop())


def received_by(server: SMTPTestServer) -> Counter[str]:
    return Counter(str(m["To"]) for m in server.messages)


async def test_burst_is_pipelined_and_delivers_each_once_with_its_envelope(relay, make_sender, enqueue, outbox_store, proxy_for):
    n = 30
    rows = await enqueue(n)
    proxy = await proxy_for(relay)
    sender = make_sender(relay.settings(smtp_port=proxy.port))
    assert await sender.drain_once() == n
    assert received_by(relay) == Counter(r.to_addr for r in rows)  # every one, once
    assert sorted(relay.handler.envelopes) == sorted(("qjm@notify.test", [r.to_addr]) for r in rows)
    for msg in relay.messages:  # the content matches its envelope
        assert msg["Message-ID"].strip() == f"<qjm.{next(r.id for r in rows if r.to_addr == msg['To'])}@notify.test>"
    assert await states(outbox_store) == {"pending": 0, "sent": n, "failed": 0}
    assert sender.sessions_opened == 1 and relay.sessions == 1
    # Waiting for every reply takes 4 writes per message (MAIL, RCPT, DATA, content):
    # 122 on the old code. Pipelined, content + the next MAIL/RCPT/DATA is one write:
    # n + 1 for the burst, plus the session's own: EHLO and QUIT (plain: 33 seen), and
    # STARTTLS, two TLS handshake flights, EHLO again and AUTH (STARTTLS: 38 seen).
    # The n // 4 is slack for a write the kernel happens to split.
    handshake = 2 if relay.mode == "none" else 8
    assert proxy.chunks_up <= n + 1 + handshake + n // 4, proxy.chunks_up


async def test_relay_without_pipelining_gets_one_command_at_a_time(tmp_path, make_sender, enqueue, outbox_store, proxy_for):
    relay = SMTPTestServer(tmp_path, mode="none", pipelining=False)
    relay.start()
    try:
        rows = await enqueue(10)
        proxy = await proxy_for(relay)
        sender = make_sender(relay.settings(smtp_port=proxy.port))
        assert await sender.drain_once() == 10
        assert received_by(relay) == Counter(r.to_addr for r in rows)
        assert await states(outbox_store) == {"pending": 0, "sent": 10, "failed": 0}
        assert relay.sessions == 1
        assert proxy.chunks_up >= 4 * 10  # nothing was pipelined
    finally:
        relay.stop()


async def test_pipelining_off_in_the_sender_uses_the_old_path(smtp_server, make_sender, enqueue, proxy_for):
    await enqueue(10)
    proxy = await proxy_for(smtp_server)
    sender = make_sender(smtp_server.settings(smtp_port=proxy.port))
    sender.pipelining = False
    assert await sender.drain_once() == 10
    assert len(smtp_server.messages) == 10
    assert proxy.chunks_up >= 4 * 10


async def test_recipient_refused_mid_burst_fails_only_that_message(relay, make_sender, enqueue, outbox_store, clock):
    rows = await enqueue(8)
    relay.refuse_rcpt("user3@example.org")
    sender = make_sender(relay.settings())
    assert await sender.drain_once() == 8
    clock.advance(48 * 60 * MIN)
    assert await sender.drain_once() == 0  # failed for good, not retried
    assert received_by(relay) == Counter(r.to_addr for r in rows if r.to_addr != "user3@example.org")
    # the message after the refused one went out after an RSET, with its own envelope
    assert ("qjm@notify.test", ["user4@example.org"]) in relay.handler.envelopes
    assert relay.sessions == 1
    assert await states(outbox_store) == {"pending": 0, "sent": 7, "failed": 1}
    [failed] = [n for n in await outbox_store.list_notifications(None, 10, 0) if n.state == "failed"]
    assert failed.to_addr == "user3@example.org"
    assert "550" in failed.last_error and "no such user" in failed.last_error


async def test_temporary_refusals_mid_burst_are_retried_and_delivered_once(relay, make_sender, enqueue, outbox_store, clock):
    rows = await enqueue(6)
    relay.refuse_rcpt("user2@example.org", "451 4.7.1 <{a}>: greylisted, try again later")
    sender = make_sender(relay.settings())
    assert await sender.drain_once() == 6
    assert await states(outbox_store) == {"pending": 1, "sent": 5, "failed": 0}
    [pending] = [n for n in await outbox_store.list_notifications(None, 10, 0) if n.state == "pending"]
    assert pending.to_addr == "user2@example.org" and "451" in pending.last_error
    relay.handler.refuse_rcpt.clear()
    relay.tempfail_next(1)  # and the retry's end of data gets a 451 too
    clock.advance(1 * MIN)
    assert await sender.drain_once() == 1
    assert await states(outbox_store) == {"pending": 1, "sent": 5, "failed": 0}
    clock.advance(3 * MIN)
    assert await sender.drain_once() == 1
    assert received_by(relay) == Counter(r.to_addr for r in rows)
    assert await states(outbox_store) == {"pending": 0, "sent": 6, "failed": 0}


@pytest.mark.parametrize("after_store", [True, False], ids=["taken-then-dropped", "dropped-before-taken"])
async def test_connection_dropped_mid_burst_loses_nothing(relay, make_sender, enqueue, outbox_store, clock, after_store):
    rows = await enqueue(10)
    relay.drop_next(1, skip=4, after_store=after_store)  # at the end of the 5th message's data
    sender = make_sender(relay.settings())
    assert await sender.drain_once() == 10
    got = received_by(relay)
    assert set(got) == {r.to_addr for r in rows}  # nothing lost
    duplicated = {a for a, k in got.items() if k > 1}
    # Only the message whose end-of-data reply never came can arrive twice; the next
    # message's MAIL/RCPT/DATA were in flight too but no content of it was sent.
    assert duplicated == ({"user4@example.org"} if after_store else set())
    assert await states(outbox_store) == {"pending": 0, "sent": 10, "failed": 0}
    assert relay.handler.dropped == 1 and sender.sessions_opened == 2


async def test_relay_that_keeps_dropping_leaves_the_unacknowledged_unsent(relay, make_sender, enqueue, outbox_store, clock):
    rows = await enqueue(6)
    relay.drop_next(50, skip=2, after_store=True)  # takes the 3rd message, never answers, forever
    sender = make_sender(relay.settings())
    assert await sender.drain_once() == 6
    # The 3rd message reached the relay (twice: the first drop gets one resend at once),
    # but its end-of-data 250 was never read, so it is not marked sent.
    assert received_by(relay) == Counter({"user0@example.org": 1, "user1@example.org": 1, "user2@example.org": 2})
    assert await states(outbox_store) == {"pending": 4, "sent": 2, "failed": 0}
    pending = [n for n in await outbox_store.list_notifications(None, 10, 0) if n.state == "pending"]
    assert {n.to_addr for n in pending} == {r.to_addr for r in rows[2:]}
    assert all(n.next_attempt_at > clock.now_ms() for n in pending)  # retried after the backoff
    relay.handler._drops.clear()
    clock.advance(1 * MIN)
    assert await sender.drain_once() == 4
    assert set(received_by(relay)) == {r.to_addr for r in rows}
    assert await states(outbox_store) == {"pending": 0, "sent": 6, "failed": 0}


def test_content_is_dot_stuffed_and_terminated() -> None:
    assert wire_content(b"a\n.b\r\n..c\rd") == b"a\r\n..b\r\n...c\r\nd\r\n.\r\n"
    assert wire_content(b".\r\n") == b"..\r\n.\r\n"


async def test_reply_reader_splits_replies_however_the_bytes_arrive() -> None:
    """Several replies in one read, one reply over several reads, multi-line replies."""
    import asyncio

    from qjm_jupyter_server.notify.pipelining import ReplyReader

    reader = ReplyReader(asyncio.Protocol())
    reader.data_received(b"250 2.1.0 OK\r\n250-first\r\n25")
    reader.data_received(b"0 second\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
    got = [await reader.reply(1) for _ in range(3)]
    assert [(r.code, r.message) for r in got] == [(250, "2.1.0 OK"), (250, "first\nsecond"), (354, "End data with <CR><LF>.<CR><LF>")]
    assert reader.idle
    reader.data_received(b"not a reply\r\n")
    with pytest.raises(Exception, match="Malformed"):
        await reader.reply(1)
    assert not reader.idle


async def test_relay_that_stops_answering_mid_burst_leaves_the_unacknowledged_unsent(relay, make_sender, enqueue, outbox_store, clock):
    rows = await enqueue(6)
    relay.stall_next(3.0, skip=2)  # takes the 3rd message, answers after the client gave up
    sender = make_sender(relay.settings(), smtp_timeout=0.5)
    assert await sender.drain_once() == 6
    assert await states(outbox_store) == {"pending": 4, "sent": 2, "failed": 0}
    pending = [n for n in await outbox_store.list_notifications(None, 10, 0) if n.state == "pending"]
    assert {n.to_addr for n in pending} == {r.to_addr for r in rows[2:]}
    assert all("timed out" in (n.last_error or "") or "stopped" in (n.last_error or "") for n in pending)
    assert received_by(relay)["user2@example.org"] == 1  # taken, but its 250 was never read: not marked sent
    clock.advance(1 * MIN)
    assert await sender.drain_once() == 4
    got = received_by(relay)
    assert set(got) == {r.to_addr for r in rows} and {a for a, k in got.items() if k > 1} <= {"user2@example.org"}
    assert await states(outbox_store) == {"pending": 0, "sent": 6, "failed": 0}
