"""The sender task: drains the outbox over SMTP (aiosmtplib).

Rows are leased (`claim_outbox`), so several server processes sharing one database
never send the same row twice while a lease lives, and a row leased by a process that
died is picked up once its lease expires. A burst goes over one connection per worker
(at most `mail_concurrency` workers, at most `per_connection` messages per connection),
under a token bucket of `mail_rate_per_minute`. When the relay advertises PIPELINING,
a connection carries a message per round trip instead of four (see pipelining.py).

TLS: `tls` is implicit TLS (465), `starttls` requires STARTTLS (587) and fails closed
when the relay does not offer it, `none` sends in cleartext and is meant for a relay
on localhost or a trusted local network only. Certificates are always verified, against
the system store or `smtp_ca_file`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from collections import deque
from dataclasses import dataclass

import aiosmtplib

from ..clock import Clock
from ..domain import Notification
from ..settings import Settings
from ..store import Store
from ..secrets import KeyRing
from .digest import release_held
from .drainer import Drainer
from .messages import MessageFactory
from .mime import build_message, envelope_from, flatten
from . import pipelining
from .outcomes import Outcome, classify
from .pipelining import Envelope, Pipeline, PipelineBroken
from .ratelimit import TokenBucket
from .sealing import is_sealed, unseal

log = logging.getLogger("qjm.mail")


class _ConnectionDown(Exception):
    """A worker could not (re)connect; the rows it holds go back for a later retry."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


@dataclass
class _Session:
    """One SMTP connection and how many messages it has carried."""

    smtp: aiosmtplib.SMTP
    messages: int = 0


