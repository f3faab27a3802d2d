"""SMTP command pipelining (RFC 2920) over a session that aiosmtplib opened.

Why: over a real link each SMTP reply the client waits for costs a round trip. A reused
aiosmtplib session still waits four times per message (MAIL, RCPT, DATA, end of data).
With PIPELINING, which the relay advertises in its EHLO reply, a message costs about one:
MAIL FROM, every RCPT TO and DATA go as one group, and a message's content with its
end-of-data dot goes in the same write as the NEXT message's MAIL/RCPT/DATA (RFC 2920
§3.1: "The actual transfer of message content is explicitly allowed to be the first
'command' in a group"). DATA must end a group, so one round trip per message is the floor.

Why here and not in aiosmtplib: aiosmtplib (5.x) has no pipelining, and its
`SMTPProtocol` holds one reply at a time: bytes that arrive while a parsed reply waits to
be picked up are dropped, and a second reply already in its buffer is only parsed when
more bytes arrive, so several replies in flight at once get lost or hang. aiosmtplib
still does everything security-sensitive: connecting, certificate verification, EHLO,
STARTTLS and AUTH. For the pipelined part `Pipeline` borrows the session's transport
(`transport.set_protocol`, public asyncio API) for a `ReplyReader` that queues every
reply in order, and hands it back once every reply has been read, so `quit()` and the
rest of aiosmtplib work on the session afterwards. Addresses go through aiosmtplib's
`quote_address`, which refuses anything that could inject a command.

Every reply is checked (RFC 2920 §3.1 requires it). A refused MAIL, all recipients
refused, or a refused DATA fails that message only; an RSET then opens the next group.
A message counts as accepted only once its end-of-data 250 has been read: a connection
lost or a reply timed out mid-group raises `PipelineBroken` naming every message whose
fate is unknown, and the caller leaves those in the outbox (at least once).
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib
from aiosmtplib import SMTPResponse
from aiosmtplib.email import quote_address

LINE_ENDINGS = re.compile(rb"\r\n|\n|\r(?!\n)")
LEADING_DOT = re.compile(rb"(?m)^\.")
CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
MAX_LINE = 8192
MAX_REPLY = MAX_LINE * 4  # bounds memory if a server streams lines with no end


def wire_content(message: bytes) -> bytes:
    """The DATA payload: CRLF line endings, dot-stuffed (RFC 5321 §4.5.2), ended by '.'."""
    message = LINE_ENDINGS.sub(b"\r\n", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return LEADING_DOT.sub(b"..", message) + b".\r\n"


def command(*args: bytes) -> bytes:
    for arg in args:
        if CONTROL.search(arg):
            raise ValueError("an SMTP command argument contains a control character")
    return b" ".join(args) + b"\r\n"


@dataclass
class Envelope:
    """One message to send: who from, to whom, and its flattened bytes."""

    key: Hashable  # the caller's handle on it (an outbox row)
    sender: str
    recipients: list[str]
    content: bytes
    utf8: bool = False  # needs SMTPUTF8
    _payload: bytes | None = field(default=None, repr=False)

    @property
    def payload(self) -> bytes:
        if self._payload is None:
            self._payload = wire_content(self.content)
        return self._payload

    def opening(self, size: bool) -> bytes:
        """MAIL FROM, one RCPT TO per recipient, DATA."""
        enc = "utf-8" if self.utf8 else "ascii"
        options = []
        if size:
            options.append(b"SIZE=%d" % (len(self.payload) - 3))  # RFC 1870: the content, not the final dot
        if self.utf8:
            options.append(b"SMTPUTF8")
        out = [command(b"MAIL", b"FROM:" + quote_address(self.sender).encode(enc), *options)]
        out += [command(b"RCPT", b"TO:" + quote_address(r).encode(enc)) for r in self.recipients]
        out.append(b"DATA\r\n")
        return b"".join(out)


class PipelineBroken(Exception):
    """The session failed mid-group (connection lost, a reply timed out or was garbled).

    `unacknowledged` are the messages whose outcome is unknown: their content may or may
    not have been taken, so they must stay unsent (and be sent again)."""

    def __init__(self, cause: BaseException, unacknowledged: list[Envelope]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.unacknowledged = unacknowledged


class ReplyReader(asyncio.Protocol):
    """Parses every reply the server sends, in order, into a queue (RFC 5321 §4.2:
    `ddd-text` continues a reply, `ddd text` ends it)."""

    def __init__(self, handback: asyncio.BaseProtocol) -> None:
        self.handback = handback  # aiosmtplib's protocol: told when the connection is lost
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._replies: deque[SMTPResponse] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._paused = False
        self.failure: Exception | None = None  # set once the session is unusable

    # -- asyncio.Protocol --------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.failure is not None:
            return
        self._buffer.extend(data)
        try:
            self._parse()
        except aiosmtplib.SMTPResponseException as exc:
            self._fail(exc)
        self._wake()

    def eof_received(self) -> bool:
        self._fail(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        lost = aiosmtplib.SMTPServerDisconnected("Connection lost")
        lost.__cause__ = exc
        self._fail(lost)
        self._resume(exc)
        self.handback.connection_lost(exc)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._resume(None)

    # -- reading and writing ------------------------------------------------------------------
    def _parse(self) -> None:
        while True:
            end = 0
            lines: list[bytes] = []
            code = -1
            while True:
                nl = self._buffer.find(b"\n", end)
                if nl == -1:
                    if len(self._buffer) - end > MAX_LINE or len(self._buffer) > MAX_REPLY:
                        raise aiosmtplib.SMTPResponseException(-1, "Response too long")
                    return  # an incomplete reply: wait for more bytes
                line = bytes(self._buffer[end : nl + 1])
                end = nl + 1
                try:
                    code = int(line[:3])
                except ValueError:
                    raise aiosmtplib.SMTPResponseException(-1, f"Malformed SMTP response line: {line[:80]!r}") from None
                lines.append(line[4:].strip(b" \t\r\n"))
                if line[3:4] != b"-":
                    break
            del self._buffer[:end]
            self._replies.append(SMTPResponse(code, b"\n".join(lines).decode("utf-8", "surrogateescape")))

    def _fail(self, exc: Exception) -> None:
        if self.failure is None:
            self.failure = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _resume(self, exc: Exception | None) -> None:
        self._paused = False
        if self._drained is not None and not self._drained.done():
            if exc is None:
                self._drained.set_result(None)
            else:
                self._drained.set_exception(exc)

    @property
    def idle(self) -> bool:
        """Nothing unread and still usable: safe to hand the transport back."""
        return self.failure is None and not self._replies and not self._buffer

    async def reply(self, timeout: float | None) -> SMTPResponse:
        while not self._replies:
            if self.failure is not None:
                raise self.failure
            self._waiter = self._loop.create_future()
            try:
                await asyncio.wait_for(self._waiter, timeout)
            except (TimeoutError, asyncio.TimeoutError) as exc:
                raise aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response") from exc
            finally:
                self._waiter = None
        return self._replies.popleft()

    async def drain(self, timeout: float | None) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        if self.failure is not None:
            raise self.failure
        if not self._paused:
            return
        self._drained = self._loop.create_future()
        try:
            await asyncio.wait_for(self._drained, timeout)
        except (TimeoutError, asyncio.TimeoutError) as exc:
            raise aiosmtplib.SMTPTimeoutError("Timed out sending to the server") from exc
        except ConnectionError as exc:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost") from exc
        finally:
            self._drained = None


def offered(smtp: aiosmtplib.SMTP) -> bool:
    """Whether the relay's (latest) EHLO reply advertised PIPELINING."""
    return smtp.supports_extension("pipelining")


