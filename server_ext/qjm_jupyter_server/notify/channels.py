"""Channels other than email (ntfy, Slack, Discord, JSON webhooks, ... any Apprise URL).

Apprise speaks to 100+ services, and that is also the risk: many of its schemes take a
host from the URL (json://, ntfy://, matrix://, mailto://, ...), so a user could point the
server at its own network (127.0.0.1, a database, the cloud metadata service at
169.254.169.254). Apprise has no guard against that, so every URL passes ours, when it
is stored and again right before each send (DNS answers change):

- the scheme must be an Apprise notification scheme, not one that reaches the server's own
  machine (desktop notifications, syslog; `file://` is no notification scheme at all), and
  within the operator's `channel_schemes` allowlist when one is set;
- a URL whose plugin takes a network host must resolve only to public addresses, unless the
  host is one the operator allows (`channel_allowed_hosts`, meant for tests and trusted
  intranet receivers); HTTP redirects are not followed, so a public host cannot bounce a
  request inward.

A URL holds its service's secret (a webhook token), so it is encrypted with the key ring
like IBM keys, and only its scheme and host are ever shown.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput
from ..settings import Settings

log = logging.getLogger("qjm.channels")

# Schemes whose plugin acts on the server's own machine, not over the network.
LOCAL_SCHEMES = frozenset({"file", "syslog", "dbus", "kde", "qt", "glib", "gnome", "windows", "macosx", "rsyslog"})
URL_MAX = 2000
_HTTP_ERROR = re.compile(r"error=(\d{3})")


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # what the channel list shows; "" for services whose URL holds only tokens
    network_host: str | None  # the host to resolve and check, None for fixed-host services
    port: int | None


def _asset() -> Any:
    from apprise import AppriseAsset

    return AppriseAsset(http_redirects=False, secure_logging=True)


def _plugin(url: str) -> Any:
    """Apprise's plugin for a URL, or None for anything it cannot take (never raises)."""
    from apprise import Apprise

    try:
        return Apprise.instantiate(url, asset=_asset())
    except Exception:  # noqa: BLE001 - a malformed URL is the user's input, not our failure
        return None


def inspect(url: str, settings: Settings) -> Target:
    """Parse and check an Apprise URL without sending anything (InvalidInput on 'url')."""
    url = (url or "").strip()
    if not url or len(url) > URL_MAX or any(ord(c) < 32 for c in url):
        raise InvalidInput(f"give an Apprise URL such as ntfys://ntfy.sh/my-topic (at most {URL_MAX} characters)", field="url")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if not scheme or scheme in LOCAL_SCHEMES:
        raise InvalidInput(f"scheme {scheme or url[:20]!r} is not allowed for channels", field="url")
    allowed = {s.lower() for s in settings.channel_schemes}
    if allowed and scheme not in allowed:
        raise InvalidInput(
            f"this server allows only these channel schemes: {', '.join(sorted(allowed))}", field="url"
        )
    plugin = _plugin(url)
    if plugin is None:
        raise InvalidInput(f"not a valid Apprise notification URL for scheme {scheme!r}", field="url")
    host = str(getattr(plugin, "host", "") or "")
    takes_host = any("{host}" in t for t in getattr(plugin, "templates", ()))
    if getattr(plugin, "mode", None) == "cloud":  # ntfy://topic goes to ntfy.sh
        host, takes_host = "ntfy.sh", False
    network = host.strip("[]") if takes_host and host else None
    shown = host if takes_host else ""
    return Target(scheme, shown, network, getattr(plugin, "port", None))


async def check_reachable(target: Target, settings: Settings, timeout: float = 5.0) -> None:
    """Refuse a host that is, or resolves to, a loopback, private, link-local or otherwise
    non-public address (InvalidInput on 'url'), unless the operator allows that host."""
    host = target.network_host
    if host is None:
        return
    if host.lower() in {h.lower() for h in settings.channel_allowed_hosts}:
        return
    refused = InvalidInput(
        f"channel host {host!r} is not a public internet address; this server does not send to its own network",
        field="url",
    )
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(host, target.port or 443, type=socket.SOCK_STREAM), timeout)
        except (OSError, asyncio.TimeoutError, UnicodeError, ValueError):
            raise InvalidInput(f"cannot resolve channel host {host[:100]!r}", field="url") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for address in addresses:
        if getattr(address, "ipv4_mapped", None) is not None:
            address = address.ipv4_mapped  # type: ignore[union-attr]
        if not address.is_global or address.is_multicast:
            if str(address) in settings.channel_allowed_hosts:
                continue
            raise refused


@dataclass(frozen=True)
class Delivered:
    ok: bool
    temporary: bool = True
    reason: str = ""


async def deliver(url: str, title: str, body: str, timeout: float) -> Delivered:
    """Send one notification through Apprise. Apprise runs the plugin's blocking request
    on its own thread pool, so the loop stays free; its own retries stay off (the outbox
    retries with backoff). A timeout is 'unknown' to Apprise (the thread may still
    deliver), so it is retried like any transient failure."""
    from apprise import Apprise

    apprise = Apprise(asset=_asset())
    plugin = _plugin(url)
    if plugin is None:
        return Delivered(False, temporary=False, reason="the channel URL is no longer a valid Apprise URL")
    plugin.socket_connect_timeout = min(timeout, plugin.socket_connect_timeout or timeout)
    plugin.socket_read_timeout = min(timeout, plugin.socket_read_timeout or timeout)
    apprise.add(plugin)
    result = await apprise.async_notify(body=body, title=title, timeout=timeout + 1)
    if result:
        return Delivered(True)
    messages = [e.message for e in result.logs()]
    text = " ".join(" ".join(messages).split())[:300] or f"delivery failed ({result.status.name})"
    code = next((int(m.group(1)) for m in map(_HTTP_ERROR.search, messages) if m), None)
    permanent = code is not None and 400 <= code < 500 and code not in (408, 425, 429)
    return Delivered(False, temporary=not permanent, reason=text)
