"""What a request tells us about its sender, as plain data (no tornado).

The handler layer fills this in once per request; identity sources only read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostUser:
    """A user the host (Jupyter's IdentityProvider, or JupyterHub) has authenticated.

    `name` is stable for this person; `admin` and `email` are what the host vouches for
    (None: the host does not say).
    """

    name: str
    admin: bool | None = None
    email: str | None = None


@dataclass(frozen=True)
class RequestFacts:
    authorization: str = ""  # the raw Authorization header
    host_user: HostUser | None = None

    @property
    def bearer_jwt(self) -> str | None:
        """A qjm JWT in `Authorization: Bearer <jwt>`, recognised by its shape.

        Jupyter accepts `Bearer <server token>` too; its tokens are opaque (no dots), so
        a three-part dotted token is ours and any other bearer value is left to the host.
        """
        scheme, _, token = self.authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or token.count(".") != 2:
            return None
        return token
