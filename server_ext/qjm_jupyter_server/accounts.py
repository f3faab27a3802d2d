"""Accounts: register, login, verification, reset, profile, admin. No tornado.

`AccountService` is the façade the handlers call; the parts with one job each live
beside it: `passwords` (bcrypt, bounded), `tokens` (JWTs, `hash_token`), `throttle`
(store-backed windows). Choices that matter for security (after OWASP ASVS 5.0 V6
"Authentication" and the OWASP Forgot Password Cheat Sheet,
https://cheatsheetseries.owasp.org/cheatsheets/Forgot_Password_Cheat_Sheet.html):
- No answer reveals whether an email has an account: register, forgot and
  verify-request always say the same thing; forgot and verify-request also take the
  same time (the lookup and the mail happen after the answer), and login runs a bcrypt
  check even for unknown addresses.
- Every throttle counts an attempt before the work it guards (one atomic store write),
  so concurrent attempts count exactly like sequential ones.
- Wrong passwords are limited per (account, client): a stranger slows themselves down,
  not the owner elsewhere; the per-account limit is high and only slows a distributed attack.
- A credential change (password reset or change, email change, logout-all) revokes every
  session (`token_version`) and every emailed link issued before it.
- Configured admin addresses become admins only once verified.
- Emailed tokens are opaque, random, single use, stored only as their SHA-256, and
  sealed (encrypted) in the outbox row until sent.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .addresses import normalize_email
from .authcache import AuthCache, TokenClaims, tapped
from .clock import Clock
from .domain import ActionToken, Notification, TokenPurpose, User, new_id
from .errors import (
    AlreadyExists,
    Busy,
    Forbidden,
    InvalidActionToken,
    InvalidInput,
    NotFound,
    Overloaded,
    TooManyRequests,
    Unauthorized,
    WrongPassword,
)
from .notify.messages import MessageFactory
from .notify.sealing import seal
from .passwords import PasswordHasher
from .secrets import KeyRing
from .settings import Settings
from .store import Conflict, Store
from .throttle import Throttle, throttle_key
from .tokens import LoginResult, TokenIssuer, hash_token

__all__ = ["ACCEPTED", "AccountService", "LoginResult", "hash_token"]

log = logging.getLogger("qjm")

# Mail budgets, per hour: how many emails one address may be sent by the public routes
# and email changes, whoever asks (stops using us to flood an inbox), and how many
# account emails one account may cause (stops one account mailing many addresses).
MAIL_WINDOW_MS = 3_600_000
MAILS_PER_RECIPIENT = 5
MAILS_PER_ACCOUNT = 5
# Register is throttled per client address too, more loosely than login (a class
# signing up from one NAT address is normal).
REGISTER_FACTOR = 5
# Wrong passwords for one account from all clients together: high, so a stranger cannot
# lock the owner out, yet a distributed guessing attack is slowed down.
ACCOUNT_FACTOR = 10
# Progressive delay per (account, client): `limit` wrong passwords within a minute cost
# a wait for the minute's end, twice that within the window a wait for the window's end.
QUICK_WINDOW_MS = 60_000

# The mail work of forgot-password and verify-request waits this long after the answer.
AFTER_ANSWER_S = 0.01

ACCEPTED = "If the address can receive mail, a message is on its way; follow its link to continue."
BAD_LINK = "this link is invalid, used or expired; ask for a new one"
PURPOSES: tuple[TokenPurpose, ...] = ("verify", "reset")


class AccountService:
    def __init__(self, store: Store, keyring: KeyRing, messages: MessageFactory, settings: Settings, clock: Clock) -> None:
        # Logins are cached briefly; user writes through the tap invalidate them (authcache.py).
        tap = tapped(store)
        self.store, self.keyring, self.messages, self.clock = tap, keyring, messages, clock  # type: ignore[assignment]
        self.auth_cache: AuthCache = tap.cache
        self.settings = settings
        self.passwords = PasswordHasher(
            rounds=lambda: self.settings.bcrypt_rounds,
            queue=lambda: self.settings.login_queue,
            per_client=lambda: self.settings.login_per_client,
        )
        self.throttle = Throttle(store, clock)
        self._mail_tasks: set[asyncio.Task[None]] = set()
        # Set by the wiring: folds an account reached through a host identity into the
        # existing account whose address it just confirmed (identity/binding.py).
        self.link_confirmed_email: Callable[[User, str], Awaitable[User | None]] | None = None

    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self._settings = value
        self.tokens = TokenIssuer(self.keyring, value, self.clock)
        self.auth_cache.clear()  # tokens verified under the old settings (issuer) are checked again

    @property
    def _window_ms(self) -> int:
        return int(self.settings.login_fail_window) * 1000

    # -- passwords and tokens (the parts) ----------------------------------------------------------
    async def hash_password(self, password: str) -> str:
        return await self.passwords.hash(password)

    async def check_password(self, password: str, password_hash: str | None) -> bool:
        return await self.passwords.check(password, password_hash)

    def issue_token(self, user: User) -> LoginResult:
        return self.tokens.issue(user)

    async def authenticate(self, bearer_token: str) -> User:
        """Verify a JWT (HS256 pinned, exp/iat/sub/tv) and return the active user; raises Unauthorized."""
        cache = self.auth_cache
        claims = cache.claims(bearer_token)
        if claims is None:
            decoded = self.tokens.decode(bearer_token)
            claims = TokenClaims(sub=decoded["sub"], tv=decoded["tv"], exp=decoded["exp"])
            cache.remember_claims(bearer_token, claims)
        elif self.clock.now_ms() // 1000 >= claims.exp:
            raise Unauthorized("access token expired; log in again")
        user = cache.user(claims.sub)
        if user is None:
            generation = cache.generation(claims.sub)
            user = await self.store.get_user(claims.sub)
            if user is not None:
                cache.remember_user(user, generation)
        if user is None or not user.is_active or user.token_version != claims.tv:
            raise Unauthorized("access token revoked; log in again")
        return user

    # -- mail ------------------------------------------------------------------------------------------
    async def _mail_budget(self, email: str, user: User | None = None) -> bool:
        """Count one account email to `email` (and caused by `user`); False once spent."""
        if await self.throttle.take(throttle_key("mail-to", email), MAILS_PER_RECIPIENT, MAIL_WINDOW_MS) is None:
            log.warning("qjm: account mail to one recipient throttled")
            return False
        if user is not None and await self.throttle.take(throttle_key("mail-acct", user.id), MAILS_PER_ACCOUNT, MAIL_WINDOW_MS) is None:
            log.warning("qjm: account mail caused by account %s throttled", user.id)
            return False
        return True

    async def _new_action_token(self, user: User, purpose: TokenPurpose, data: Mapping[str, Any] | None = None) -> str:
        token = secrets.token_urlsafe(32)
        now = self.clock.now_ms()
        ttl = self.settings.verify_token_ttl if purpose == "verify" else self.settings.reset_token_ttl
        await self.store.put_action_token(
            ActionToken(
                token_hash=hash_token(token),
                user_id=user.id,
                purpose=purpose,
                expires_at=now + int(ttl) * 1000,
                created_at=now,
                data=dict(data or {}),
            )
        )
        return token

    async def _send_link(self, build: Callable[[], Notification]) -> None:
        """A mail carrying a link: sealed, so the token is not at rest in clear."""
        await self.store.enqueue([seal(self.keyring, build())])

    async def _notice(self, user: User, subject: str, body: str) -> None:
        """Security notices are best effort: a broken template must not undo a password change."""
        try:
            await self.store.enqueue([self.messages.account_notice(user, subject, body, self.clock.now_ms())])
        except Exception:  # noqa: BLE001
            log.exception("qjm: could not queue the account notice %r", subject)

    def _after_answer(self, work: Callable[[], Any]) -> None:
        """Run `work` after the request is answered, so the answer takes the same time
        whether or not the address has an account (the lookup and the mail are the difference)."""

        async def run() -> None:
            # start only once the answer is on its way: none of this work may share its time
            await asyncio.sleep(AFTER_ANSWER_S)
            try:
                await work()
            except Exception:  # noqa: BLE001 - nobody is waiting for it; log it
                log.exception("qjm: account mail work failed")

        task = asyncio.get_running_loop().create_task(run())
        self._mail_tasks.add(task)
        task.add_done_callback(self._mail_tasks.discard)

    async def settle(self) -> None:
        """Wait for account mail work started by answered requests (tests, shutdown)."""
        while self._mail_tasks:
            await asyncio.gather(*list(self._mail_tasks), return_exceptions=True)

    async def _consume(self, token: str, purpose: TokenPurpose) -> tuple[ActionToken, User]:
        found = await self.store.consume_action_token(hash_token(token), purpose, self.clock.now_ms())
        if found is None:
            raise InvalidActionToken(BAD_LINK, field="token")
        await self.store.delete_action_tokens(found.user_id, purpose)
        user = await self.store.get_user(found.user_id)
        if user is None or not user.is_active:
            raise InvalidActionToken(BAD_LINK, field="token")
        return found, user

    async def _revoke_everything(self, user_id: str, now: int) -> User | None:
        """A credential changed: every emailed link and every session issued before dies."""
        for purpose in PURPOSES:
            await self.store.delete_action_tokens(user_id, purpose)
        return await self.store.bump_token_version(user_id, now)

    def _verified(self, email: str) -> dict[str, Any]:
        """Changes that mark `email` verified: a configured admin address becomes admin only now."""
        changes: dict[str, Any] = {"is_verified": True}
        if email in self.settings.admin_emails:
            changes["is_admin"] = True
        return changes

    # -- key handling -------------------------------------------------------------------------------
    def _key_changes(self, user_id: str, key: str | None) -> dict[str, Any]:
        now = self.clock.now_ms()
        if key is None:
            return {"ibm_key_cipher": None, "ibm_key_last4": None, "ibm_key_state": "none", "ibm_key_updated_at": now}
        return {
            "ibm_key_cipher": self.keyring.encrypt(user_id, key),
            "ibm_key_last4": key[-4:],
            "ibm_key_state": "ok",
            "ibm_key_updated_at": now,
        }

    # -- register / login / logout --------------------------------------------------------------
    async def register(
        self,
        email: str,
        password: str,
        client: str,
        ibm_quantum_token: str | None = None,
        default_instance: str | None = None,
    ) -> str:
        """Always the same answer; only the mailbox learns whether the account existed.
        Never an admin here: a configured admin address becomes one once verified."""
        await self.throttle.take_or_raise(
            throttle_key("register-ip", client), self.settings.login_fail_limit * REGISTER_FACTOR, self._window_ms
        )
        async with self.passwords.client_slot(client):
            password_hash = await self.hash_password(password)  # same work on both paths
        now = self.clock.now_ms()
        existing = await self.store.get_user_by_email(email)
        if existing is None:
            user = User(
                id=new_id("u"),
                email=email,
                password_hash=password_hash,
                created_at=now,
                updated_at=now,
                default_instance=default_instance,
                notify_default=list(self.settings.default_notify_status),
            )
            if ibm_quantum_token:
                for name, value in self._key_changes(user.id, ibm_quantum_token).items():
                    setattr(user, name, value)
            try:
                await self.store.create_user(user)
            except Conflict:
                existing = await self.store.get_user_by_email(email)
            else:
                if await self._mail_budget(email):
                    token = await self._new_action_token(user, "verify")
                    await self._send_link(lambda: self.messages.verify_email(user, token, user.email, now))
                return ACCEPTED
        if existing is not None and await self._mail_budget(email):
            await self._notice(
                existing,
                "Someone tried to register with your address",
                "Someone (maybe you) tried to create a qjm-jupyter account with this address, which already has one. "
                "Nothing was changed. If you forgot your password, use 'forgot password' to set a new one; "
                "if this was not you, you can ignore this message.",
            )
        return ACCEPTED

    async def login(self, email: str, password: str, client: str) -> LoginResult:
        limit, window = self.settings.login_fail_limit, self._window_ms
        budgets = (
            (throttle_key("login-ip", client), limit, window),
            (throttle_key("login-pair-quick", email, client), limit, QUICK_WINDOW_MS),
            (throttle_key("login-pair", email, client), 2 * limit, window),
            (throttle_key("login-acct", email), limit * ACCOUNT_FACTOR, window),
        )
        # Every attempt is counted first, one atomic write per budget, so attempts in
        # flight together count exactly like attempts made one after another.
        taken = [await self.throttle.take_or_raise(key, budget, span) for key, budget, span in budgets]
        try:
            async with self.passwords.client_slot(client):
                user = await self.store.get_user_by_email(email)
                ok = await self.check_password(password, user.password_hash if user else None)
        except (Busy, Overloaded):
            for state in taken:  # the password was never checked: the attempt does not count
                await self.throttle.refund(state)
            raise
        if not ok or user is None:
            raise Unauthorized("wrong email or password")
        if not user.is_active:
            raise Forbidden("this account is deactivated; ask an administrator", code="deactivated")
        # A correct password gives back its attempt, and clears this client's record for the account.
        await self.throttle.refund(taken[0])
        await self.throttle.refund(taken[3])
        for key, _, _ in budgets[1:3]:
            await self.throttle.clear(key)
        return self.issue_token(user)

    async def logout_all(self, user: User) -> None:
        await self._revoke_everything(user.id, self.clock.now_ms())

    # -- verification ------------------------------------------------------------------------------
    async def request_verification(self, email: str, client: str) -> str:
        await self.throttle.take_or_raise(throttle_key("mail-ip", client), self.settings.login_fail_limit, self._window_ms)
        if await self._mail_budget(email):
            self._after_answer(lambda: self._send_verification(email))
        return ACCEPTED

    async def _send_verification(self, email: str) -> None:
        user = await self.store.get_user_by_email(email)
        if user is not None and user.is_active and not user.is_verified:
            token = await self._new_action_token(user, "verify")
            now = self.clock.now_ms()
            await self._send_link(lambda: self.messages.verify_email(user, token, user.email, now))

    async def confirm_verification(self, token: str) -> User:
        found, user = await self._consume(token, "verify")
        now = self.clock.now_ms()
        new_email = found.data.get("email")
        if isinstance(new_email, str) and new_email != user.email:
            old = user
            try:
                updated = await self.store.update_user(user.id, {"email": new_email, **self._verified(new_email), "updated_at": now})
            except Conflict:
                linked = await self.link_confirmed_email(user, new_email) if self.link_confirmed_email else None
                if linked is not None:
                    return linked
                raise AlreadyExists("that address now belongs to another account", field="email") from None
            if updated is None:
                raise InvalidActionToken(BAD_LINK, field="token")
            # the address is a credential: every session and link issued before dies
            updated = await self._revoke_everything(user.id, now) or updated
            await self._notice(
                old,
                "Your qjm-jupyter email address was changed",
                f"The address of your account is now {new_email}, and every session was logged out. "
                "If you did not ask for this, reset your password.",
            )
            return updated
        updated = await self.store.update_user(user.id, {**self._verified(user.email), "updated_at": now})
        return updated or user

    # -- password reset ------------------------------------------------------------------------------
    async def forgot_password(self, email: str, client: str) -> str:
        await self.throttle.take_or_raise(throttle_key("mail-ip", client), self.settings.login_fail_limit, self._window_ms)
        if await self._mail_budget(email):
            self._after_answer(lambda: self._send_reset(email))
        return ACCEPTED

    async def _send_reset(self, email: str) -> None:
        user = await self.store.get_user_by_email(email)
        if user is not None and user.is_active:
            token = await self._new_action_token(user, "reset")
            now = self.clock.now_ms()
            await self._send_link(lambda: self.messages.reset_password(user, token, now))

    async def reset_password(self, token: str, password: str) -> str:
        # hashed before the link is used up: a busy server (503) must not cost the user their link
        password_hash = await self.hash_password(password)
        _, user = await self._consume(token, "reset")
        now = self.clock.now_ms()
        # receiving the mail proves the address, so a reset also verifies it
        await self.store.update_user(user.id, {"password_hash": password_hash, **self._verified(user.email), "updated_at": now})
        await self._revoke_everything(user.id, now)
        await self.throttle.clear(throttle_key("login-acct", user.email))
        await self._notice(
            user,
            "Your qjm-jupyter password was reset",
            "Your password was just reset and every session was logged out. If this was not you, reset it again now.",
        )
        return "Password changed; log in with the new password."

    # -- me ------------------------------------------------------------------------------------------
    async def _require_current_password(self, user: User, current: str | None) -> None:
        if not current:
            raise InvalidInput("current_password is required to change the email or password", field="current_password")
        key = throttle_key("confirm-password", user.id)
        state = await self.throttle.take_or_raise(key, self.settings.login_fail_limit, self._window_ms)
        if not await self.check_password(current, user.password_hash):
            raise WrongPassword("current_password is wrong", field="current_password")
        await self.throttle.refund(state)

    async def update_me(self, user: User, changes: Mapping[str, Any], *, host_authenticated: bool = False) -> User:
        """`changes` holds only the fields the client sent (so `ibm_quantum_token: None` clears).

        `host_authenticated`: the request came through the host's own auth (Jupyter, the
        Hub), which is what protects this account, so no qjm password is asked for."""
        now = self.clock.now_ms()
        update: dict[str, Any] = {}
        new_email = changes.get("email")
        email_change = isinstance(new_email, str) and new_email != user.email
        password_change = changes.get("password") is not None
        if (email_change or password_change) and not host_authenticated:
            await self._require_current_password(user, changes.get("current_password"))
        if email_change:
            assert isinstance(new_email, str)
            if not await self._mail_budget(new_email, user):
                raise TooManyRequests("too many confirmation emails; try again later", retry_after=MAIL_WINDOW_MS // 1000, field="email")
        if password_change:
            update["password_hash"] = await self.hash_password(changes["password"])
        if "ibm_quantum_token" in changes:
            update.update(self._key_changes(user.id, changes["ibm_quantum_token"]))
        if "default_instance" in changes:
            update["default_instance"] = changes["default_instance"]
        if changes.get("notify_default") is not None:
            update["notify_default"] = list(changes["notify_default"])
        if update:
            update["updated_at"] = now
            updated = await self.store.update_user(user.id, update)
            if updated is None:
                raise NotFound("this account no longer exists")
            user = updated
        if changes.get("ibm_quantum_token"):
            await self.store.wake_user_units(user.id, now)  # a new key resumes paused watching
        if password_change:
            user = await self._revoke_everything(user.id, now) or user
            await self._notice(user, "Your qjm-jupyter password was changed", "Every session was logged out.")
        if email_change:
            assert isinstance(new_email, str)
            await self.store.delete_action_tokens(user.id, "verify")
            token = await self._new_action_token(user, "verify", {"email": new_email})
            await self._send_link(lambda: self.messages.verify_email(user, token, new_email, now))
        return user

    async def delete_me(self, user: User, password: str) -> None:
        """The account, its jobs, links and outbox rows (its delivery log) all go."""
        await self._require_current_password(user, password)
        await self.store.delete_user(user.id, now=self.clock.now_ms())

    # -- admin -----------------------------------------------------------------------------------------
    async def list_users(self, admin: User, limit: int, offset: int) -> tuple[list[User], int]:
        admin.require_admin()
        return await self.store.list_users(limit, offset), await self.store.count_users()

    async def admin_update(self, admin: User, user_id: str, is_active: bool | None, is_admin: bool | None) -> User:
        admin.require_admin()
        if user_id == admin.id and (is_active is False or is_admin is False):
            raise InvalidInput("you cannot deactivate or demote yourself; ask another administrator", field="user_id")
        target = await self.store.get_user(user_id)
        if target is None:
            raise NotFound("no such user", field="user_id")
        now = self.clock.now_ms()
        update: dict[str, Any] = {}
        if is_active is not None and is_active != target.is_active:
            update["is_active"] = is_active
        if is_admin is not None and is_admin != target.is_admin:
            update["is_admin"] = is_admin
        if not update:
            return target
        update["updated_at"] = now
        updated = await self.store.update_user(user_id, update)
        if updated is None:
            raise NotFound("no such user", field="user_id")
        if update.get("is_active") is False:
            updated = await self._revoke_everything(user_id, now) or updated
        return updated

    async def promote(self, email: str) -> User:
        """Make an existing account an admin (the operator's `create-admin` command)."""
        user = await self.store.get_user_by_email(normalize_email(email))
        if user is None:
            raise NotFound(f"no account with the email {email!r}; register it first", field="email")
        if user.is_admin:
            return user
        return await self.store.update_user(user.id, {"is_admin": True, "updated_at": self.clock.now_ms()}) or user

    async def promote_configured_admins(self) -> None:
        """Mark VERIFIED accounts listed in settings.admin_emails as admins (run once at open):
        an unverified one may belong to whoever registered the address first."""
        for email in self.settings.admin_emails:
            user = await self.store.get_user_by_email(email)
            if user is not None and user.is_verified and not user.is_admin:
                await self.store.update_user(user.id, {"is_admin": True, "updated_at": self.clock.now_ms()})
