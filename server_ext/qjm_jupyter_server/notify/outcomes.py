"""What a failed SMTP attempt means for the outbox row: retry later, or give up now.

RFC 5321: 4xx replies are transient and 5xx permanent. Anything that breaks the
connection itself (refused, timeout, TLS verification, a dropped session, a login
the relay rejects) says nothing about the message, so it is transient and retried
with backoff: an operator can fix a relay, but a 550 "no such user" stays.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from dataclasses import dataclass

import aiosmtplib

# Delays after the 1st, 2nd, ... failed attempt; the last one repeats until the row is
# older than GIVE_UP_MS, when it is marked failed.
BACKOFF_MS: tuple[int, ...] = (30_000, 120_000, 600_000, 3_600_000, 3 * 3_600_000, 6 * 3_600_000)
GIVE_UP_MS = 24 * 3_600_000
REASON_MAX = 300


@dataclass(frozen=True)
class Outcome:
    temporary: bool
    reason: str
    connection: bool = False  # the connection is unusable: close it before going on


def _text(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:REASON_MAX]


def _code_class(code: int) -> bool:
    """True for a transient (4xx) reply code."""
    return 400 <= code < 500


def classify(exc: BaseException) -> Outcome:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        return Outcome(any(_code_class(c) for c in codes), f"recipient refused: {detail}"[:REASON_MAX])
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return Outcome(True, f"SMTP login failed: {exc.code} {exc.message}"[:REASON_MAX], connection=True)
    if isinstance(exc, (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected)):
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ssl.SSLCertVerificationError):
            return Outcome(True, f"TLS certificate not trusted: {_text(cause)}", connection=True)
        return Outcome(True, f"connection failed: {_text(exc)}", connection=True)
    if isinstance(exc, (aiosmtplib.SMTPTimeoutError, TimeoutError, asyncio.TimeoutError)):
        return Outcome(True, f"timed out: {_text(exc)}", connection=True)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        # e.g. STARTTLS required but not offered: fail closed, never fall back to cleartext
        return Outcome(True, f"relay lacks a required feature: {_text(exc)}", connection=True)
    if isinstance(exc, ssl.SSLError):
        return Outcome(True, f"TLS error: {_text(exc)}", connection=True)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return Outcome(_code_class(exc.code), f"{exc.code} {' '.join(exc.message.split())}"[:REASON_MAX])
    if isinstance(exc, OSError):
        return Outcome(True, f"network error: {_text(exc)}", connection=True)
    if isinstance(exc, aiosmtplib.SMTPException):
        return Outcome(True, f"SMTP error: {_text(exc)}", connection=True)
    return Outcome(False, f"cannot send: {type(exc).__name__}: {_text(exc)}")


def backoff_ms(attempts: int, rng: random.Random | None = None) -> int:
    """Delay before the next attempt, after `attempts` tries, with ±20 % jitter so a
    burst that failed together does not retry in lockstep."""
    base = BACKOFF_MS[min(max(attempts, 1), len(BACKOFF_MS)) - 1]
    return int(base * (rng or random).uniform(0.8, 1.2))
