"""Tokens: the JWT access tokens of a session, and the digest emailed tokens are kept as.

A JWT is only as good as the user's `token_version` (`tv` claim): every credential
change bumps it, so tokens issued before really die. Emailed tokens are opaque random
strings stored only as their SHA-256 (`hash_token`), so the database never holds a
usable link.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import jwt

from .clock import Clock
from .domain import User
from .errors import Unauthorized
from .secrets import KeyRing
from .settings import Settings

AUDIENCE = "qjm"
ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "iat", "exp", "iss", "aud", "tv"]
MAX_TOKEN_CHARS = 4096


def hash_token(token: str) -> str:
    """The one digest of an emailed token: what the store keys it by and what outbox
    dedupe keys name it by, so neither ever needs the token itself."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LoginResult:
    access_token: str
    expires_in: int
    user: User


class TokenIssuer:
    """Issues and checks HS256 access tokens (exp/iat on the services' clock)."""

    def __init__(self, keyring: KeyRing, settings: Settings, clock: Clock) -> None:
        self.keyring, self.settings, self.clock = keyring, settings, clock

    def issue(self, user: User) -> LoginResult:
        now = self.clock.now_ms() // 1000
        lifetime = int(self.settings.jwt_lifetime)
        claims = {
            "sub": user.id,
            "iat": now,
            "exp": now + lifetime,
            "iss": self.settings.jwt_issuer,
            "aud": AUDIENCE,
            "tv": user.token_version,
        }
        token = jwt.encode(claims, self.keyring.jwt_secret, algorithm=ALGORITHM)
        return LoginResult(access_token=token, expires_in=lifetime, user=user)

    def decode(self, bearer_token: str) -> dict[str, Any]:
        """The claims of a well-formed, correctly signed, unexpired token; Unauthorized otherwise."""
        if not bearer_token or len(bearer_token) > MAX_TOKEN_CHARS:
            raise Unauthorized("invalid access token")
        try:
            claims = jwt.decode(
                bearer_token,
                self.keyring.jwt_secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self.settings.jwt_issuer,
                # exp/iat are checked below against our clock (one time source for issue and check)
                options={"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False, "enforce_minimum_key_length": True},
            )
        except jwt.PyJWTError:
            raise Unauthorized("invalid access token; log in again") from None
        now = self.clock.now_ms() // 1000
        exp, iat, sub, tv = claims.get("exp"), claims.get("iat"), claims.get("sub"), claims.get("tv")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (exp, iat, tv)) or not isinstance(sub, str):
            raise Unauthorized("invalid access token; log in again")
        if now >= exp:  # type: ignore[operator]
            raise Unauthorized("access token expired; log in again")
        if iat > now + 60:  # type: ignore[operator]
            raise Unauthorized("access token issued in the future")
        return claims