class Sender(Drainer):
    task_name = "qjm-mail-sender"
    what = "email"
    batch_limit: int = 100  # rows claimed per drain
    per_connection: int = 100  # reconnect after this many messages (providers drop long sessions)
    spread: int = 10  # open another connection only for every this many rows
    pipelining: bool = True  # RFC 2920 when the relay offers it (benchmarks turn it off to compare)

    @property
    def lease_ms(self) -> int:
        """How long a claimed row is ours: after a crash, another process resends it after this."""
        return int(self.settings.mail_lease_seconds * 1000)

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Clock,
        owner: str,
        keyring: KeyRing | None = None,
        messages: MessageFactory | None = None,
    ) -> None:
        super().__init__(store, clock, owner)
        self.settings = settings
        self.keyring = keyring  # opens sealed rows (mail with a link); None: no row is sealed
        self.messages = messages  # for summaries of held mail (quiet hours, digests)
        self._bucket: TokenBucket | None = None
        self._bucket_rate = 0
        self._tls: tuple[str, ssl.SSLContext] | None = None
        self.sessions_opened = 0  # for benchmarks and logs

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            return
        if not self.settings.smtp_host:
            log.info("qjm: smtp_host is empty, so email is off; notifications stay in the outbox and the Lab panel")
            return
        await super().start()
        log.info("qjm: mail via %s:%s (%s)", self.settings.smtp_host, self.settings.effective_smtp_port, self.settings.smtp_security)

    # -- one pass -------------------------------------------------------------------------------
    def _take_tokens(self, wanted: int, now: int) -> int:
        rate = self.settings.mail_rate_per_minute
        if self._bucket is None or rate != self._bucket_rate:
            self._bucket, self._bucket_rate = TokenBucket(rate, now), rate
        return self._bucket.take(wanted, now)

    async def drain_once(self) -> int:
        """Claim what is due (within the rate limit) and try each row once.

        Returns how many rows were handled (sent, failed or rescheduled), 0 when nothing
        was due, the bucket was empty or mail is off."""
        if not self.settings.smtp_host:
            return 0
        now = self.clock.now_ms()
        if self.messages is not None:
            await release_held(self.store, self.messages, now)
        allowed = self._take_tokens(self.batch_limit, now)
        if allowed <= 0:
            return 0
        rows = await self.store.claim_outbox(self.owner, now, self.lease_ms, allowed)
        assert self._bucket is not None
        self._bucket.give_back(allowed - len(rows))
        if not rows:
            return 0
        queue: deque[Notification] = deque(rows)
        workers = min(max(1, self.settings.mail_concurrency), max(1, math.ceil(len(rows) / self.spread)))
        results = await asyncio.gather(*(self._worker(queue) for _ in range(workers)), return_exceptions=True)
        down = next((r.outcome for r in results if isinstance(r, _ConnectionDown)), None)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, _ConnectionDown):
                log.error("qjm: mail worker crashed: %r", r)
        # Rows no worker could take (every connection failed) are retried later.
        leftover = down or Outcome(True, "mail worker stopped early", connection=True)
        while queue:
            await self._settle(queue.popleft(), leftover)
        return len(rows)

    # -- SMTP -----------------------------------------------------------------------------------
    def _tls_context(self) -> ssl.SSLContext:
        cafile = self.settings.smtp_ca_file
        if self._tls is None or self._tls[0] != cafile:
            self._tls = (cafile, ssl.create_default_context(cafile=cafile or None))
        return self._tls[1]

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        security = s.smtp_security if s.smtp_security in ("tls", "starttls", "none") else "starttls"
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.effective_smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
            timeout=s.smtp_timeout,
            use_tls=security == "tls",
            start_tls=security == "starttls",  # True: fail closed; False: never (not None = opportunistic)
            validate_certs=True,
            tls_context=self._tls_context(),
        )

    @property
    def _overall_timeout(self) -> float:
        """aiosmtplib's timeout is per socket operation; this bounds a whole step."""
        return max(1.0, self.settings.smtp_timeout * 3)

    async def _connect(self) -> _Session:
        smtp = self._client()
        try:
            async with asyncio.timeout(self._overall_timeout):
                await smtp.connect()
                if smtp.is_ehlo_or_helo_needed:  # no STARTTLS or AUTH: nothing has asked for the extensions yet
                    await smtp.ehlo()
        except Exception as exc:  # noqa: BLE001 - classified
            smtp.close()
            raise _ConnectionDown(classify(exc)) from exc
        self.sessions_opened += 1
        return _Session(smtp)

    def _envelope(self, row: Notification) -> Envelope:
        """The message to send for a row (raises when it cannot be built)."""
        msg = build_message(self._open(row), self.settings.mail_from, self.clock.now_ms())
        sender = envelope_from(self.settings.mail_from)
        raw, utf8 = flatten(msg, sender, [row.to_addr])
        return Envelope(row, sender, [row.to_addr], raw, utf8)

    def _unsendable(self, smtp: aiosmtplib.SMTP, env: Envelope) -> Outcome | None:
        if env.utf8 and not smtp.supports_extension("smtputf8"):
            return Outcome(True, "an address is not ASCII and the relay does not support SMTPUTF8")
        return None

    @staticmethod
    async def _close(session: _Session | None) -> None:
        if session is None:
            return
        smtp = session.smtp
        try:
            if smtp.is_connected:
                async with asyncio.timeout(5):
                    await smtp.quit()
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        finally:
            smtp.close()

    def _open(self, row: Notification) -> Notification:
        if not is_sealed(row):
            return row
        if self.keyring is None:
            raise ValueError("a sealed email needs the key ring to be opened")
        return unseal(self.keyring, row)

    async def _next_envelope(self, queue: deque[Notification], smtp: aiosmtplib.SMTP) -> Envelope | None:
        """Pop rows until one can be sent; rows that cannot be built fail for good."""
        while queue:
            row = queue.popleft()
            try:
                env = self._envelope(row)
            except Exception as exc:  # noqa: BLE001 - a bad address or header is permanent
                await self._settle(row, Outcome(False, f"cannot build message: {exc}"[:300]))
                continue
            unsendable = self._unsendable(smtp, env)
            if unsendable is not None:
                await self._settle(row, unsendable)
                continue
            return env
        return None

    async def _worker(self, queue: deque[Notification]) -> None:
        """Send rows from the shared queue over one connection at a time, reconnecting as
        needed: pipelined (RFC 2920) when the relay offers it, else one reply at a time."""
        session: _Session | None = None
        resent: set[str] = set()  # rows already sent again once after a dropped connection
        try:
            while queue:
                if session is None or not session.smtp.is_connected or session.messages >= self.per_connection:
                    await self._close(session)
                    session = None
                    held = queue.popleft()  # so that no other worker leaves this connection with nothing to send
                    try:
                        session = await self._connect()  # _ConnectionDown: the rows stay queued
                    finally:
                        queue.appendleft(held)  # taken back below, before any await
                if self.pipelining and pipelining.offered(session.smtp):
                    ok = await self._send_pipelined(session, queue, resent)
                else:
                    ok = await self._send_next(session, queue, resent)
                if not ok:
                    await self._close(session)
                    session = None
        finally:
            await self._close(session)

    async def _send_next(self, session: _Session, queue: deque[Notification], resent: set[str]) -> bool:
        """One message, waiting for each reply (aiosmtplib's `sendmail`). False: the
        connection is gone."""
        env = await self._next_envelope(queue, session.smtp)
        if env is None:
            return True
        row: Notification = env.key  # type: ignore[assignment]
        try:
            async with asyncio.timeout(self._overall_timeout):
                await session.smtp.sendmail(env.sender, env.recipients, env.content, mail_options=["SMTPUTF8"] if env.utf8 else [])
        except Exception as exc:  # noqa: BLE001 - classified
            outcome = classify(exc)
            if not outcome.connection:
                await self._settle(row, outcome)
                return session.smtp.is_connected
            await self._lost(queue, [row], resent, exc, outcome)
            return False
        session.messages += 1
        await self._settle(row, None)
        return True

    async def _send_pipelined(self, session: _Session, queue: deque[Notification], resent: set[str]) -> bool:
        """Messages from the queue over this session, one round trip each, until the queue
        is empty or the session has carried `per_connection`. False: the connection is gone."""

        async def take() -> Envelope | None:
            if session.messages >= self.per_connection:
                return None
            env = await self._next_envelope(queue, session.smtp)
            if env is not None:
                session.messages += 1
            return env

        async def done(env: Envelope, exc: BaseException | None) -> None:
            await self._settle(env.key, None if exc is None else classify(exc))  # type: ignore[arg-type]

        try:
            async with Pipeline(session.smtp, self.settings.smtp_timeout, self._overall_timeout) as pipe:
                await pipe.run(take, done)  # raises only PipelineBroken for the session's failures
        except PipelineBroken as broken:
            rows: list[Notification] = [e.key for e in broken.unacknowledged]  # type: ignore[misc]
            outcome = classify(broken.cause)
            if not outcome.connection:  # a refused RSET, a garbled reply: the session failed, not the messages
                outcome = Outcome(True, f"SMTP session failed: {outcome.reason}"[:300], connection=True)
            await self._lost(queue, rows, resent, broken.cause, outcome)
            return False
        except aiosmtplib.SMTPServerDisconnected as exc:  # gone before the first group
            raise _ConnectionDown(classify(exc)) from exc
        return True

    async def _lost(
        self, queue: deque[Notification], rows: list[Notification], resent: set[str], exc: BaseException, outcome: Outcome,
    ) -> None:
        """The connection failed with `rows` unacknowledged: nothing is marked sent.

        A dropped session (idle timeout, a relay restart) gets one more try at once, on a
        new connection; a row that was in flight twice, or a timeout or TLS failure, is
        retried after the backoff, and the worker stops (the rest wait for the next pass).
        A relay that took a message but dropped before its reply gets it again: at least
        once, and the stable Message-ID lets the receiving side drop the copy."""
        again = [r for r in rows if r.id not in resent] if isinstance(exc, aiosmtplib.SMTPServerDisconnected) else []
        resent.update(r.id for r in again)
        queue.extendleft(reversed(again))
        given_up = [r for r in rows if r not in again]
        for row in given_up:
            await self._settle(row, outcome)
        if given_up:
            raise _ConnectionDown(outcome) from exc

    # -- outbox bookkeeping ----------------------------------------------------------------------
    async def _settle(self, row: Notification, outcome: Outcome | None) -> None:
        await self.record(row, None if outcome is None else (outcome.temporary, outcome.reason))
