"""Remote mode: a member's Jupyter server forwards qjm/ to a group server.

The "group server" here is a small recording HTTP server on 127.0.0.1, so the test sees
exactly what crosses the hop; the member is a real `jupyter server` process with
`QJM_REMOTE_URL` pointing at it. (tests/ui/test_remote_mode.py runs a real group server.)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.fixtures.process import QJMProcess, free_port, qjm_env

pytestmark = pytest.mark.timeout(180)

JUPYTER_COOKIES = "_xsrf=2|abc|def|123; username-127-0-0-1-8888=2|secret-session-cookie"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingServer:
    """Answers every request with JSON (plus headers that must not come back), records it."""

    requests: list[Recorded] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)  # lets /qjm/api/stream finish
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> RecordingServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append(Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if self.path.startswith("/qjm/api/slow"):
                    time.sleep(5)
                if self.path.startswith("/qjm/api/stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for part in (b"first chunk\n", b"second chunk\n"):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                        self.wfile.flush()
                        outer.release.wait(30)  # the second chunk only after the test read the first
                    self.wfile.write(b"0\r\n\r\n")
                    return
                payload = json.dumps({"path": self.path}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Set-Cookie", "group=planted; Path=/")
                self.send_header("X-Group-Internal", "must not cross")
                self.send_header("Retry-After", "7")
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture(scope="module")
def group() -> Iterator[RecordingServer]:
    server = RecordingServer().start()
    yield server
    server.stop()


def start_member(directory: Path, remote_url: str, **settings: object) -> QJMProcess:
    directory.mkdir(parents=True, exist_ok=True)
    return QJMProcess(data_dir=directory, env=qjm_env(directory, remote_url=remote_url, **settings), command="server").start()


@pytest.fixture(scope="module")
def member(group: RecordingServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QJMProcess]:
    proc = start_member(tmp_path_factory.mktemp("member"), group.url, remote_timeout=1.5)
    yield proc
    proc.stop()


def test_status_is_local_and_says_member(member: QJMProcess, group: RecordingServer) -> None:
    r = httpx.get(member.api + "status", timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["mode"] == "member" and body["remote_url"] == group.url
    assert body["store"] == "remote" and body["watcher_running"] is False and body["mail_enabled"] is False
    assert not [q for q in group.requests if q.path.startswith("/qjm/api/status")]
    # no store was opened: a member keeps no database
    assert not (member.data_dir / "qjm" / "qjm.sqlite3").exists()


def test_jupyter_credentials_never_reach_the_group_server(member: QJMProcess, group: RecordingServer) -> None:
    token = member.jupyter_token
    before = len(group.requests)
    r = httpx.post(
        member.api + f"jobs?token={token}&_xsrf=xsrf-value&label=a%20b&limit=5",
        headers={"Cookie": JUPYTER_COOKIES, "Authorization": f"token {token}", "X-XSRFToken": "xsrf-value",
                 "X-Forwarded-For": "10.9.8.7", "Content-Type": "application/json", "Accept": "application/json"},
        content=b'{"jobs": []}', timeout=10,
    )
    assert r.status_code == 201, r.text
    (seen,) = group.requests[before:]
    assert seen.method == "POST" and seen.path == "/qjm/api/jobs?label=a+b&limit=5"
    assert seen.body == b'{"jobs": []}'
    assert "cookie" not in seen.headers and "authorization" not in seen.headers
    assert "x-xsrftoken" not in seen.headers and "x-forwarded-for" not in seen.headers
    dump = json.dumps(seen.headers) + seen.path
    assert token not in dump and "secret-session-cookie" not in dump and "xsrf-value" not in dump
    assert seen.headers["content-type"] == "application/json"
    # the answer: status and allow-listed headers; nothing the group server sets as a cookie
    assert r.json() == {"path": "/qjm/api/jobs?label=a+b&limit=5"}
    assert r.headers["retry-after"] == "7"
    assert "planted" not in str(r.headers.get_list("set-cookie")) and "x-group-internal" not in r.headers
    assert r.headers.get_list("content-type") == ["application/json"]


def test_the_qjm_bearer_token_is_forwarded(member: QJMProcess, group: RecordingServer) -> None:
    before = len(group.requests)
    r = httpx.get(member.url + "qjm/jobs/abc%2Fdef", headers={"Authorization": "Bearer qjm.jwt.value"}, timeout=10)
    assert r.status_code == 201
    (seen,) = group.requests[before:]
    assert seen.path == "/qjm/jobs/abc%2Fdef"  # the web UI is forwarded too, the path as sent
    assert seen.headers["authorization"] == "Bearer qjm.jwt.value"


def test_body_cap_is_kept(member: QJMProcess, group: RecordingServer) -> None:
    before = len(group.requests)
    r = httpx.post(member.api + "jobs", content=b"x" * (1024 * 1024 + 1),
                   headers={"Content-Type": "application/json"}, timeout=20)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"
    assert len(group.requests) == before


def test_answers_stream_chunk_by_chunk(member: QJMProcess, group: RecordingServer) -> None:
    """The first chunk reaches the client while the group server still holds the second."""
    group.release.clear()
    with httpx.stream("GET", member.api + "stream", timeout=20) as r:
        assert r.status_code == 200
        chunks = r.iter_bytes()
        first = next(chunks)
        assert first.startswith(b"first chunk")  # it arrived: the proxy did not wait for the whole body
        group.release.set()
        rest = first + b"".join(chunks)
    assert rest == b"first chunk\nsecond chunk\n"


def test_a_slow_group_server_is_a_json_504(member: QJMProcess) -> None:
    r = httpx.get(member.api + "slow", timeout=30)
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "group_server_timeout"
    assert "did not answer" in r.json()["error"]["message"]


def test_a_stopped_group_server_is_a_json_502(tmp_path: Path) -> None:
    member = start_member(tmp_path / "m", f"http://127.0.0.1:{free_port()}/")  # nothing listens there
    try:
        r = httpx.get(member.api + "jobs", timeout=30)
        assert r.status_code == 502
        error = r.json()["error"]
        assert error["code"] == "group_server_unreachable" and "cannot reach the group server" in error["message"]
        assert httpx.get(member.api + "status", timeout=10).json()["mode"] == "member"
    finally:
        member.stop()


def test_remote_url_forms() -> None:
    from qjm_jupyter_server.remote import forward_query, group_root, request_headers

    assert group_root("http://g:8890") == "http://g:8890/"
    assert group_root("https://g/hub/qjm/") == "https://g/hub/"
    assert group_root("http://g:1/base/qjm/api") == "http://g:1/base/"
    with pytest.raises(ValueError, match="remote_url"):
        group_root("g:8890")
    assert forward_query("token=t&a=1&_xsrf=x&a=2") == "a=1&a=2"
    assert request_headers([("authorization", "token abc"), ("Cookie", "c"), ("Accept", "*/*")]) == [("Accept", "*/*")]