Take = Callable[[], Awaitable[Envelope | None]]
Done = Callable[[Envelope, BaseException | None], Awaitable[None]]


class Pipeline:
    """Sends a burst of messages over one aiosmtplib session, one group per message.

    `async with Pipeline(smtp, timeout) as pipe: await pipe.run(take, done)`: `take()`
    gives the next message (None: the burst ends), `done(envelope, None)` is called once
    its end-of-data 250 was read, `done(envelope, exc)` once the relay refused it, with
    the aiosmtplib exception its non-pipelined `sendmail` would have raised. On leaving,
    the transport goes back to aiosmtplib if every reply was read, else the session is
    closed."""

    def __init__(self, smtp: aiosmtplib.SMTP, timeout: float | None, group_timeout: float | None = None) -> None:
        self.smtp = smtp
        self.timeout = timeout  # per reply
        self.group_timeout = group_timeout  # a whole group: write, every reply, and the `done` calls
        self.groups = 0  # round trips this burst took (for tests and benchmarks)
        self._transport: asyncio.WriteTransport | None = None
        self._reader: ReplyReader | None = None

    async def __aenter__(self) -> Pipeline:
        transport: Any = self.smtp.transport
        if transport is None or transport.is_closing() or not self.smtp.is_connected:
            raise aiosmtplib.SMTPServerDisconnected("Server not connected")
        self._reader = ReplyReader(transport.get_protocol())
        transport.set_protocol(self._reader)
        self._transport = transport
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        transport, reader = self._transport, self._reader
        self._transport = self._reader = None
        if transport is None or reader is None:
            return
        if exc_info[0] is None and reader.idle and not transport.is_closing():
            transport.set_protocol(reader.handback)
        else:
            self.smtp.close()

    async def _write(self, data: bytes) -> None:
        assert self._transport is not None and self._reader is not None
        if self._reader.failure is not None:
            raise self._reader.failure
        if self._transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        self._transport.write(data)
        await self._reader.drain(self.timeout)

    async def _read(self) -> SMTPResponse:
        assert self._reader is not None
        return await self._reader.reply(self.timeout)

    async def _take(self, take: Take, outcomes: list[tuple[Envelope, BaseException | None]], size: bool) -> tuple[Envelope, bytes] | None:
        """The next message and its MAIL/RCPT/DATA; one whose address cannot go on a
        command line is refused here."""
        while (env := await take()) is not None:
            try:
                return env, env.opening(size)
            except (ValueError, UnicodeError) as exc:
                outcomes.append((env, exc))
        return None

    async def run(self, take: Take, done: Done) -> None:
        """One group per message until `take` runs dry. Local work (recording outcomes,
        building the next message) is done while a group's replies are on the wire, so
        it adds nothing to the round trip."""
        size = self.smtp.supports_extension("size")
        outcomes: list[tuple[Envelope, BaseException | None]] = []  # known, not yet passed to `done`
        ready: Envelope | None = None  # its DATA got 354: its content opens the next group
        reset = False  # the last transaction failed part-way: RSET opens the next group
        in_flight: list[Envelope] = []
        try:
            opening = await self._take(take, outcomes, size)
            while ready is not None or opening is not None or reset:  # a last RSET leaves the session clean
                group = [ready.payload] if ready is not None else []
                if reset:
                    group.append(b"RSET\r\n")
                if opening is not None:
                    group.append(opening[1])
                in_flight = [e for e in (ready, opening and opening[0]) if e is not None]
                self.groups += 1
                async with asyncio.timeout(self.group_timeout):
                    await self._write(b"".join(group))
                    # while the group travels
                    for env, exc in outcomes:
                        await done(env, exc)
                    outcomes.clear()
                    upcoming = await self._take(take, outcomes, size)
                    if upcoming is not None:
                        in_flight.append(upcoming[0])  # taken, not yet sent: unknown to the relay
                    if ready is not None:
                        end = await self._read()
                        in_flight.remove(ready)
                        outcomes.append((ready, None if end.code == 250 else aiosmtplib.SMTPDataError(end.code, end.message)))
                        ready = None
                    if reset:
                        r = await self._read()
                        if r.code != 250:  # the session is in a state we cannot reason about
                            raise aiosmtplib.SMTPResponseException(r.code, f"RSET refused: {r.message}")
                        reset = False
                    if opening is not None:
                        env = opening[0]
                        mail = await self._read()
                        rcpts = [await self._read() for _ in env.recipients]
                        data = await self._read()
                        in_flight.remove(env)
                        failure = self._refusal(env, mail, rcpts, data)
                        if failure is None:
                            ready = env
                        else:
                            outcomes.append((env, failure))
                            reset = True
                            if data.code == 354:
                                # DATA accepted with no valid transaction (RFC 2920 forbids it):
                                # the server now reads content we will not send.
                                raise aiosmtplib.SMTPResponseException(data.code, "DATA accepted after MAIL or every RCPT was refused")
                opening = upcoming
        except (aiosmtplib.SMTPException, OSError) as exc:  # TimeoutError is an OSError
            for env, outcome in outcomes:
                await done(env, outcome)
            raise PipelineBroken(exc, in_flight) from exc
        for env, outcome in outcomes:
            await done(env, outcome)

    @staticmethod
    def _refusal(env: Envelope, mail: SMTPResponse, rcpts: list[SMTPResponse], data: SMTPResponse) -> BaseException | None:
        """The exception aiosmtplib's `sendmail` raises for these replies, or None: go on.

        Some recipients refused but not all: the message goes to the others, as there."""
        refused = [
            aiosmtplib.SMTPRecipientRefused(resp.code, resp.message, r)
            for r, resp in zip(env.recipients, rcpts) if resp.code not in (250, 251)
        ]
        if mail.code != 250:
            return aiosmtplib.SMTPSenderRefused(mail.code, mail.message, env.sender)
        if len(refused) == len(rcpts):
            return aiosmtplib.SMTPRecipientsRefused(refused)
        if data.code != 354:
            return aiosmtplib.SMTPDataError(data.code, data.message)
        return None
