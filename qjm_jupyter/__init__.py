"""qjm-jupyter, kernel side: `%load_ext qjm_jupyter`, `JobManagerClient`, `JobTable`.

Importing this package must stay cheap (no qiskit, tornado or jupyter_server): the
heavier modules are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from .client import JobManagerClient as JobManagerClient
    from .widget import JobTable as JobTable

__all__ = ["JobManagerClient", "JobTable", "load_ipython_extension", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "JobManagerClient":
        from .client import JobManagerClient

        return JobManagerClient
    if name == "JobTable":
        from .widget import JobTable

        return JobTable
    raise AttributeError(name)


def load_ipython_extension(ipython: Any) -> None:
    """Register the %qjm magics (`%load_ext qjm_jupyter`)."""
    from .magics import QJMMagics

    ipython.register_magics(QJMMagics(ipython))


def unload_ipython_extension(ipython: Any) -> None:
    from .session import SESSION

    SESSION.shutdown()
