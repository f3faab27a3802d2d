"""The watcher's HTTP client through a proxy from the environment, over real sockets on 127.0.0.1.

The proxy is written here (asyncio): it answers CONNECT with a tunnel and forwards
absolute-form requests, and it maps the made-up host names the tests use
(`*.proxy.test`) to 127.0.0.1, so a request that reached its target by those names can
only have gone through it (the client never resolves them itself). The https targets are
trustme-TLS servers issued for those names: the tunnel carries TLS end to end, verified
against the target's name.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
import trustme

from qjm_jupyter_server.settings import Settings
from qjm_jupyter_server.watcher.http import ConnectError, HTTPClient, Proxy, Timeout, proxy_for
from qjm_jupyter_server.watcher.ibm import IBMClient
from tests.fixtures.ibm import FakeIBMFixture
from tests.watcher.test_http import Script, client_tls, ok, serve, server_tls, track

PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD")


def proxy_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """Exactly these proxy variables, in upper case (urllib reads both cases)."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


class ConnectProxy:
    """A forward proxy: CONNECT tunnels and absolute-form requests; `mode` makes it refuse
    ("407", "403") or hang; `credentials` ("user:pass") makes it require Basic auth."""

    def __init__(self, mode: str = "ok", credentials: str | None = None) -> None:
        self.mode = mode
        self.credentials = credentials
        self.heads: list[bytes] = []
        self.connections = 0
        self.tasks: set[asyncio.Task[Any]] = set()

    @staticmethod
    def _address(authority: str) -> tuple[str, int]:
        host, _, port = authority.rpartition(":")
        return ("127.0.0.1" if host.endswith(".proxy.test") else host), int(port)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        track(self.tasks)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        self.heads.append(head)
        if self.mode == "hang":
            await asyncio.sleep(30)
            writer.close()
            return
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        status = {"407": 407, "403": 403}.get(self.mode, 200)
        if self.credentials is not None:
            expected = "Proxy-Authorization: Basic " + base64.b64encode(self.credentials.encode()).decode()
            if expected.encode() not in head:
                status = 407
        if status != 200:
            writer.write(f"HTTP/1.1 {status} No\r\nProxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 2\r\n\r\nno".encode())
            await writer.drain()
            writer.close()
            return
        if method == "CONNECT":
            up_reader, up_writer = await asyncio.open_connection(*self._address(target))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:  # absolute form: forward this request and the rest of the connection as they are
            authority = target.split("/", 3)[2]
            up_reader, up_writer = await asyncio.open_connection(*self._address(authority))
            up_writer.write(head)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def http_client(**kw: Any) -> HTTPClient:
    return HTTPClient(**{"connect_timeout": 2.0, "read_timeout": 2.0, "max_idle": 4, **kw})


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


# -- choosing the proxy --------------------------------------------------------------------------
def test_proxy_for_follows_scheme_all_proxy_and_no_proxy() -> None:
    proxies = {"https": "http://u%40x:p%3A1@secure:3128", "all": "fallback:8080", "no": "internal.example,.corp"}
    chosen = proxy_for("https", "quantum.cloud.ibm.com", proxies)
    assert chosen == Proxy("secure", 3128, "Basic " + base64.b64encode(b"u@x:p:1").decode())
    assert proxy_for("http", "quantum.cloud.ibm.com", proxies) == Proxy("fallback", 8080, None)
    assert proxy_for("https", "internal.example", proxies) is None
    assert proxy_for("https", "iam.corp", proxies) is None
    assert proxy_for("https", "x", {"https": "http://p:1", "no": "*"}) is None
    assert proxy_for("https", "x", {}) is None
    with pytest.raises(ConnectError, match="only http:// proxies"):
        proxy_for("https", "x", {"https": "socks5://p:1080"})


