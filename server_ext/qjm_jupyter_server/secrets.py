"""JWT secret and MultiFernet keys: load from config, or generate once into 0600 files.

Configured values (traits or QJM_* environment variables) always win. Without them a
single-user install still gets strong secrets: they are generated on first start and
kept in the data directory, readable by the owner only, so tokens and stored IBM keys
survive a restart. IBM keys are encrypted the JupyterHub `CryptKeeper` way: `;`-separated
Fernet keys, the first one encrypts, any of them decrypts (rotation).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

JWT_SECRET_FILE = "jwt_secret"
TOKEN_KEYS_FILE = "token_keys"
MIN_SECRET_BYTES = 32

log = logging.getLogger("qjm")


class WeakSecret(ValueError):
    """A configured jwt_secret shorter than 32 bytes (refused at start)."""


class BadTokenKeys(ValueError):
    """`token_keys` holds something that is not a Fernet key."""


class UndecryptableKey(ValueError):
    """A stored IBM key cannot be read: no configured key opens it, or it belongs to another user."""


def _warn_and_fix_mode(path: Path, logger: logging.Logger) -> None:
    """Secrets readable by others are as good as leaked: say so, then lock the file down."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning(
            "qjm: %s was readable by group/others (mode %o); restricting it to 0600. "
            "Treat its secrets as exposed and rotate them if other users share this machine.",
            path,
            mode,
        )
        os.chmod(path, 0o600)


def _read_or_create(path: Path, make: Callable[[], str], logger: logging.Logger) -> str:
    """Return the file's content, creating it atomically (0600) the first time.

    Written to a private temporary file and hard-linked into place, so two servers
    starting together never read a half-written secret: one link wins, the other reads it.
    """
    if path.exists():
        _warn_and_fix_mode(path, logger)
        return path.read_text(encoding="utf-8").strip()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(make() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
            logger.info("qjm: generated %s (mode 0600)", path)
        except FileExistsError:
            pass  # another process won the race; use its secret
    finally:
        tmp.unlink(missing_ok=True)
    _warn_and_fix_mode(path, logger)
    return path.read_text(encoding="utf-8").strip()


def _ensure_dir(data_dir: Path) -> None:
    if not data_dir.exists():
        old = os.umask(0o077)
        try:
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        finally:
            os.umask(old)


def _parse_token_keys(raw: str, source: str) -> list[Fernet]:
    parts = [p.strip() for p in raw.split(";") if p.strip()]
    if not parts:
        raise BadTokenKeys(f"{source} is empty; give one or more Fernet keys separated by ';'")
    fernets = []
    for i, part in enumerate(parts, 1):
        try:
            fernets.append(Fernet(part.encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            # never echo the value: it is a secret, even when malformed
            raise BadTokenKeys(
                f"{source}: key #{i} is not a Fernet key (32 url-safe base64-encoded bytes; "
                "make one with `python -c \"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\"`)"
            ) from None
    return fernets


class KeyRing:
    """The server's secrets: the JWT signing secret and the keys for IBM API keys at rest."""

    jwt_secret: bytes

    def __init__(self, jwt_secret: bytes, fernets: list[Fernet]) -> None:
        if len(jwt_secret) < MIN_SECRET_BYTES:
            raise WeakSecret(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes")
        if not fernets:
            raise BadTokenKeys("at least one Fernet key is needed")
        self.jwt_secret = jwt_secret
        self._fernet = MultiFernet(fernets)
        self.key_count = len(fernets)

    @classmethod
    def load_or_create(
        cls, data_dir: Path, jwt_secret: str | None, token_keys: str | None, log: logging.Logger | None = None
    ) -> KeyRing:
        logger = log or globals()["log"]
        data_dir = Path(data_dir)
        if jwt_secret:
            if len(jwt_secret.encode("utf-8")) < MIN_SECRET_BYTES:
                raise WeakSecret(
                    f"c.QJMServerApp.jwt_secret / QJM_JWT_SECRET is {len(jwt_secret.encode('utf-8'))} bytes; "
                    f"it must be at least {MIN_SECRET_BYTES} random bytes (for instance "
                    "`python -c \"import secrets; print(secrets.token_urlsafe(48))\"`), "
                    "or leave it unset to have one generated and kept in the data directory"
                )
            secret = jwt_secret.encode("utf-8")
        else:
            _ensure_dir(data_dir)
            path = data_dir / JWT_SECRET_FILE
            text = _read_or_create(path, lambda: secrets.token_urlsafe(48), logger)
            if len(text.encode("utf-8")) < MIN_SECRET_BYTES:
                raise WeakSecret(
                    f"{path} holds a secret shorter than {MIN_SECRET_BYTES} bytes; delete the file to have "
                    "a new one generated (every user will have to log in again)"
                )
            secret = text.encode("utf-8")
        if token_keys:
            fernets = _parse_token_keys(token_keys, "c.QJMServerApp.token_keys / QJM_TOKEN_KEYS")
        else:
            _ensure_dir(data_dir)
            path = data_dir / TOKEN_KEYS_FILE
            text = _read_or_create(path, lambda: Fernet.generate_key().decode("ascii"), logger)
            fernets = _parse_token_keys(text, str(path))
        return cls(secret, fernets)

    def encrypt(self, user_id: str, plaintext: str) -> str:
        """Encrypt an IBM API key bound to its owner (uid checked on decrypt)."""
        payload = json.dumps({"uid": user_id, "key": plaintext}, separators=(",", ":")).encode("utf-8")
        return self._fernet.encrypt(payload).decode("ascii")

    def decrypt(self, user_id: str, cipher: str) -> str:
        """The plaintext key; raises UndecryptableKey, never returns another user's key.

        Fernet has no associated data, so the owner id sits inside the ciphertext: a row
        copied onto another account (by a bug or a database edit) does not decrypt there.
        """
        try:
            payload = json.loads(self._fernet.decrypt(cipher.encode("ascii")))
        except (InvalidToken, ValueError, UnicodeEncodeError):
            raise UndecryptableKey("the stored IBM API key cannot be decrypted with the configured token_keys") from None
        if not isinstance(payload, dict) or payload.get("uid") != user_id or not isinstance(payload.get("key"), str):
            raise UndecryptableKey("the stored IBM API key does not belong to this account")
        return str(payload["key"])

    def rotate(self, user_id: str, cipher: str) -> str:
        """Re-encrypt with the newest key."""
        self.decrypt(user_id, cipher)  # refuse to carry a foreign or broken row forward
        return self._fernet.rotate(cipher.encode("ascii")).decode("ascii")
