"""One saved login per server, and one login per kernel shared by `%qjm_login` and the user's client.

Real kernels: nbclient's, and one started by a real Jupyter server (so discovery finds
that server exactly as in a user's Lab).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.fixtures.process import QJMProcess, qjm_env
from tests.fixtures.server_kernel import run_in_server_kernel

from .conftest import Account
from .test_magics import client_env, run_notebook

pytestmark = pytest.mark.timeout(300)


def _jobs_on(account: Account) -> list[str]:
    api = account.url + "qjm/api/"
    token = httpx.post(api + "auth/login", json={"email": account.email, "password": account.password},
                       timeout=20).json()["access_token"]
    r = httpx.get(api + "jobs", headers={"Authorization": f"Bearer {token}"}, timeout=20)
    assert r.status_code == 200, r.text
    return [j["job_id"] for j in r.json()["jobs"]]


def test_a_login_to_one_server_is_never_used_for_another(account: Account, config_dir: Path, monkeypatch,
                                                         tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # %qjm_login to server A (the group server) in one kernel: saved for A.
    out = run_notebook(["%load_ext qjm_jupyter", "%qjm_login"], client_env(account, config_dir), monkeypatch, tmp_path)
    assert out[1].strip() == f"logged in to {account.url} as {account.email}"

    # A personal Jupyter server B, same user (same credentials dir), no QJM_URL anywhere.
    b_dir = tmp_path / "server-b"
    b_dir.mkdir()
    env = qjm_env(b_dir, smtp_host="")
    env["QJM_CONFIG_DIR"] = str(config_dir)
    server_b = QJMProcess(data_dir=b_dir, env=env, command="server").start()
    try:
        out = run_in_server_kernel(server_b, [
            "from qjm_jupyter import JobManagerClient\nclient = JobManagerClient()\nprint(client.url)",
            "try:\n    client.register_job('b-kernel-job-1')\n    print('SENT')\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)",
            "%load_ext qjm_jupyter",
            "%qjm_watch 'b-kernel-job-2'",
        ])
    finally:
        server_b.stop()
    assert out[0].strip() == server_b.url  # the server this kernel runs under, not the saved A
    # B answers as B's own (Jupyter) user, whom the kernel proves with B's runtime-file token
    # (personal mode): the bare ids need an instance that B's account does not have yet.
    assert out[1].startswith("QJMHTTPError 422") and "default_instance" in out[1], out[1]
    assert "UsageError: qjm:" in out[3] and "default_instance" in out[3], out[3]
    assert not {"b-kernel-job-1", "b-kernel-job-2"} & set(_jobs_on(account))  # nothing reached A
    # A's saved login is still there for A's kernels, and only for A
    assert list(json.loads((config_dir / "credentials.json").read_text())["servers"]) == [account.url]


def test_qjm_login_logs_in_the_client_the_notebook_made(account: Account, config_dir: Path, monkeypatch,
                                                        tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The README tour: `client = JobManagerClient()`, then `%qjm_login`; `client` is logged in."""
    env = {"QJM_URL": account.url, "QJM_CONFIG_DIR": str(config_dir)}
    out = run_notebook([
        "%load_ext qjm_jupyter",
        "from qjm_jupyter import JobManagerClient\nclient = JobManagerClient()\nprint(client)",
        # what the user types at the password prompt (nbclient offers no stdin)
        f"get_ipython().kernel.getpass = lambda prompt='', stream=None, **kw: {account.password!r}",
        f"%qjm_login {account.email}",
        "print(client)\nprint(client.user_info()['email'])\nclient.register_job('tour-1')\nprint('registered')",
        "%qjm_watch 'tour-2'",
    ], env, monkeypatch, tmp_path)
    assert out[1].strip().endswith("(not logged in)>"), out[1]
    assert out[3].strip() == f"logged in to {account.url} as {account.email}"
    lines = out[4].strip().splitlines()
    assert lines[0] == f"<JobManagerClient {account.url} as {account.email}>", out[4]
    assert lines[1:] == [account.email, "registered"], out[4]
    assert out[5].strip().startswith("watching 1 job"), out[5]
    assert {"tour-1", "tour-2"} <= set(_jobs_on(account))


def test_credentials_file_keeps_one_entry_per_server(config_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from qjm_jupyter import credentials

    config_dir.mkdir(parents=True)
    # the one-server file of 0.1 is read as one entry
    (config_dir / "credentials.json").write_text(json.dumps({"url": "http://a:1/", "email": "a@x.org", "token": "ta"}))
    assert credentials.load("http://a:1") == credentials.Credentials("http://a:1/", "a@x.org", "ta")
    credentials.save(credentials.Credentials("http://b:2/", "b@x.org", "tb"))
    assert set(credentials.load_all()) == {"http://a:1/", "http://b:2/"}
    assert credentials.load("http://c:3/") is None
    assert not credentials.remove("http://b:2/", token="other")  # only the token it holds
    assert credentials.remove("http://b:2/", token="tb")
    assert set(credentials.load_all()) == {"http://a:1/"}
    assert credentials.remove("http://a:1/")
    assert not (config_dir / "credentials.json").exists()
