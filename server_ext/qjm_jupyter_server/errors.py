"""Errors services raise; the handler layer turns each into a JSON error response.

Services know nothing of tornado, but an error does carry the HTTP status it means,
so every layer agrees on it and a service never has to pick a tornado `HTTPError`.
(jupyter-scheduler does the opposite: its handlers catch service exceptions and raise
`HTTPError(500, ...)` in many places, so a client's mistake can surface as a 500.)
"""

from __future__ import annotations


class QJMError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return {"error": body}


class InvalidInput(QJMError):
    status = 422
    code = "invalid"


class Unauthorized(QJMError):
    status = 401
    code = "unauthorized"


class Forbidden(QJMError):
    status = 403
    code = "forbidden"


class NotFound(QJMError):
    status = 404
    code = "not_found"


class AlreadyExists(QJMError):
    status = 409
    code = "conflict"


class PayloadTooLarge(QJMError):
    status = 413
    code = "too_large"


class TooManyRequests(QJMError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = max(1, int(retry_after))


class ServiceUnavailable(QJMError):
    status = 503
    code = "unavailable"


class BadGateway(QJMError):
    """The group server this member's Jupyter server forwards to refused or dropped the connection."""

    status = 502
    code = "group_server_unreachable"


class GatewayTimeout(QJMError):
    """The group server accepted no connection, or sent no answer, within the forwarding timeouts."""

    status = 504
    code = "group_server_timeout"


class Busy(TooManyRequests):
    """Too much work of one kind in flight (logins being hashed): refused at once with a
    Retry-After, rather than queued behind strangers' requests."""

    code = "busy"


class Overloaded(ServiceUnavailable):
    """The server-wide queue for some work is full; try again shortly."""

    code = "overloaded"


class InvalidActionToken(QJMError):
    """An emailed link that is unknown, used, expired or revoked (never says which)."""

    status = 400
    code = "invalid_token"


class WrongPassword(QJMError):
    """The current password of a logged-in user was wrong (not a token problem, so not 401)."""

    status = 403
    code = "wrong_password"
