"""Accounts: register, login, JWTs, verification, reset, profile, admin. No tornado.

Choices that matter for security (after OWASP ASVS 5.0 V6 "Authentication" and the
OWASP Forgot Password Cheat Sheet, https://cheatsheetseries.owasp.org/cheatsheets/Forgot_Password_Cheat_Sheet.html):
- No answer reveals whether an email has an account: register, forgot and
  verify-request always say the same thing, and login runs a bcrypt check even for
  unknown addresses.
- A JWT is only as good as the user's `token_version` (`tv` claim): logout-all, a
  password change or reset and deactivation bump it, so old tokens really die.
- Emailed tokens are opaque, random, single use and stored only as their SHA-256.
- Throttling counters live in the store, so they hold across restarts and processes.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import bcrypt
import jwt

from .clock import Clock
from .domain import ActionToken, Notification, TokenPurpose, User, new_id
from .errors import AlreadyExists, Forbidden, InvalidInput, NotFound, QJMError, TooManyRequests, Unauthorized
from .notify.messages import MessageFactory
from .secrets import KeyRing
from .settings import Settings
from .store import Conflict, Store

log = logging.getLogger("qjm")

AUDIENCE = "qjm"
ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "iat", "exp", "iss", "aud", "tv"]
MAX_TOKEN_CHARS = 4096
# How many emails one address may be sent per throttle window by the public routes
# (register / verify / forgot), whoever asks: stops using us to flood an inbox.
MAILS_PER_RECIPIENT = 5
# Register is throttled per client address too, more loosely than login (a class
# signing up from one NAT address is normal).
REGISTER_FACTOR = 5

ACCEPTED = "If the address can receive mail, a message is on its way; follow its link to continue."


class InvalidActionToken(QJMError):
    status = 400
    code = "invalid_token"


class WrongPassword(QJMError):
    """The current password of a logged-in user was wrong (not a token problem, so not 401)."""

    status = 403
    code = "wrong_password"


def _prehash(password: str) -> bytes:
    """SHA-256 then base64 (44 bytes): bcrypt sees every character of any password and
    never hits its 72-byte limit, which bcrypt 5 turns into an error."""
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


T = TypeVar("T")
_HASH_POOL: ThreadPoolExecutor | None = None


async def _off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run bcrypt on a small pool of its own, one worker fewer than the cores: a burst of
    logins then queues behind itself instead of taking every core from the event loop
    (asyncio.to_thread's shared pool would run up to cores + 4 hashes at once)."""
    global _HASH_POOL
    if _HASH_POOL is None:
        workers = max(1, (os.cpu_count() or 2) - 1)
        _HASH_POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qjm-bcrypt")
    return await asyncio.get_running_loop().run_in_executor(_HASH_POOL, functools.partial(fn, *args))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _key_hash(kind: str, value: str) -> str:
    """Throttle keys without emails or addresses in clear in the database."""
    return f"{kind}:{hashlib.sha256(value.encode('utf-8')).hexdigest()[:32]}"


@dataclass(frozen=True)
class LoginResult:
    access_token: str
    expires_in: int
    user: User


