"""The credentials file `%qjm_login` writes: one `{email, token}` per server URL, never a password.

It lives in the user's config dir so every kernel of that user finds its session; it is
created with mode 0600 because a token is a bearer credential. One entry per server:
a login to a group server must never be sent to (or used instead of) another server, so a
client only ever reads the entry of the URL it talks to. The file of earlier versions,
`{url, email, token}`, is read as a one-entry file.

Kernels of the same user may write at once (two notebooks logging in): every change is a
read-modify-write under an exclusive `flock`, then an atomic replace.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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


def normalize_url(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _entries(data: Any) -> dict[str, Credentials]:
    if not isinstance(data, dict):
        return {}
    if "servers" not in data and {"url", "email", "token"} <= set(data):  # the one-server file of 0.1
        data = {"servers": {data["url"]: {"email": data["email"], "token": data["token"]}}}
    servers = data.get("servers")
    found: dict[str, Credentials] = {}
    if isinstance(servers, dict):
        for url, entry in servers.items():
            try:
                found[normalize_url(str(url))] = Credentials(normalize_url(str(url)), str(entry["email"]), str(entry["token"]))
            except (KeyError, TypeError):
                continue  # one damaged entry does not lose the others
    return found


def load_all() -> dict[str, Credentials]:
    """Every saved session, by server URL ({} when there is none or the file is unreadable)."""
    try:
        return _entries(json.loads(credentials_path().read_text()))
    except (OSError, ValueError):
        return {}


def load(url: str) -> Credentials | None:
    """The saved session for exactly this server, or None."""
    return load_all().get(normalize_url(url))


@contextlib.contextmanager
def _locked() -> Iterator[Path]:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path.with_name(".credentials.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(fd)  # releases the lock


def _write(path: Path, entries: dict[str, Credentials]) -> None:
    """Write atomically with 0600 from the first byte (never world-readable, not even briefly)."""
    if not entries:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump({"servers": {u: {"email": c.email, "token": c.token} for u, c in sorted(entries.items())}}, fh)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save(creds: Credentials) -> Path:
    """Save (or replace) the session of `creds.url`; other servers' sessions stay."""
    with _locked() as path:
        entries = load_all()
        url = normalize_url(creds.url)
        entries[url] = Credentials(url, creds.email, creds.token)
        _write(path, entries)
    return path


def remove(url: str, token: str | None = None) -> bool:
    """Forget the session of `url` (only if it holds `token`, when given); True if one was removed."""
    with _locked() as path:
        entries = load_all()
        current = entries.get(normalize_url(url))
        if current is None or (token is not None and current.token != token):
            return False
        del entries[normalize_url(url)]
        _write(path, entries)
    return True
