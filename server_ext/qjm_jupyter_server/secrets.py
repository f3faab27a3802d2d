"""JWT secret and MultiFernet keys: load from config, or generate once into 0600 files.

STUB: owned by the accounts work; the signatures below are the contract.
"""

from __future__ import annotations

import logging
from pathlib import Path


class WeakSecret(ValueError):
    """A configured jwt_secret shorter than 32 bytes (refused at start)."""


class KeyRing:
    jwt_secret: bytes

    @classmethod
    def load_or_create(cls, data_dir: Path, jwt_secret: str | None, token_keys: str | None, log: logging.Logger | None = None) -> "KeyRing":
        raise NotImplementedError

    def encrypt(self, user_id: str, plaintext: str) -> str:
        """Encrypt an IBM API key bound to its owner (uid checked on decrypt)."""
        raise NotImplementedError

    def decrypt(self, user_id: str, cipher: str) -> str:
        raise NotImplementedError

    def rotate(self, user_id: str, cipher: str) -> str:
        """Re-encrypt with the newest key."""
        raise NotImplementedError
