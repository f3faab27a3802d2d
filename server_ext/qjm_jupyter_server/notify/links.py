"""Stop links in mail: signed, opaque tokens that need no login and no stored state.

RFC 8058 one-click unsubscribe POSTs to the `List-Unsubscribe` URL with no cookies and
no credentials, so the URL itself must say what to stop and prove we made it. A token is
`base64url(kind:id).base64url(HMAC-SHA256(key, kind:id)[:15])`: nothing to store per
mail, and nobody can make one for another job or account without the server's key.
Kinds: "j" stops one job's notifications, "g" those of one group of jobs (id `user_id:group`),
"a" stops all notification mail of an account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

from ..errors import InvalidInput

StopKind = Literal["j", "g", "a"]
SIG_BYTES = 15
STOP_PATH = "qjm/unsubscribe"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def link_key(secret: bytes) -> bytes:
    """A key for stop links only, derived from the server's signing secret."""
    return hmac.new(secret, b"qjm stop links v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class StopTarget:
    kind: StopKind
    id: str


class StopLinks:
    def __init__(self, key: bytes | None = None) -> None:
        # Without the server's key (a bare MessageFactory in a test), links are still made,
        # but only the process that made them can read them back.
        self.key = key or os.urandom(32)

    def _sig(self, payload: str) -> str:
        return _b64(hmac.new(self.key, payload.encode("utf-8"), hashlib.sha256).digest()[:SIG_BYTES])

    def token(self, kind: StopKind, ident: str) -> str:
        payload = f"{kind}:{ident}"
        return f"{_b64(payload.encode('utf-8'))}.{self._sig(payload)}"

    def url(self, public_url: str, kind: StopKind, ident: str) -> str:
        return f"{public_url}{STOP_PATH}?{urlencode({'token': self.token(kind, ident)})}"

    def parse(self, token: str) -> StopTarget:
        """The target of a token this server made; InvalidInput for anything else."""
        bad = InvalidInput("this stop link is not valid (copy the whole link from the email)", field="token")
        head, _, sig = (token or "").strip().partition(".")
        if not head or not sig or len(token) > 600:
            raise bad
        try:
            payload = _unb64(head).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise bad from None
        if not hmac.compare_digest(self._sig(payload), sig):
            raise bad
        kind, _, ident = payload.partition(":")
        if kind not in ("j", "g", "a") or not ident:
            raise bad
        return StopTarget(kind, ident)  # type: ignore[arg-type]
