"""Running `jupyter qjm` as a JupyterHub managed service.

The Hub starts the service with its coordinates in the environment
(`JUPYTERHUB_SERVICE_URL`, `JUPYTERHUB_SERVICE_PREFIX`, OAuth client and API token). The
service then has to listen there, serve under the prefix (the Hub's proxy does not strip
it) and authenticate requests with Hub OAuth. JupyterHub's own IdentityProvider for
Jupyter servers does exactly that from the same variables (browser cookie after the
OAuth dance, or `Authorization: token <hub token>` checked against the Hub API, with the
service's access scopes enforced), so the service uses it instead of a copy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

HUB_IDENTITY_PROVIDER = "jupyterhub.singleuser.extension.JupyterHubIdentityProvider"


def hub_service_args(env: Mapping[str, str] | None = None) -> list[str]:
    """ServerApp options for a Hub service, placed before the user's own (which win)."""
    env = os.environ if env is None else env
    args = [f"--ServerApp.identity_provider_class={HUB_IDENTITY_PROVIDER}"]
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX")
    if prefix:
        args.append(f"--ServerApp.base_url={prefix}")
    url = env.get("JUPYTERHUB_SERVICE_URL")
    if url:
        parts = urlsplit(url)
        if parts.hostname:
            args.append(f"--ServerApp.ip={parts.hostname}")
        if parts.port:
            args += [f"--ServerApp.port={parts.port}", "--ServerApp.port_retries=0"]
    return args


def hub_service_api_path(service: str, env: Mapping[str, str] | None = None) -> str:
    """`<hub base>services/<name>/qjm/api/`: the service's API on the Hub's proxy (same origin as Lab)."""
    env = os.environ if env is None else env
    if not service.strip():
        return ""
    base = env.get("JUPYTERHUB_BASE_URL", "/") or "/"
    return f"{base.rstrip('/')}/services/{service.strip().strip('/')}/qjm/api/"
