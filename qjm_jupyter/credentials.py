"""The credentials file `%qjm_login` writes: `{url, email, token}`, never a password.

It lives in the user's config dir so every kernel of that user finds the session; it
is created with mode 0600 because the token is a bearer credential.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Credentials:
    url: str
    email: str
    token: str


def config_dir() -> Path:
    """`$QJM_CONFIG_DIR`, else `~/.config/qjm` (XDG_CONFIG_HOME respected)."""
    explicit = os.environ.get("QJM_CONFIG_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "qjm"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def load() -> Credentials | None:
    """The saved session, or None when there is none or it is unreadable."""
    path = credentials_path()
    try:
        data = json.loads(path.read_text())
        return Credentials(url=str(data["url"]), email=str(data["email"]), token=str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(creds: Credentials) -> Path:
    """Write atomically with 0600 from the first byte (never world-readable, not even briefly)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(creds), fh)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def remove(token: str | None = None) -> bool:
    """Delete the file (only if it holds `token`, when given); True if something was removed."""
    current = load()
    if current is None or (token is not None and current.token != token):
        return False
    try:
        credentials_path().unlink()
    except FileNotFoundError:
        return False
    return True