class AccountService:
    def __init__(self, store: Store, keyring: KeyRing, messages: MessageFactory, settings: Settings, clock: Clock) -> None:
        self.store, self.keyring, self.messages, self.settings, self.clock = store, keyring, messages, settings, clock
        self._dummy_hash: tuple[int, bytes] | None = None

    # -- passwords ----------------------------------------------------------------------------
    async def hash_password(self, password: str) -> str:
        rounds = self.settings.bcrypt_rounds
        digest = await _off_loop(bcrypt.hashpw, _prehash(password), bcrypt.gensalt(rounds))
        return digest.decode("ascii")

    async def check_password(self, password: str, password_hash: str | None) -> bool:
        """Constant work whether or not the account exists (a dummy hash stands in)."""
        if password_hash is None:
            target = await self._dummy()
        else:
            target = password_hash.encode("ascii")
        try:
            ok = await _off_loop(bcrypt.checkpw, _prehash(password), target)
        except ValueError:  # a corrupt stored hash: refuse, don't 500
            log.error("qjm: a stored password hash is not a bcrypt hash")
            ok = False
        return ok and password_hash is not None

    async def _dummy(self) -> bytes:
        rounds = self.settings.bcrypt_rounds
        if self._dummy_hash is None or self._dummy_hash[0] != rounds:
            value = await _off_loop(bcrypt.hashpw, _prehash(secrets.token_urlsafe(16)), bcrypt.gensalt(rounds))
            self._dummy_hash = (rounds, value)
        return self._dummy_hash[1]

    # -- JWT ----------------------------------------------------------------------------------
    def issue_token(self, user: User) -> LoginResult:
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

    def _decode(self, bearer_token: str) -> dict[str, Any]:
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

    async def authenticate(self, bearer_token: str) -> User:
        """Verify a JWT (HS256 pinned, exp/iat/sub/tv) and return the active user; raises Unauthorized."""
        claims = self._decode(bearer_token)
        user = await self.store.get_user(claims["sub"])
        if user is None or not user.is_active or user.token_version != claims["tv"]:
            raise Unauthorized("access token revoked; log in again")
        return user

    # -- throttling -----------------------------------------------------------------------------
    @property
    def _window_ms(self) -> int:
        return int(self.settings.login_fail_window) * 1000

    async def _check_throttle(self, key: str, limit: int) -> None:
        state = await self.store.throttle_get(key)
        if state is None:
            return
        now = self.clock.now_ms()
        end = state.window_start + self._window_ms
        if state.count >= limit and now < end:
            raise TooManyRequests("too many attempts; try again later", retry_after=-(-(end - now) // 1000))

    async def _hit_and_check(self, key: str, limit: int) -> None:
        """Count a request against a per-window budget; 429 once it is spent."""
        await self._check_throttle(key, limit)
        await self.store.throttle_hit(key, self.clock.now_ms(), self._window_ms)

    async def _within_mail_budget(self, email: str) -> bool:
        state = await self.store.throttle_hit(_key_hash("mail-to", email), self.clock.now_ms(), self._window_ms)
        if state.count > MAILS_PER_RECIPIENT:
            log.warning("qjm: mail to one recipient throttled (%d requests in the window)", state.count)
            return False
        return True

    async def _check_login_throttle(self, email: str, client: str) -> tuple[str, str]:
        acct, addr = _key_hash("login-acct", email), _key_hash("login-ip", client)
        limit = self.settings.login_fail_limit
        await self._check_throttle(acct, limit)
        await self._check_throttle(addr, limit)
        return acct, addr

    async def _count_failure(self, *keys: str) -> None:
        now = self.clock.now_ms()
        for key in keys:
            await self.store.throttle_hit(key, now, self._window_ms)

    # -- emailed tokens ---------------------------------------------------------------------------
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

    async def _consume(self, token: str, purpose: TokenPurpose) -> tuple[ActionToken, User]:
        found = await self.store.consume_action_token(hash_token(token), purpose, self.clock.now_ms())
        if found is None:
            raise InvalidActionToken("this link is invalid, used or expired; ask for a new one", field="token")
        await self.store.delete_action_tokens(found.user_id, purpose)
        user = await self.store.get_user(found.user_id)
        if user is None or not user.is_active:
            raise InvalidActionToken("this link is invalid, used or expired; ask for a new one", field="token")
        return found, user

    async def _send(self, build: Callable[[], Notification]) -> None:
        await self.store.enqueue([build()])

    async def _notice(self, user: User, subject: str, body: str) -> None:
        """Security notices are best effort: a broken template must not undo a password change."""
        try:
            await self.store.enqueue([self.messages.account_notice(user, subject, body, self.clock.now_ms())])  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001
            log.exception("qjm: could not queue the account notice %r", subject)

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
        """Always the same answer; only the mailbox learns whether the account existed."""
        email = email.strip().lower()
        await self._hit_and_check(_key_hash("register-ip", client), self.settings.login_fail_limit * REGISTER_FACTOR)
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
                is_admin=email in self.settings.admin_emails,
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
                if await self._within_mail_budget(email):
                    token = await self._new_action_token(user, "verify")
                    await self._send(lambda: self.messages.verify_email(user, token, user.email, now))
                return ACCEPTED
        if existing is not None and await self._within_mail_budget(email):
            await self._notice(
                existing,
                "Someone tried to register with your address",
                "Someone (maybe you) tried to create a qjm-jupyter account with this address, which already has one. "
                "Nothing was changed. If you forgot your password, use 'forgot password' to set a new one; "
                "if this was not you, you can ignore this message.",
            )
        return ACCEPTED

    async def login(self, email: str, password: str, client: str) -> LoginResult:
        email = email.strip().lower()
        acct, addr = await self._check_login_throttle(email, client)
        user = await self.store.get_user_by_email(email)
        ok = await self.check_password(password, user.password_hash if user else None)
        if not ok or user is None:
            await self._count_failure(acct, addr)
            raise Unauthorized("wrong email or password")
        if not user.is_active:
            raise Forbidden("this account is deactivated; ask an administrator", code="deactivated")
        await self.store.throttle_clear(acct)
        return self.issue_token(user)

    async def logout_all(self, user: User) -> None:
        await self.store.bump_token_version(user.id, self.clock.now_ms())

    # -- verification ------------------------------------------------------------------------------
    async def request_verification(self, email: str, client: str) -> str:
        email = email.strip().lower()
        await self._hit_and_check(_key_hash("mail-ip", client), self.settings.login_fail_limit)
        user = await self.store.get_user_by_email(email)
        if user is not None and user.is_active and not user.is_verified and await self._within_mail_budget(email):
            token = await self._new_action_token(user, "verify")
            now = self.clock.now_ms()
            await self._send(lambda: self.messages.verify_email(user, token, user.email, now))
        return ACCEPTED

    async def confirm_verification(self, token: str) -> User:
        found, user = await self._consume(token, "verify")
        now = self.clock.now_ms()
        new_email = found.data.get("email")
        if isinstance(new_email, str) and new_email != user.email:
            old = user
            try:
                updated = await self.store.update_user(user.id, {"email": new_email, "is_verified": True, "updated_at": now})
            except Conflict:
                raise AlreadyExists("that address now belongs to another account", field="email") from None
            if updated is None:
                raise InvalidActionToken("this link is invalid, used or expired; ask for a new one", field="token")
            await self._notice(
                old,
                "Your qjm-jupyter email address was changed",
                f"The address of your account is now {new_email}. If you did not ask for this, reset your password.",
            )
            return updated
        updated = await self.store.update_user(user.id, {"is_verified": True, "updated_at": now})
        return updated or user

    # -- password reset ------------------------------------------------------------------------------
    async def forgot_password(self, email: str, client: str) -> str:
        email = email.strip().lower()
        await self._hit_and_check(_key_hash("mail-ip", client), self.settings.login_fail_limit)
        user = await self.store.get_user_by_email(email)
        if user is not None and user.is_active and await self._within_mail_budget(email):
            token = await self._new_action_token(user, "reset")
            now = self.clock.now_ms()
            await self._send(lambda: self.messages.reset_password(user, token, now))
        return ACCEPTED

    async def reset_password(self, token: str, password: str) -> str:
        _, user = await self._consume(token, "reset")
        now = self.clock.now_ms()
        password_hash = await self.hash_password(password)
        # receiving the mail proves the address, so a reset also verifies it
        await self.store.update_user(user.id, {"password_hash": password_hash, "is_verified": True, "updated_at": now})
        await self.store.bump_token_version(user.id, now)
        await self.store.throttle_clear(_key_hash("login-acct", user.email))
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
        acct = _key_hash("login-acct", user.email)
        await self._check_throttle(acct, self.settings.login_fail_limit)
        if not await self.check_password(current, user.password_hash):
            await self._count_failure(acct)
            raise WrongPassword("current_password is wrong", field="current_password")

    async def update_me(self, user: User, changes: Mapping[str, Any]) -> User:
        """`changes` holds only the fields the client sent (so `ibm_quantum_token: None` clears)."""
        now = self.clock.now_ms()
        update: dict[str, Any] = {}
        new_email = changes.get("email")
        email_change = isinstance(new_email, str) and new_email != user.email
        password_change = changes.get("password") is not None
        if email_change or password_change:
            await self._require_current_password(user, changes.get("current_password"))
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
            bumped = await self.store.bump_token_version(user.id, now)
            user = bumped or user
            await self._notice(user, "Your qjm-jupyter password was changed", "Every other session was logged out.")
        if email_change:
            assert isinstance(new_email, str)
            await self.store.delete_action_tokens(user.id, "verify")
            token = await self._new_action_token(user, "verify", {"email": new_email})
            await self._send(lambda: self.messages.verify_email(user, token, new_email, now))
        return user

    async def delete_me(self, user: User, password: str) -> None:
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
            updated = await self.store.bump_token_version(user_id, now) or updated
        return updated

    async def promote(self, email: str) -> User:
        """Make an existing account an admin (the `create-admin` command)."""
        user = await self.store.get_user_by_email(email.strip().lower())
        if user is None:
            raise NotFound(f"no account with the email {email!r}; register it first", field="email")
        if user.is_admin:
            return user
        return await self.store.update_user(user.id, {"is_admin": True, "updated_at": self.clock.now_ms()}) or user

    async def promote_configured_admins(self) -> None:
        """Mark accounts listed in settings.admin_emails as admins (run once at open)."""
        for email in self.settings.admin_emails:
            user = await self.store.get_user_by_email(email)
            if user is not None and not user.is_admin:
                await self.store.update_user(user.id, {"is_admin": True, "updated_at": self.clock.now_ms()})
