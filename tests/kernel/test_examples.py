"""The example notebooks, executed by nbclient in a real kernel against a real server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import nbformat
import pytest
from nbclient import NotebookClient

from tests.fixtures.process import QJMProcess, qjm_env

from .conftest import Account, body_text, create_verified_account, wait_for_mail

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pytestmark = pytest.mark.timeout(300)


def execute(name: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, cwd: Path) -> nbformat.NotebookNode:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=180, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def text_of(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def env_for(account: Account, config_dir: Path, **extra: str) -> dict[str, str]:
    return {"QJM_URL": account.url, "QJM_EMAIL": account.email, "QJM_PASSWORD": account.password,
            "QJM_CONFIG_DIR": str(config_dir), **extra}


def test_01_quickstart_local_job_to_email(account: Account, kernel_smtp, config_dir, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    nb = execute("01-quickstart.ipynb", env_for(account, config_dir), monkeypatch, tmp_path)
    out = text_of(nb)
    assert f"watching 1 job on aer_simulator; you will get an email at {account.email} on DONE" in out
    mails = wait_for_mail(kernel_smtp, lambda m: account.email in str(m["To"]) and "quickstart" in body_text(m))
    assert mails, [m["Subject"] for m in kernel_smtp.messages]
    assert "DONE" in (str(mails[0]["Subject"]) + body_text(mails[0])).upper()


def test_02_ibm_quantum_with_the_fake_ibm_api(start_qjm, kernel_smtp, fake_ibm, config_dir, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("qiskit_ibm_runtime")
    server = start_qjm(smtp_host=kernel_smtp.host, smtp_port=kernel_smtp.port, smtp_security="none",
                       ibm_iam_url=fake_ibm.base, ibm_api_url=fake_ibm.api_url, poll_interval=0.3)
    key = fake_ibm.key()
    account = create_verified_account(server.url, kernel_smtp, default_instance=fake_ibm.default_crn)
    token = httpx.post(server.api + "auth/login", json={"email": account.email, "password": account.password}, timeout=20).json()["access_token"]
    r = httpx.patch(server.api + "me", json={"ibm_quantum_token": key}, headers={"Authorization": f"Bearer {token}"}, timeout=20)
    assert r.status_code == 200, r.text
    fake_ibm.add_job("ex2-job", "Running", backend="ibm_fake")
    env = env_for(account, config_dir, QJM_EXAMPLE_JOB_ID="ex2-job", QJM_EXAMPLE_IBM_PROXY=fake_ibm.base,
                  QISKIT_IBM_TOKEN=key, QISKIT_IBM_INSTANCE=fake_ibm.default_crn, IAM_URL=fake_ibm.base)
    nb = execute("02-ibm-quantum.ipynb", env, monkeypatch, tmp_path)
    out = text_of(nb)
    assert f"watching 1 job on ibm_fake; you will get an email at {account.email} on RUNNING, CANCELLED, DONE, ERROR" in out
    fake_ibm.set_status("ex2-job", "Completed")  # the server's watcher polls the fake and mails
    mails = wait_for_mail(kernel_smtp, lambda m: account.email in str(m["To"]) and "ex2-job" in body_text(m)
                          and "DONE" in (str(m["Subject"]) + body_text(m)).upper(), timeout=60)
    assert mails, [m["Subject"] for m in kernel_smtp.messages]


@pytest.mark.mongo
def test_03_group_server_on_mongodb(kernel_smtp, mongo_url, mongo_database, config_dir, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    parts = urlsplit(mongo_url)
    db_url = urlunsplit((parts.scheme, parts.netloc, f"/{mongo_database}", parts.query, ""))
    d = tmp_path / "group"
    d.mkdir()
    env = qjm_env(d, smtp_host=kernel_smtp.host, smtp_port=kernel_smtp.port, smtp_security="none",
                  db_url=db_url, public_url="http://qjm.test/")
    server = QJMProcess(data_dir=d, env=env, extra_args=[f"--config={EXAMPLES / 'jupyter_qjm_config.py'}"])
    try:
        server.start(timeout=120)
        assert httpx.get(server.api + "status", timeout=20).json()["store"].lower().startswith("mongo")
        account = create_verified_account(server.url, kernel_smtp)
        nb = execute("03-group-server.ipynb", env_for(account, config_dir, QJM_EXAMPLE_JOB_IDS="g-1,g-2"), monkeypatch, tmp_path)
        out = text_of(nb)
        assert "store=mongo" in out.lower()
        assert "watching 2 jobs" in out and "g-1" in out and "g-2" in out
    finally:
        server.stop()
