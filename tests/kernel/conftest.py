"""Kernel-side fixtures: a real `jupyter qjm` process with mail to aiosmtpd, and accounts on it."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fixtures.process import QJMProcess, qjm_env
from tests.fixtures.smtp import SMTPTestServer

PASSWORD = "correct horse battery staple"
CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/kerneltest:inst-0001::"


@dataclass
class Account:
    url: str  # server root
    email: str
    password: str


def wait_for_mail(smtp: SMTPTestServer, predicate, timeout: float = 30.0) -> list:  # type: ignore[no-untyped-def]
    """Messages matching `predicate`, waiting up to a deadline (a guard, not a speed check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in smtp.messages if predicate(m)]
        if found:
            return found
        time.sleep(0.1)
    return []


def body_text(message) -> str:  # type: ignore[no-untyped-def]
    part = message.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


def create_verified_account(url: str, smtp: SMTPTestServer, email: str | None = None, password: str = PASSWORD,
                            default_instance: str | None = CRN) -> Account:
    """Register through the API and confirm with the token from the real verification email."""
    email = email or f"kernel-{secrets.token_hex(4)}@example.org"
    api = url + "qjm/api/"
    r = httpx.post(api + "auth/register", json={"email": email, "password": password, "default_instance": default_instance}, timeout=20)
    assert r.status_code == 202, r.text
    mails = wait_for_mail(smtp, lambda m: email in str(m["To"]) and "token=" in body_text(m))
    assert mails, f"no verification email for {email}; got {[m['Subject'] for m in smtp.messages]}"
    token = re.search(r"token=([A-Za-z0-9_\-.%]+)", body_text(mails[-1])).group(1)  # type: ignore[union-attr]
    from urllib.parse import unquote

    r = httpx.post(api + "auth/verify/confirm", json={"token": unquote(token)}, timeout=20)
    assert r.status_code == 200, r.text
    return Account(url=url, email=email, password=password)


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty credentials dir and no QJM_* client settings from the machine."""
    d = tmp_path / "qjm-config"
    monkeypatch.setenv("QJM_CONFIG_DIR", str(d))
    for name in ("QJM_URL", "QJM_EMAIL", "QJM_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return d


@pytest.fixture(autouse=True)
def fresh_session() -> Iterator[None]:
    """Each test starts as a new kernel would: no shared logins, client, tables or watcher."""
    from qjm_jupyter.session import SESSION

    SESSION.shutdown()
    yield
    SESSION.shutdown()


@pytest.fixture(scope="module")
def kernel_smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SMTPTestServer]:
    """aiosmtpd on 127.0.0.1 (plain, a local relay), shared by a test module."""
    server = SMTPTestServer(tmp_path_factory.mktemp("smtp"), mode="none")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def qjm_server(tmp_path_factory: pytest.TempPathFactory, kernel_smtp: SMTPTestServer) -> Iterator[QJMProcess]:
    """One `jupyter qjm` process per test module (its tests use separate accounts), mail to aiosmtpd."""
    d = tmp_path_factory.mktemp("qjm-server")
    env = qjm_env(d, smtp_host=kernel_smtp.host, smtp_port=kernel_smtp.port, smtp_security="none",
                  public_url="http://qjm.test/", poll_interval=0.3)
    proc = QJMProcess(data_dir=d, env=env)
    try:
        yield proc.start()
    finally:
        proc.stop()


@pytest.fixture
def account(qjm_server: QJMProcess, kernel_smtp: SMTPTestServer) -> Account:
    """A fresh verified account (with a default instance) on the module's server."""
    return create_verified_account(qjm_server.url, kernel_smtp)
