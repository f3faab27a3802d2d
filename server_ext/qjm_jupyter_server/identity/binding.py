"""External identity -> qjm account: created on first use, linked to an existing account by email.

A user the host authenticated (`jupyter:<name>`, `hub:<name>`) gets an account the first
time they reach qjm, with no password. Until they give an address it holds a
placeholder under the reserved `.invalid` domain (RFC 2606: it can never receive mail),
because every account needs a unique email.

Linking: when such a user confirms (by the emailed link) an address that an existing
account already has, the identity moves to that account and takes its jobs along. This
is how a personal database that used JWT accounts keeps its jobs after the server
switches to Jupyter identity. Two password accounts are never merged: only an account
reached through a host identity is folded into another.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from typing import Any

from ..authcache import tapped
from ..clock import Clock
from ..domain import Job, JobQuery, User, new_id
from ..secrets import KeyRing
from ..settings import Settings
from ..store import Conflict, Store
from .facts import HostUser

log = logging.getLogger("qjm")

PENDING_EMAIL_DOMAIN = "no-address.invalid"
MOVE_PAGE = 500


def pending_email(identity: str) -> str:
    return f"{hashlib.sha256(identity.encode('utf-8')).hexdigest()[:24]}@{PENDING_EMAIL_DOMAIN}"


def has_address(user: User) -> bool:
    """False while the account holds the placeholder (the user has not given an email yet)."""
    return not user.email.endswith("@" + PENDING_EMAIL_DOMAIN)


class IdentityBinder:
    def __init__(self, store: Store, settings: Settings, clock: Clock, keyring: KeyRing) -> None:
        # The store behind the same tap as the accounts: one cache of users for JWTs and
        # host identities, dropped by every user write and identity (re)binding.
        tap = tapped(store)
        self.store, self.cache = tap, tap.cache  # type: ignore[assignment]
        self.settings, self.clock, self.keyring = settings, clock, keyring

    async def user_for(self, identity: str, host: HostUser) -> User:
        """The account bound to `identity`, made on first use; host-vouched admin status is kept in sync.

        Asked on every host-authenticated request, so the account comes from the auth cache
        while it is fresh (authcache.py: a deactivation, deletion or link shows at once)."""
        user = self.cache.identity_user(identity)
        if user is None:
            epoch = self.cache.epoch()
            user = await self.store.get_user_by_identity(identity)
            if user is None:
                user = await self._first_use(identity, host)
            else:
                self.cache.remember_identity(identity, user, epoch)
        if host.admin is not None and host.admin != user.is_admin:
            user = await self.store.update_user(user.id, {"is_admin": host.admin, "updated_at": self.clock.now_ms()}) or user
        return user

    async def _first_use(self, identity: str, host: HostUser) -> User:
        now = self.clock.now_ms()
        email = (host.email or "").strip().lower() or None
        if email is not None:
            # The host vouches for this address (e.g. the Hub authenticator's user info):
            # an account that already has it is this person's.
            existing = await self.store.get_user_by_email(email)
            if existing is not None:
                return await self._bind_or_winner(identity, existing, created=False)
        user = User(
            id=new_id("u"),
            email=email or pending_email(identity),
            password_hash="",  # no password: the host authenticates this account
            created_at=now,
            updated_at=now,
            is_verified=email is not None,
            is_admin=bool(host.admin) or (email is not None and email in self.settings.admin_emails),
            notify_default=list(self.settings.default_notify_status),
        )
        try:
            await self.store.create_user(user)
        except Conflict:  # the address was taken meanwhile: keep the placeholder, ask later
            user = replace(user, email=pending_email(identity), is_verified=False)
            try:
                await self.store.create_user(user)
            except Conflict:  # a concurrent first request made the same placeholder
                winner = await self.store.get_user_by_identity(identity)
                if winner is None:
                    raise
                return winner
        log.info("qjm: new account %s for %s", user.id, identity)
        return await self._bind_or_winner(identity, user, created=True)

    async def _bind_or_winner(self, identity: str, user: User, created: bool) -> User:
        """Bind; when a concurrent request bound the identity first, use its account."""
        try:
            await self.store.bind_identity(identity, user.id, self.clock.now_ms())
            return user
        except Conflict:
            winner = await self.store.get_user_by_identity(identity)
            if created:
                await self.store.delete_user(user.id, now=self.clock.now_ms())
            if winner is None:
                raise
            return winner

    async def link_by_email(self, user: User, email: str) -> User | None:
        """`user` proved it owns `email`, which another account has: fold `user` into it.

        Returns the account the identities now point at, or None when there is nothing
        to link (no such account, or `user` is a password account with no host identity).
        """
        existing = await self.store.get_user_by_email(email)
        if existing is None or existing.id == user.id or not existing.is_active:
            return None
        identities = await self.store.list_identities(user.id)
        if not identities:
            return None
        now = self.clock.now_ms()
        for identity in identities:
            await self.store.bind_identity(identity, existing.id, now, replace=True)
        await self._move_jobs(user.id, existing.id, now)
        changes: dict[str, Any] = {"is_verified": True, "updated_at": now, **self._settings_to_keep(user, existing)}
        linked = await self.store.update_user(existing.id, changes) or existing
        await self.store.delete_user(user.id, now=now)
        log.info("qjm: linked %s to the existing account %s by its confirmed email", ", ".join(identities), existing.id)
        return linked

    def _settings_to_keep(self, user: User, existing: User) -> dict[str, Any]:
        """What the folded account set that the existing one lacks (an IBM key given in the
        panel together with the address, a default instance): nothing a user stored is lost.
        Keys are encrypted per account, so the key is re-encrypted for its new owner."""
        changes: dict[str, Any] = {}
        if user.ibm_key_cipher and not existing.ibm_key_cipher:
            key = self.keyring.decrypt(user.id, user.ibm_key_cipher)
            changes.update(
                ibm_key_cipher=self.keyring.encrypt(existing.id, key),
                ibm_key_last4=user.ibm_key_last4,
                ibm_key_state=user.ibm_key_state,
                ibm_key_updated_at=user.ibm_key_updated_at,
            )
        if user.default_instance and not existing.default_instance:
            changes["default_instance"] = user.default_instance
        return changes

    async def _move_jobs(self, from_user: str, to_user: str, now: int) -> None:
        """Copy every job to the other account (merging with ones it already watches);
        the originals go with the emptied account. Copies first: a crash between the two
        steps duplicates nothing the user cares about and loses nothing."""
        jobs: list[Job] = []
        offset = 0
        while True:
            page = await self.store.list_jobs(JobQuery(user_id=from_user, limit=MOVE_PAGE, offset=offset))
            jobs.extend(page)
            if len(page) < MOVE_PAGE:
                break
            offset += MOVE_PAGE
        if not jobs:
            return
        copies = [replace(job, id=new_id("j_"), user_id=to_user) for job in jobs]
        await self.store.register_jobs(copies)
        for instance in sorted({j.instance for j in jobs if j.instance and j.source == "ibm" and j.watch_state == "active"}):
            await self.store.touch_poll_unit(to_user, instance, now)
