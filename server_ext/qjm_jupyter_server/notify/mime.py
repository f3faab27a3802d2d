"""Turning an outbox row into an RFC 5322 message (`email.message.EmailMessage`).

Headers are set through the email package, which refuses CR/LF in values, and the
subject is re-flattened to one line in case a row was written by something else.
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from ..domain import Notification
from .facts import one_line


HEADER_POLICY = policy.default.clone(max_line_length=998)


def envelope_from(mail_from: str) -> str:
    return parseaddr(mail_from)[1] or mail_from


def _transfer_encoding(body: str) -> str:
    """Plain ASCII goes as-is (7bit; RFC 5322 allows 998-character lines), so links stay
    readable and copyable even in a raw mail dump; anything else is quoted-printable, which
    every relay accepts (8bit needs the relay's 8BITMIME)."""
    if body.isascii() and max(map(len, body.splitlines() or [""])) <= 998:
        return "7bit"
    return "quoted-printable"


def build_message(row: Notification, mail_from: str, now_ms: int) -> EmailMessage:
    sender = envelope_from(mail_from)
    domain = sender.rpartition("@")[2] or "localhost"
    # Lines up to RFC 5322's 998 characters: with the default 78, a List-Unsubscribe URL
    # longer than a line is RFC 2047-encoded ("=?utf-8?q?=3Chttps...") and no longer a URL.
    msg = EmailMessage(policy=HEADER_POLICY)
    msg["From"] = mail_from
    msg["To"] = row.to_addr
    msg["Subject"] = one_line(row.subject, 250)
    msg["Date"] = formatdate(now_ms / 1000, usegmt=True)
    # Stable per outbox row: a retry after an uncertain send (connection lost after DATA)
    # carries the same id, so receiving systems can drop the duplicate.
    msg["Message-ID"] = f"<qjm.{row.id}@{domain}>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to us
    msg["X-Auto-Response-Suppress"] = "All"
    if row.kind:
        msg["X-QJM-Kind"] = one_line(row.kind, 40)
    if row.unsubscribe_url:
        # RFC 8058 one-click: a mail provider POSTs "List-Unsubscribe=One-Click" to this URL.
        msg["List-Unsubscribe"] = f"<{one_line(row.unsubscribe_url, 900)}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    text = row.text or row.subject
    msg.set_content(text, cte=_transfer_encoding(text))
    if row.html:
        msg.add_alternative(row.html, subtype="html", cte=_transfer_encoding(row.html))
    return msg


def flatten(msg: EmailMessage, sender: str, recipients: list[str]) -> tuple[bytes, bool]:
    """The bytes to send, and whether they need SMTPUTF8.

    aiosmtplib's `send_message` re-flattens with `email.policy.SMTP` (78-character
    lines), which RFC 2047-encodes a long `List-Unsubscribe` URL; flattening here keeps
    the message's own policy (998) and hands the relay exactly what was built."""
    utf8 = not all(a.isascii() for a in (sender, *recipients))
    out = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n", utf8=utf8))
    return out, utf8
