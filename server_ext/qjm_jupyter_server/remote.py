"""Remote mode: a member's Jupyter server forwards `{base_url}qjm/...` to the group server.

With `c.QJMServerApp.remote_url` set, a member's `jupyter lab` keeps no accounts, jobs or
mail of its own: the panel, the web UI and the kernels talk to their own Jupyter server
(same origin, found by discovery) and this service relays each request to the group's
`jupyter qjm`. Nothing here knows tornado; the handler in `handlers/forward.py` only
copies a request in and the streamed answer out.

What crosses the hop is an allow-list, in both directions. The member's Jupyter
credentials (its cookies, its `Authorization: token ...`, a `?token=` in the query, the
XSRF cookie, header and form value) never reach the group server, whose operator is not
the member: with them, the group server could drive the member's own Jupyter (run code
in their kernels). The qjm bearer JWT is the credential the group server issued, so it
goes along. A `Set-Cookie` from the group server is dropped too, so it cannot plant
cookies on the member's Jupyter origin.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

from .errors import BadGateway, GatewayTimeout, InvalidInput, PayloadTooLarge

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("qjm")

MAX_BODY_BYTES = 1024 * 1024  # the same cap as the group server's own API (handlers/base.py)

# Request headers that carry no credential of the member's Jupyter server.
REQUEST_HEADERS = frozenset({
    "accept", "accept-language", "cache-control", "content-type", "if-match", "if-none-match",
    "if-modified-since", "if-unmodified-since", "user-agent",
})
# Response headers a browser or a client needs; never Set-Cookie.
RESPONSE_HEADERS = frozenset({
    "cache-control", "content-disposition", "content-language", "content-security-policy", "content-type",
    "etag", "expires", "last-modified", "location", "referrer-policy", "retry-after", "vary",
    "www-authenticate", "x-content-type-options", "x-frame-options",
})
# Query parameters that are Jupyter's, not qjm's.
JUPYTER_QUERY_KEYS = frozenset({"token", "_xsrf"})


def group_root(url: str) -> str:
    """The group server's root URL, with a trailing slash; a URL ending in `qjm/` or
    `qjm/api/` (copied from a browser or an email) means the same server."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"QJMServerApp.remote_url must be an http(s) URL of the group server (got {url!r})")
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    for suffix in ("qjm/api/", "qjm/"):
        if path.endswith("/" + suffix):
            path = path[: -len(suffix)]
            break
    return f"{parts.scheme}://{parts.netloc}{path}"


def request_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The allow-listed request headers; `Authorization` only as a qjm `Bearer` token."""
    kept: list[tuple[str, str]] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                kept.append(("Authorization", f"Bearer {token.strip()}"))
        elif lower in REQUEST_HEADERS:
            kept.append((name, value))
    return kept


def forward_query(query: str) -> str:
    """The query string without Jupyter's token or XSRF value."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, v) for k, v in pairs if k not in JUPYTER_QUERY_KEYS])


@dataclass(frozen=True)
class Forwarded:
    """An upstream answer: status and allow-listed headers now, the body as it arrives."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    _response: httpx.Response

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as the group server sends it; a read timeout mid-body ends the stream."""
        import httpx

        try:
            async for chunk in self._response.aiter_bytes():
                if chunk:
                    yield chunk
        except httpx.HTTPError as exc:
            log.warning("qjm: group server stopped sending %s: %s", self._response.request.url, exc)
            raise GatewayTimeout("the group server stopped sending its answer") from exc
        finally:
            await self._response.aclose()

    async def aclose(self) -> None:
        await self._response.aclose()


class GroupServer:
    """The group server this member's Jupyter server forwards qjm requests to.

    One pooled `httpx.AsyncClient` (bound to the server's event loop, created on first
    use). A connection refused is a 502 and a connect or read timeout a 504, each a JSON
    error naming the group server, so the panel can say "group server unreachable"
    rather than hang.
    """

    def __init__(self, url: str, *, local_base: str = "/", connect_timeout: float = 5.0,
                 read_timeout: float = 30.0) -> None:
        self.url = group_root(url)
        self.local_base = local_base if local_base.endswith("/") else local_base + "/"
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        import httpx

        if self._http is None or self._http.is_closed:
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.read_timeout, connect=self.connect_timeout, pool=self.connect_timeout),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
                follow_redirects=False,
                trust_env=False,  # HTTP(S)_PROXY of the member's machine must not reroute the hop
            )
        return self._http

    def target(self, path: str, query: str) -> str:
        """`qjm/<path>` on the group server (path is what follows `qjm/`, already URL-encoded)."""
        if path.startswith("/") or "\\" in path:
            raise InvalidInput("path must be relative to qjm/", field="path")
        forwarded = forward_query(query)
        return f"{self.url}qjm/{path}" + (f"?{forwarded}" if forwarded else "")

    def response_headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Allow-listed answer headers; a redirect to the group server's qjm/ points back at ours."""
        kept: list[tuple[str, str]] = []
        for name, value in headers:
            lower = name.lower()
            if lower not in RESPONSE_HEADERS:
                continue
            if lower == "location" and value.startswith(self.url + "qjm/"):
                value = self.local_base + value[len(self.url):]
            kept.append((name, value))
        return kept

    async def forward(self, method: str, path: str, query: str, headers: Iterable[tuple[str, str]],
                      body: bytes) -> Forwarded:
        """Send one request on; the caller streams `Forwarded.chunks()` (which closes it)."""
        import httpx

        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"request body is larger than {MAX_BODY_BYTES} bytes", field="body")
        url = self.target(path, query)
        client = self._client()
        request = client.build_request(method, url, headers=request_headers(headers),
                                       content=body if body or method in ("POST", "PUT", "PATCH") else None)
        for attempt in (1, 2):
            try:
                response = await client.send(request, stream=True)
                break
            except httpx.TimeoutException as exc:
                raise GatewayTimeout(
                    f"the group server {self.url} did not answer within "
                    f"{self.connect_timeout if isinstance(exc, httpx.ConnectTimeout) else self.read_timeout:g} s"
                ) from exc
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                # A pooled connection the group server had closed (a restart, an idle timeout):
                # a GET is safe to send once more on a fresh one.
                if attempt == 1 and method in ("GET", "HEAD"):
                    continue
                raise BadGateway(f"cannot reach the group server {self.url} ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise BadGateway(f"cannot reach the group server {self.url} ({type(exc).__name__})") from exc
        return Forwarded(response.status_code, response.reason_phrase, self.response_headers(response.headers.multi_items()),
                         response)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
