"""Authentication without per-request work: verified tokens and their users, kept briefly.

Every API request carries a JWT, or (personal and Hub modes) a host identity such as
`jupyter:<owner>`. Verifying the HMAC and reading the user from the store on every request
was the largest fixed cost of a small request (a profile of `GET jobs` showed it next to
the listing itself; on MongoDB the user read is a network round trip). A host identity's
account is kept the same way: identity -> user id here, the user in the same entries.

What makes a short cache safe here is that revocation is a *user* write: logout-all, a
password change or reset, deactivation and deletion all change the user record
(`token_version`, `is_active`) through the store, and linking an identity to another
account rebinds it (`bind_identity`). `UserWriteTap` wraps the store and drops
the cached user on each such write in this process, so a revocation takes effect on the
next request. Another server process sharing the database is not told; its cached user
expires after `USER_TTL_S`, which bounds how long a revoked token still works there.

A cached token only skips the signature check: the user entry must still be fresh and
carry the token's `tv`, and `exp` is checked against the clock on every request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .domain import User

# How long a user read stays good for authentication when no write of this process says
# otherwise (the delay a revocation made by ANOTHER server process may take).
USER_TTL_S = 1.0
# Verified tokens remembered (most recently used kept); a token is ~200 bytes.
MAX_TOKENS = 4096


@dataclass(frozen=True)
class TokenClaims:
    """What authentication needs of a verified JWT."""

    sub: str
    tv: int
    exp: int  # epoch seconds


@dataclass
class _UserEntry:
    user: User
    fresh_until: float  # monotonic seconds


class AuthCache:
    """Verified claims by token string; users by id with a generation per user.

    The generation closes a race: a request that read the user just before a revocation
    must not put that old record back after the revocation dropped it, so `remember_user`
    only stores a read whose generation is still current.
    """

    def __init__(self, ttl_s: float = USER_TTL_S, max_tokens: int = MAX_TOKENS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.max_tokens, self._monotonic = ttl_s, max_tokens, monotonic
        self._tokens: OrderedDict[str, TokenClaims] = OrderedDict()
        self._users: dict[str, _UserEntry] = {}
        self._generations: dict[str, int] = {}
        self._identities: dict[str, str] = {}  # host identity -> user id (the user itself in _users)
        # Bumped by every write: an identity read does not know its user id beforehand, so
        # it is kept only when no write at all happened while it was in flight.
        self._epoch = 0

    # -- tokens -------------------------------------------------------------------------------
    def claims(self, token: str) -> TokenClaims | None:
        found = self._tokens.get(token)
        if found is not None:
            self._tokens.move_to_end(token)
        return found

    def remember_claims(self, token: str, claims: TokenClaims) -> None:
        self._tokens[token] = claims
        self._tokens.move_to_end(token)
        while len(self._tokens) > self.max_tokens:
            self._tokens.popitem(last=False)

    def clear(self) -> None:
        """Forget every verified token and cached user (the token rules changed)."""
        self._tokens.clear()
        self._users.clear()
        self._identities.clear()

    # -- users --------------------------------------------------------------------------------
    def generation(self, user_id: str) -> int:
        return self._generations.get(user_id, 0)

    def user(self, user_id: str) -> User | None:
        entry = self._users.get(user_id)
        if entry is None:
            return None
        if self._monotonic() >= entry.fresh_until:
            del self._users[user_id]
            return None
        return entry.user

    def remember_user(self, user: User, generation: int) -> None:
        if self.generation(user.id) != generation:
            return  # written meanwhile: this read may predate the write
        if len(self._users) >= self.max_tokens:
            self._drop_stale()
        self._users[user.id] = _UserEntry(user, self._monotonic() + self.ttl_s)

    def forget(self, user_id: str) -> None:
        """A write to the user: drop the cached record and invalidate reads in flight."""
        self._users.pop(user_id, None)
        self._generations[user_id] = self.generation(user_id) + 1
        self._epoch += 1

    # -- host identities ------------------------------------------------------------------------
    def epoch(self) -> int:
        return self._epoch

    def identity_user(self, identity: str) -> User | None:
        """The fresh cached account bound to `identity`, or None (then read the store)."""
        user_id = self._identities.get(identity)
        if user_id is None:
            return None
        user = self.user(user_id)
        if user is None:
            del self._identities[identity]
        return user

    def remember_identity(self, identity: str, user: User, epoch: int) -> None:
        """Keep a store read of `identity` made at `epoch`, unless a write came in between."""
        if epoch != self._epoch:
            return
        if len(self._identities) >= self.max_tokens:
            self._identities.clear()
        self.remember_user(user, self.generation(user.id))
        self._identities[identity] = user.id

    def forget_identity(self, identity: str) -> None:
        """The identity was (re)bound: its next request reads the store."""
        self._identities.pop(identity, None)
        self._epoch += 1

    def _drop_stale(self) -> None:
        now = self._monotonic()
        for uid in [uid for uid, e in self._users.items() if now >= e.fresh_until]:
            del self._users[uid]
        if len(self._users) >= self.max_tokens:
            self._users.clear()
        # Generations only matter while a read is in flight (well under a TTL): drop them with it.
        if len(self._generations) > 4 * self.max_tokens:
            self._generations.clear()
            self._users.clear()


class UserWriteTap:
    """The store, with every user write of this process reported to the cache.

    Any other attribute is the wrapped store's, so services and tests use it as the store.
    """

    def __init__(self, store: Any, cache: AuthCache) -> None:
        self._store, self._cache = store, cache

    @property
    def cache(self) -> AuthCache:
        return self._cache

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @property
    def wrapped(self) -> Any:
        return self._store

    async def update_user(self, user_id: str, changes: Mapping[str, Any]) -> User | None:
        self._cache.forget(user_id)
        try:
            return await self._store.update_user(user_id, changes)  # type: ignore[no-any-return]
        finally:
            self._cache.forget(user_id)

    async def bump_token_version(self, user_id: str, now: int) -> User | None:
        self._cache.forget(user_id)
        try:
            return await self._store.bump_token_version(user_id, now)  # type: ignore[no-any-return]
        finally:
            self._cache.forget(user_id)

    async def delete_user(self, user_id: str, now: int | None = None) -> bool:
        self._cache.forget(user_id)
        try:
            return await self._store.delete_user(user_id, now=now)  # type: ignore[no-any-return]
        finally:
            self._cache.forget(user_id)

    async def bind_identity(self, identity: str, user_id: str, now: int, *, replace: bool = False) -> None:
        self._cache.forget_identity(identity)
        try:
            await self._store.bind_identity(identity, user_id, now, replace=replace)
        finally:
            self._cache.forget_identity(identity)


def tapped(store: Any) -> UserWriteTap:
    """The store behind a tap (the same tap when it already is one, so one cache serves all)."""
    return store if isinstance(store, UserWriteTap) else UserWriteTap(store, AuthCache())
