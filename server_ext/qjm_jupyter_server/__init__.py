"""qjm-jupyter server extension: accounts, the jobs API, the IBM Quantum watcher and the mailer."""

from __future__ import annotations

from typing import Any

from .version import __version__


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import QJMServerApp

    return [{"module": "qjm_jupyter_server", "app": QJMServerApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "qjm-jupyter"}]


def run_server(*args: Any, **kwargs: Any) -> Any:
    """Start `jupyter qjm` from Python (see `app.run_server`)."""
    from .app import run_server as _run

    return _run(*args, **kwargs)


__all__ = ["run_server", "__version__"]
