"""Who is asking: the qjm user behind a request, from a qjm JWT or from the host's own auth.

A request's facts (`RequestFacts`, read from the tornado handler in one place) go to
the configured `IdentitySource`; sources never touch tornado, so they are tested like
any other service. See `sources.py` for the three sources and `binding.py` for how an
external identity becomes (or is linked to) a qjm account.
"""

from .binding import IdentityBinder, PENDING_EMAIL_DOMAIN, has_address
from .facts import HostUser, RequestFacts
from .mode import IDENTITY_SOURCES, default_identity_source
from .sources import Authenticator, Resolved

__all__ = [
    "IDENTITY_SOURCES",
    "PENDING_EMAIL_DOMAIN",
    "Authenticator",
    "HostUser",
    "IdentityBinder",
    "RequestFacts",
    "Resolved",
    "default_identity_source",
    "has_address",
]
