"""Reading a request's identity facts off the tornado handler (the only tornado-aware part of identity).

jupyter_server's `JupyterHandler.prepare` has already asked the server's
IdentityProvider who is calling (token, cookie, or Hub OAuth under JupyterHub) and kept
the answer; this turns it into a `HostUser`:

- Under JupyterHub (single-user server, or `jupyter qjm` as a Hub service using
  JupyterHub's IdentityProvider) the user carries the Hub's model: real name, admin
  flag, and `user_info` (where an authenticator may put the email).
- A plain personal server's IdentityProvider knows no names: every token request gets a
  fresh random "Anonymous ..." user, and the token stands for the server's owner. So the
  owner (the OS account running the server) is the identity there.
- A server with Jupyter auth switched off accepts anyone; that is no identity at all.
"""

from __future__ import annotations

import getpass
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider

from ..identity import HostUser, RequestFacts

# IdentityProviders that cannot tell one person from another (one shared token or password).
_OWNER_ONLY = (IdentityProvider, PasswordIdentityProvider)


def server_owner() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry (some containers)
        return "owner"


def host_user(handler: Any) -> HostUser | None:
    user = getattr(handler, "_jupyter_current_user", None)
    if user is None:
        return None
    provider = handler.identity_provider
    if not getattr(provider, "auth_enabled", True):
        return None
    hub = getattr(user, "hub_user", None)
    if isinstance(hub, dict) and isinstance(hub.get("name"), str):
        info = hub.get("user_info") if isinstance(hub.get("user_info"), dict) else {}
        email = info.get("email") if isinstance(info.get("email"), str) else None
        admin = hub.get("admin") if isinstance(hub.get("admin"), bool) else None
        return HostUser(name=hub["name"], admin=admin, email=email)
    if type(provider) in _OWNER_ONLY:
        return HostUser(name=server_owner())
    return HostUser(name=str(user.username))


def request_facts(handler: Any, source: str) -> RequestFacts:
    return RequestFacts(
        authorization=handler.request.headers.get("Authorization", ""),
        host_user=None if source == "accounts" else host_user(handler),
    )
