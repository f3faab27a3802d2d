"""Identity sources: given a request's facts, the qjm user or None.

- `AccountsSource`: a qjm JWT (`Authorization: Bearer <jwt>`), today's accounts.
- `HostSource("jupyter")`: the user Jupyter's own auth accepted (token or cookie).
- `HostSource("hub")`: the JupyterHub user Hub OAuth accepted (token or cookie).

`Authenticator` asks the JWT source first (scripts and other machines keep working in
every mode), then the host source the server is configured for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..accounts import AccountService
from ..domain import User
from ..errors import Forbidden, Unauthorized
from .binding import IdentityBinder
from .facts import RequestFacts

MISSING_BEARER = "missing bearer token: log in at qjm/api/auth/login and send 'Authorization: Bearer <token>'"
MISSING_HOST = {
    "jupyter": "not authenticated: open qjm from JupyterLab, or send this Jupyter server's token "
    "('Authorization: token <jupyter token>') or a qjm access token ('Authorization: Bearer <token>')",
    "hub": "not authenticated: sign in to JupyterHub, or send a JupyterHub API token "
    "('Authorization: token <hub token>') or a qjm access token ('Authorization: Bearer <token>')",
}


class IdentitySource(Protocol):
    name: str

    async def user_for(self, facts: RequestFacts) -> User | None:
        """The user these facts prove, None when they say nothing this source understands;
        raises Unauthorized when they carry a credential of this source that is wrong."""


class AccountsSource:
    name = "accounts"

    def __init__(self, accounts: AccountService, *, only_source: bool) -> None:
        self.accounts = accounts
        # The only source: any bearer value is meant for us (and wrong ones say why).
        self.only_source = only_source

    async def user_for(self, facts: RequestFacts) -> User | None:
        token = facts.bearer_jwt
        if token is None and self.only_source:
            scheme, _, value = facts.authorization.partition(" ")
            token = value.strip() if scheme.lower() == "bearer" and value.strip() else None
        if token is None:
            return None
        return await self.accounts.authenticate(token)


class HostSource:
    """The host's user, bound to a qjm account named `<source>:<host user name>`."""

    def __init__(self, name: str, binder: IdentityBinder) -> None:
        self.name, self.binder = name, binder

    async def user_for(self, facts: RequestFacts) -> User | None:
        host = facts.host_user
        if host is None:
            return None
        user = await self.binder.user_for(f"{self.name}:{host.name}", host)
        if not user.is_active:
            raise Forbidden("this account is deactivated; ask an administrator", code="deactivated")
        return user


@dataclass(frozen=True)
class Resolved:
    user: User
    via: str  # the source that recognised the request


class Authenticator:
    def __init__(self, source: str, accounts: AccountService, binder: IdentityBinder) -> None:
        self.source = source
        self.sources: list[IdentitySource] = [AccountsSource(accounts, only_source=source == "accounts")]
        if source != "accounts":
            self.sources.append(HostSource(source, binder))

    async def authenticate(self, facts: RequestFacts) -> Resolved:
        for src in self.sources:
            user = await src.user_for(facts)
            if user is not None:
                return Resolved(user, src.name)
        raise Unauthorized(MISSING_HOST.get(self.source, MISSING_BEARER))