# -- through a real proxy ------------------------------------------------------------------------
async def test_https_goes_through_a_connect_tunnel_and_keeps_it_alive(ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script([ok()])
    proxy = ConnectProxy(credentials="alice:s3cret")
    async with serve(script, server_tls(ca, "ibm.proxy.test")) as base, serve(proxy) as proxy_url:
        proxy_env(monkeypatch, HTTPS_PROXY=proxy_url.replace("http://", "http://alice:s3cret@"))
        http = http_client(ssl_context=client_tls(ca))
        url = f"https://ibm.proxy.test:{port_of(base)}/jobs"  # resolvable only by the proxy
        for i in range(5):
            r = await http.request("GET", url, params={"n": str(i)})
            assert (r.status_code, r.json()) == (200, {"ok": True})
        await http.aclose()
    assert proxy.connections == 1 and http.connections_opened == 1  # one tunnel, reused
    [connect] = proxy.heads
    assert connect.startswith(f"CONNECT ibm.proxy.test:{port_of(base)} HTTP/1.1\r\n".encode())
    assert b"Proxy-Authorization: Basic " in connect
    assert script.connections == 1 and len(script.requests) == 5
    assert script.requests[4].startswith(b"GET /jobs?n=4 HTTP/1.1\r\n")  # origin form inside the tunnel
    assert all(b"Proxy-Authorization" not in r for r in script.requests)  # the credentials stay with the proxy


async def test_the_tunnel_verifies_the_target_certificate(ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script([ok()])
    proxy = ConnectProxy()
    async with serve(script, server_tls(ca, "other.proxy.test")) as base, serve(proxy) as proxy_url:
        proxy_env(monkeypatch, HTTPS_PROXY=proxy_url)
        http = http_client(ssl_context=client_tls(ca))
        with pytest.raises(ConnectError, match="TLS handshake failed"):
            await http.request("GET", f"https://ibm.proxy.test:{port_of(base)}/")
        await http.aclose()
    assert len(proxy.heads) == 1 and script.requests == []


async def test_http_goes_to_the_proxy_in_absolute_form(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script([ok()])
    proxy = ConnectProxy()
    async with serve(script) as base, serve(proxy) as proxy_url:
        proxy_env(monkeypatch, HTTP_PROXY=proxy_url.replace("http://", "http://bob:pw@"))
        http = http_client()
        url = f"http://api.proxy.test:{port_of(base)}/jobs"
        assert (await http.request("GET", url)).status_code == 200
        assert (await http.request("GET", url)).status_code == 200
        await http.aclose()
    assert proxy.connections == 1
    first = script.requests[0]
    assert first.startswith(f"GET http://api.proxy.test:{port_of(base)}/jobs HTTP/1.1\r\n".encode())
    assert b"Proxy-Authorization: Basic " + base64.b64encode(b"bob:pw") in first


async def test_no_proxy_goes_direct(ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script([ok()])
    proxy = ConnectProxy()
    async with serve(script, server_tls(ca, "127.0.0.1")) as base, serve(proxy) as proxy_url:
        proxy_env(monkeypatch, HTTPS_PROXY=proxy_url, NO_PROXY="localhost,127.0.0.1")
        http = http_client(ssl_context=client_tls(ca))
        assert (await http.request("GET", base + "/")).status_code == 200
        await http.aclose()
    assert proxy.connections == 0 and script.connections == 1


@pytest.mark.parametrize(("mode", "said"), [("407", "wants authentication"), ("403", "refused the tunnel")])
async def test_a_refusing_proxy_is_a_connect_error(mode: str, said: str, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ConnectProxy(mode=mode)
    async with serve(proxy) as proxy_url:
        proxy_env(monkeypatch, HTTPS_PROXY=proxy_url)
        http = http_client(ssl_context=client_tls(ca))
        with pytest.raises(ConnectError, match=said):
            await http.request("GET", "https://ibm.proxy.test:443/")
        await http.aclose()
    assert len(proxy.heads) == 1


@pytest.mark.parametrize(("connect_timeout", "read_timeout"), [(0.3, 5.0), (5.0, 0.3)])
async def test_a_proxy_that_never_answers_times_out(
    connect_timeout: float, read_timeout: float, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CONNECT answer is part of connecting: whichever timeout runs out first, it is a connect timeout."""
    proxy = ConnectProxy(mode="hang")
    async with serve(proxy) as proxy_url:
        proxy_env(monkeypatch, HTTPS_PROXY=proxy_url)
        http = http_client(connect_timeout=connect_timeout, read_timeout=read_timeout, ssl_context=client_tls(ca))
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(Timeout) as caught:
            await http.request("GET", "https://ibm.proxy.test:443/")
        assert caught.value.phase == "connect"
        assert loop.time() - started < 4.0  # the shorter timeout ended it
        await http.aclose()


async def test_an_unreachable_proxy_is_a_connect_error(monkeypatch: pytest.MonkeyPatch) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    proxy_env(monkeypatch, HTTPS_PROXY=f"http://127.0.0.1:{port}")
    http = http_client()
    with pytest.raises(ConnectError, match="to the proxy"):
        await http.request("GET", "https://ibm.proxy.test/")
    await http.aclose()


# -- the IBM client through the proxy ------------------------------------------------------------
class TLSFront:
    """Hands each connection to a plain HTTP server on 127.0.0.1:port (the fake IBM API);
    served with TLS, it puts https in front of the fake."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.tasks: set[asyncio.Task[Any]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        track(self.tasks)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _ibm_round(ibm: IBMClient, fake_ibm: FakeIBMFixture) -> None:
    key = fake_ibm.key()
    fake_ibm.add_job("q1", "Queued")
    fake_ibm.add_job("r1", "Running")
    pending = await ibm.pending_jobs(key, fake_ibm.default_crn)
    assert {j: s.status for j, s in pending.items()} == {"q1": "QUEUED", "r1": "RUNNING"}
    fake_ibm.set_status("r1", "Completed")
    assert (await ibm.get_job(key, fake_ibm.default_crn, "r1")).status == "DONE"


async def test_ibm_client_through_https_proxy(fake_ibm: FakeIBMFixture, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ConnectProxy()
    front = TLSFront(port_of(fake_ibm.base))
    async with serve(front, server_tls(ca, "quantum.proxy.test")) as front_url, serve(proxy) as proxy_url:
        proxy_env(monkeypatch, HTTPS_PROXY=proxy_url)
        tls_port = port_of(front_url)
        base = f"https://quantum.proxy.test:{tls_port}"
        ibm = IBMClient(Settings(ibm_iam_url=base, ibm_api_url=base + "/api/v1", ibm_connect_timeout=2.0, ibm_read_timeout=2.0),
                        ssl_context=client_tls(ca))
        await _ibm_round(ibm, fake_ibm)
        await ibm.aclose()
    assert proxy.heads and all(h.startswith(f"CONNECT quantum.proxy.test:{tls_port} ".encode()) for h in proxy.heads)
    assert ibm.calls["iam"] == 1 and fake_ibm.count_calls("/identity/token") == 1
    assert fake_ibm.count_calls("/api/v1/jobs") == 2


async def test_ibm_client_through_http_proxy(fake_ibm: FakeIBMFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ConnectProxy()
    async with serve(proxy) as proxy_url:
        proxy_env(monkeypatch, HTTP_PROXY=proxy_url)
        base = f"http://quantum.proxy.test:{port_of(fake_ibm.base)}"
        ibm = IBMClient(Settings(ibm_iam_url=base, ibm_api_url=base + "/api/v1", ibm_connect_timeout=2.0, ibm_read_timeout=2.0))
        await _ibm_round(ibm, fake_ibm)
        await ibm.aclose()
    assert proxy.heads and all(b" http://quantum.proxy.test:" in h.split(b"\r\n")[0] for h in proxy.heads)
    assert {c.host for c in fake_ibm.calls} == {"quantum.proxy.test"}  # every call came by the proxy's forwarding
    assert fake_ibm.count_calls("/api/v1/jobs") == 2
