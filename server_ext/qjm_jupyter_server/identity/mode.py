"""Which identity source a server uses when the operator did not say.

- `jupyter` inside `jupyter lab` / `jupyter server`: the person who opened Lab is
  already authenticated by Jupyter, so a second password would only be friction.
- `accounts` for `jupyter qjm` started by hand: a group server has no Jupyter users to
  borrow, so members register qjm accounts (JWTs).
- `hub` for `jupyter qjm` started by JupyterHub as a managed service: the Hub passes
  `JUPYTERHUB_SERVICE_NAME` and `JUPYTERHUB_API_TOKEN` to its services, and the Hub
  already knows every member.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

IDENTITY_SOURCES = ("jupyter", "accounts", "hub")


def runs_as_hub_service(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    # A single-user server also holds an API token, but names a user, not a service.
    return bool(env.get("JUPYTERHUB_SERVICE_NAME") and env.get("JUPYTERHUB_API_TOKEN") and not env.get("JUPYTERHUB_USER"))


def default_identity_source(group_server: bool, env: Mapping[str, str] | None = None) -> str:
    if group_server and runs_as_hub_service(env):
        return "hub"
    return "accounts" if group_server else "jupyter"
