"""Exceptions the kernel side raises.

Every message says what to do next, because the reader is a notebook user who sees the
message in a traceback and nothing else.
"""

from __future__ import annotations


class QJMError(Exception):
    """Base of every qjm-jupyter kernel-side error."""


class QJMConnectionError(QJMError):
    """The server could not be reached (refused, DNS, timeout)."""


class QJMAuthError(QJMError):
    """No usable credentials, or the server refused them."""


class QJMHTTPError(QJMError):
    """The server answered with an error body `{"error": {code, message, field?}}`."""

    def __init__(self, status: int, message: str, *, code: str = "", field: str | None = None,
                 method: str = "", url: str = "") -> None:
        where = f" ({method} {url})" if method else ""
        detail = f"{message} [field: {field}]" if field else message
        super().__init__(f"{status} {code or 'error'}: {detail}{where}")
        self.status = status
        self.code = code
        self.field = field
        self.message = message


class UnsupportedJobError(QJMError, TypeError):
    """An object that cannot be watched (unknown type, or a platform that no longer exists)."""
