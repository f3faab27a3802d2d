"""Finding the Jupyter server that started this kernel, so `JobManagerClient()` needs no URL.

A kernel launched by jupyter_server gets `JPY_PARENT_PID` (jupyter_client's launcher);
the server writes `jpserver-<pid>.json` (its URL among other things) in the Jupyter
runtime directory. Reading that file costs one small read and imports no server code.
The file (mode 0600) also holds the server's token, which is how a kernel proves to a
personal server that it acts for the server's user, with no qjm password.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


def _runtime_dir() -> Path:
    env = os.environ.get("JUPYTER_RUNTIME_DIR")
    if env:
        return Path(env)
    from jupyter_core.paths import jupyter_runtime_dir  # light: paths only

    return Path(jupyter_runtime_dir())


@dataclass(frozen=True)
class ParentServer:
    url: str  # with base_url and a trailing slash
    token: str | None  # the server's own token (0600 file): a kernel it started may use it


def parent_server() -> ParentServer | None:
    """The server that launched this kernel, if any (its runtime file is readable)."""
    pid = os.environ.get("JPY_PARENT_PID", "").strip()
    if not pid.isdigit():
        return None
    info_file = _runtime_dir() / f"jpserver-{pid}.json"
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    url = info.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    token = info.get("token")
    return ParentServer(url=url if url.endswith("/") else url + "/", token=token if isinstance(token, str) and token else None)


def parent_server_url() -> str | None:
    """The URL (with base_url, trailing slash) of the server that launched this kernel, if any."""
    found = parent_server()
    return found.url if found else None
