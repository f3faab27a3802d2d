"""The sender task: drains the outbox over SMTP (aiosmtplib).

Rows are leased (`claim_outbox`), so several server processes sharing one database
never send the same row twice while a lease lives, and a row leased by a process that
died is picked up once its lease expires. A burst goes over one connection per worker
(at most `mail_concurrency` workers, at most PER_CONNECTION messages per connection),
under a token bucket of `mail_rate_per_minute`.

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
from email.message import EmailMessage

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
from .outcomes import Outcome, classify
from .ratelimit import TokenBucket
from .sealing import is_sealed, unseal

log = logging.getLogger("qjm.mail")


class _ConnectionDown(Exception):
    """A worker could not (re)connect; the rows it holds go back for a later retry."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


class Sender(Drainer):
    task_name = "qjm-mail-sender"
    what = "email"
    batch_limit: int = 100  # rows claimed per drain
    per_connection: int = 100  # reconnect after this many messages (providers drop long sessions)
    spread: int = 10  # open another connection only for every this many rows

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

    async def _connect(self) -> aiosmtplib.SMTP:
        smtp = self._client()
        try:
            async with asyncio.timeout(self._overall_timeout):
                await smtp.connect()
        except Exception as exc:  # noqa: BLE001 - classified
            smtp.close()
            raise _ConnectionDown(classify(exc)) from exc
        self.sessions_opened += 1
        return smtp

    async def _send(self, smtp: aiosmtplib.SMTP, msg: EmailMessage, row: Notification) -> None:
        sender = envelope_from(self.settings.mail_from)
        raw, utf8 = flatten(msg, sender, [row.to_addr])
        if utf8 and not smtp.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported("an address is not ASCII and the relay does not support SMTPUTF8")
        async with asyncio.timeout(self._overall_timeout):
            await smtp.sendmail(sender, [row.to_addr], raw, mail_options=["SMTPUTF8"] if utf8 else [])

    @staticmethod
    async def _close(smtp: aiosmtplib.SMTP | None) -> None:
        if smtp is None:
            return
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

    async def _worker(self, queue: deque[Notification]) -> None:
        """Send rows from the shared queue over one connection, reconnecting as needed."""
        smtp: aiosmtplib.SMTP | None = None
        on_this_connection = 0
        try:
            while queue:
                row = queue.popleft()
                try:
                    msg = build_message(self._open(row), self.settings.mail_from, self.clock.now_ms())
                except Exception as exc:  # noqa: BLE001 - a bad address or header is permanent
                    await self._settle(row, Outcome(False, f"cannot build message: {exc}"[:300]))
                    continue
                for attempt in (1, 2):  # one reconnect if the relay dropped an idle session
                    if smtp is None or not smtp.is_connected or on_this_connection >= self.per_connection:
                        await self._close(smtp)
                        smtp, on_this_connection = None, 0
                        try:
                            smtp = await self._connect()
                        except _ConnectionDown:
                            queue.appendleft(row)
                            raise
                    try:
                        await self._send(smtp, msg, row)
                    except Exception as exc:  # noqa: BLE001 - classified
                        outcome = classify(exc)
                        if outcome.connection:
                            await self._close(smtp)
                            smtp = None
                            if attempt == 1 and isinstance(exc, aiosmtplib.SMTPServerDisconnected):
                                continue
                        await self._settle(row, outcome)
                        if outcome.connection:
                            # a timeout or TLS failure mid-send: leave the rest for the next pass
                            raise _ConnectionDown(outcome) from exc
                        break
                    on_this_connection += 1
                    await self._settle(row, None)
                    break
        finally:
            await self._close(smtp)

    # -- outbox bookkeeping ----------------------------------------------------------------------
    async def _settle(self, row: Notification, outcome: Outcome | None) -> None:
        await self.record(row, None if outcome is None else (outcome.temporary, outcome.reason))
