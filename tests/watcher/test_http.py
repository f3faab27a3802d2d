"""The watcher's HTTP/1.1 client (watcher/http.py) against real sockets on 127.0.0.1.

A scripted asyncio server answers each request with the bytes a test gives it, so framing
(Content-Length, chunked, until close), keep-alive, timeouts and TLS are each exercised
as a server would really send them. The IBM client's own behaviour over this client is
tested against the fake IBM API in test_ibm_client.py.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import pytest
import trustme

from qjm_jupyter_server.settings import Settings
from qjm_jupyter_server.watcher.http import ConnectError, HTTPClient, ProtocolError, Timeout
from qjm_jupyter_server.watcher.ibm import IBMClient
from tests.fixtures.ibm import FakeIBMFixture

Reply = Callable[[bytes], Any]  # request head -> bytes, a list of byte pieces (sent with pauses), or None (hang)


def ok(body: bytes = b'{"ok": true}', extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def track(tasks: set[asyncio.Task[Any]]) -> None:
    """Add the handler task running now to `tasks`, for `serve` to cancel at the end."""
    task = asyncio.current_task()
    assert task is not None
    tasks.add(task)


class Script:
    """Answers request n with replies[n] (the last one repeats); records heads and connections."""

    def __init__(self, replies: list[Any], close_after: bool = False) -> None:
        self.replies = replies
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0
        self.tasks: set[asyncio.Task[Any]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        track(self.tasks)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    head += await reader.readexactly(length)
                self.requests.append(head)
                reply = self.replies[min(len(self.requests) - 1, len(self.replies) - 1)]
                if reply is None:
                    await asyncio.sleep(30)  # a hung server
                    return
                for piece in reply if isinstance(reply, list) else [reply]:
                    writer.write(piece)
                    await writer.drain()
                    if isinstance(reply, list):
                        await asyncio.sleep(0.02)  # separate TCP segments: the parser must resume
                if self.close_after:
                    return
        finally:
            writer.close()


class Handler(Protocol):
    """A connection handler with its tasks (Script here; test_proxy.py's proxy and TLS front)."""

    tasks: set[asyncio.Task[Any]]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None: ...


@asynccontextmanager
async def serve(script: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    server = await asyncio.start_server(script.handle, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.close()
        for task in script.tasks:
            task.cancel()
        await asyncio.gather(*script.tasks, return_exceptions=True)


def client(**kw: Any) -> HTTPClient:
    return HTTPClient(**{"connect_timeout": 2.0, "read_timeout": 2.0, "max_idle": 4, **kw})


async def test_keep_alive_reuses_one_connection() -> None:
    script = Script([ok()])
    http = client()
    async with serve(script) as base:
        for i in range(20):
            r = await http.request("GET", f"{base}/jobs", params={"offset": str(i)})
            assert (r.status_code, r.json()) == (200, {"ok": True})
    await http.aclose()
    assert script.connections == 1 and http.connections_opened == 1
    assert script.requests[5].startswith(b"GET /jobs?offset=5 HTTP/1.1\r\n")


async def test_ibm_client_reuses_connections_to_the_fake(fake_ibm: FakeIBMFixture) -> None:
    ibm = IBMClient(Settings(ibm_iam_url=fake_ibm.base, ibm_api_url=fake_ibm.api_url, ibm_concurrency=2))
    key = fake_ibm.key()
    fake_ibm.add_job("j")
    for _ in range(10):
        await ibm.pending_jobs(key, fake_ibm.default_crn)
    assert ibm._http is not None and ibm._http.connections_opened == 1  # IAM and 10 listings on one connection
    await ibm.aclose()


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    script = Script([ok()], close_after=True)  # no "Connection: close": the client learns only from the socket
    http = client()
    async with serve(script) as base:
        assert (await http.request("GET", base + "/a")).status_code == 200
        await asyncio.sleep(0.05)
        assert (await http.request("GET", base + "/b")).status_code == 200
    await http.aclose()
    assert script.connections == 2 and len(script.requests) == 2


async def test_connection_close_is_honoured() -> None:
    script = Script([ok(extra="Connection: close\r\n")])
    http = client()
    async with serve(script) as base:
        for _ in range(3):
            await http.request("GET", base + "/")
    await http.aclose()
    assert http.connections_opened == 3


async def test_chunked_body_in_pieces_with_trailers() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    stream = head + b'9\r\n{"a": 1, \r\nC;ext=1\r\n"b": [1, 2]}\r\n0\r\nX-Trailer: yes\r\n\r\n'
    cut = len(head) + 6
    pieces = [stream[:cut], stream[cut : cut + 14], stream[cut + 14 : -5], stream[-5:]]  # cut mid-size, mid-data, mid-trailer
    script = Script([pieces])
    http = client()
    async with serve(script) as base:
        r = await http.request("GET", base + "/")
        assert r.json() == {"a": 1, "b": [1, 2]}
        assert (await http.request("GET", base + "/")).json() == {"a": 1, "b": [1, 2]}
    await http.aclose()
    assert script.connections == 1  # the connection was left at a message boundary and reused


async def test_body_until_close_and_gzip() -> None:
    body = gzip.compress(b'{"jobs": []}')
    script = Script([b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n" + body], close_after=True)
    http = client()
    async with serve(script) as base:
        r = await http.request("GET", base + "/")
    await http.aclose()
    assert r.json() == {"jobs": []}
    assert b"accept-encoding: gzip" in script.requests[0].lower()


async def test_redirects_are_returned_not_followed() -> None:
    script = Script([b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\n\r\n"])
    http = client()
    async with serve(script) as base:
        r = await http.request("GET", base + "/")
    await http.aclose()
    assert (r.status_code, r.headers["location"]) == (302, "http://127.0.0.1:9/elsewhere")
    assert len(script.requests) == 1


async def test_interim_100_response_is_skipped() -> None:
    script = Script([b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"{}")])
    http = client()
    async with serve(script) as base:
        r = await http.request("POST", base + "/", form={"a": "b"})
    await http.aclose()
    assert (r.status_code, r.content) == (200, b"{}")
    assert script.requests[0].endswith(b"\r\n\r\na=b")


@pytest.mark.timeout(20)
async def test_read_timeout_on_a_silent_server() -> None:
    script = Script([None])
    http = client(read_timeout=0.3)
    async with serve(script) as base:
        started = asyncio.get_running_loop().time()
        with pytest.raises(Timeout) as info:
            await http.request("GET", base + "/")
        assert info.value.phase == "read"
        assert asyncio.get_running_loop().time() - started < 3
    await http.aclose()


@pytest.mark.timeout(20)
async def test_read_timeout_counts_silence_not_the_whole_answer() -> None:
    body = b"x" * 10
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    slow = [head] + [body[i : i + 1] for i in range(len(body))]  # 11 pieces, 20 ms apart: 0.2 s in all
    script = Script([slow])
    http = client(read_timeout=0.15)
    async with serve(script) as base:
        r = await http.request("GET", base + "/")
    await http.aclose()
    assert r.content == body


@pytest.mark.timeout(20)
async def test_connect_timeout_covers_the_tls_handshake() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        script.tasks.add(task)
        try:
            await asyncio.sleep(10)  # accepts TCP, never speaks TLS
        finally:
            writer.close()

    script = Script([])
    script.handle = silent  # type: ignore[method-assign]
    http = client(connect_timeout=0.3)
    async with serve(script) as base:
        with pytest.raises(Timeout) as info:
            await http.request("GET", base.replace("http:", "https:") + "/")
        assert info.value.phase == "connect"
    await http.aclose()


async def test_nothing_listening_is_a_connect_error() -> None:
    http = client()
    with pytest.raises(ConnectError):
        await http.request("GET", "http://127.0.0.1:9/")
    await http.aclose()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def server_tls(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(ctx)
    return ctx


def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


async def test_tls_with_a_trusted_certificate(ca: trustme.CA) -> None:
    script = Script([ok()])
    http = client(ssl_context=client_tls(ca))
    async with serve(script, server_tls(ca, "127.0.0.1")) as base:
        assert (await http.request("GET", base + "/")).json() == {"ok": True}
        assert (await http.request("GET", base + "/")).json() == {"ok": True}
    await http.aclose()
    assert script.connections == 1


async def test_tls_refuses_an_untrusted_certificate(ca: trustme.CA) -> None:
    script = Script([ok()])
    http = client()  # the default context (certifi's CAs) does not know the test CA
    async with serve(script, server_tls(ca, "127.0.0.1")) as base:
        with pytest.raises(ConnectError, match="TLS"):
            await http.request("GET", base + "/")
    await http.aclose()
    assert script.requests == []


async def test_tls_refuses_a_certificate_for_another_name(ca: trustme.CA) -> None:
    script = Script([ok()])
    http = client(ssl_context=client_tls(ca))
    async with serve(script, server_tls(ca, "ibm.example")) as base:
        with pytest.raises(ConnectError, match="TLS"):
            await http.request("GET", base + "/")
    await http.aclose()
    assert script.requests == []


@pytest.mark.parametrize(
    "reply",
    [
        b"NOT HTTP\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbroken header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
    ],
)
async def test_malformed_responses_are_protocol_errors(reply: bytes) -> None:
    script = Script([reply])
    http = client()
    async with serve(script) as base:
        with pytest.raises(ProtocolError):
            await http.request("GET", base + "/")
    await http.aclose()


async def test_a_body_cut_short_is_a_protocol_error() -> None:
    script = Script([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"], close_after=True)
    http = client()
    async with serve(script) as base:
        with pytest.raises(ProtocolError):
            await http.request("GET", base + "/")
    await http.aclose()


async def test_header_values_with_line_breaks_are_refused() -> None:
    script = Script([ok()])
    http = client()
    async with serve(script) as base:
        with pytest.raises(ValueError):
            await http.request("GET", base + "/", headers={"Service-CRN": "crn\r\nX-Injected: 1"})
    await http.aclose()
    assert script.requests == []
