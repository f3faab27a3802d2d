"""JobManagerClient against a real `jupyter qjm` process: sync in threads and inside a
running loop, the `_async` twins, errors, re-login, the credentials file."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
from typing import Any

import pytest

from qjm_jupyter import credentials
from qjm_jupyter.client import JobManagerClient
from qjm_jupyter.errors import QJMAuthError, QJMConnectionError, QJMHTTPError

from .conftest import Account


def client_for(account: Account, **kw: Any) -> JobManagerClient:
    return JobManagerClient(url=account.url, email=account.email, password=account.password, timeout=20, **kw)


def test_sync_methods_in_a_plain_thread(account: Account, config_dir) -> None:  # type: ignore[no-untyped-def]
    client = client_for(account)
    out: dict[str, Any] = {}

    def work() -> None:
        client.login()
        out["me"] = client.user_info()
        out["reg"] = client.register_job([["job-a", "job-b"], "job-c"], [[["RUNNING"], ["DONE"]], ["ERROR"]], label="sweep")
        out["all"] = client.all_job_info()
        out["one"] = client.job_info("job-b")

    t = threading.Thread(target=work)
    t.start()
    t.join(60)
    client.close()
    assert not t.is_alive()
    assert out["me"]["email"] == account.email
    assert out["reg"]["created"] == 3
    assert {j["job_id"] for j in out["all"]} == {"job-a", "job-b", "job-c"}
    assert out["one"]["notify_status"] == ["DONE"] and out["one"]["label"] == "sweep"
    by_id = {j["job_id"]: j for j in out["all"]}
    assert by_id["job-a"]["notify_status"] == ["RUNNING"]
    assert by_id["job-c"]["notify_status"] == ["ERROR"]


def test_sync_methods_inside_a_running_event_loop(account: Account, config_dir) -> None:  # type: ignore[no-untyped-def]
    """What a notebook cell does: the kernel's loop is running while the cell calls sync methods."""
    client = client_for(account)

    async def cell() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        asyncio.get_running_loop()  # a loop is running here
        reg = client.register_job("job-in-loop")
        return reg, client.all_job_info()

    reg, jobs = asyncio.run(cell())
    client.close()
    assert reg["created"] == 1
    assert [j["job_id"] for j in jobs] == ["job-in-loop"]


def test_async_twins_on_the_callers_loop(account: Account, config_dir) -> None:  # type: ignore[no-untyped-def]
    client = client_for(account)

    async def main() -> None:
        await client.login_async()
        r = await client.register_job_async(["a1", "a2", "a3"], ["DONE", "ERROR"])
        assert r["created"] == 3
        again = await client.register_job_async("a1")
        assert again["merged"] == 1
        info = await client.job_info_async(["a1", ["a2"]])
        assert info[0]["job_id"] == "a1" and info[1][0]["job_id"] == "a2"
        assert info[1][0]["notify_status"] == ["DONE", "ERROR"]
        upd = await client.update_job_info_async([{"job_id": "a1", "notify_status": ["CANCELED"], "label": "x"}])
        assert upd[0]["notify_status"] == ["CANCELLED"] and upd[0]["label"] == "x"
        assert await client.delete_job_async(["a1"]) == 1
        with pytest.raises(QJMHTTPError) as err:
            await client.job_info_async("a1")
        assert err.value.status == 404
        assert await client.delete_all_job_async() == 2
        assert await client.all_job_info_async() == []
        await client.aclose()

    asyncio.run(main())
    client.close()


def test_print_forms_are_aligned_tables(account: Account, config_dir, capsys) -> None:  # type: ignore[no-untyped-def]
    client = client_for(account)
    client.register_job(["p-1", "p-22"], label="lbl")
    client.print_all_job_info()
    client.print_job_info("p-1")
    client.print_user_info()
    client.close()
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("job id") and set(lines[1]) <= {"-", " "}
    assert lines[0].index("label") == lines[2].index("lbl")
    assert "p-22" in out and account.email in out and "ibm_key" in out


def test_report_status_of_a_local_job(account: Account, config_dir) -> None:  # type: ignore[no-untyped-def]
    client = client_for(account)
    client.register_job("local-1")  # registered as ibm; now as local (source matters for the watcher)
    client.delete_job("local-1")
    r = client._run(client._call("POST", "jobs", json={"jobs": [{"job_id": "local-1", "source": "local", "channel": "local"}]}))
    assert r["created"] == 1
    job = client.report_status("local-1", "running")
    assert job["status"] == "RUNNING"
    job = client.report_status("local-1", "COMPLETED")
    assert job["status"] == "DONE"
    assert [h["status"] for h in job["history"]][-2:] == ["RUNNING", "DONE"]
    client.close()


def test_errors_say_what_to_do(account: Account, config_dir) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QJMConnectionError, match=r"cannot reach http://127\.0\.0\.1:9/ — is the server running\?.*jupyter qjm"):
        JobManagerClient(url="http://127.0.0.1:9/", timeout=5).server_status()
    anonymous = JobManagerClient(url=account.url, timeout=20)
    with pytest.raises(QJMAuthError, match="not logged in — run %qjm_login"):
        anonymous.all_job_info()
    with pytest.raises(QJMAuthError, match="login failed"):
        anonymous.login(account.email, "wrong password!")
    stale = JobManagerClient(url=account.url, token="not-a-jwt", timeout=20)
    with pytest.raises(QJMAuthError, match="session expired — log in again"):
        stale.user_info()
    client = client_for(account)
    with pytest.raises(QJMHTTPError) as err:
        client.report_status("nope", "DONE")
    assert err.value.status == 404 and err.value.code
    with pytest.raises(ValueError, match="unknown job status"):
        client.report_status("nope", "FINISHED")
    for c in (anonymous, stale, client):
        c.close()


def test_transparent_relogin_after_logout_everywhere(account: Account, config_dir) -> None:  # type: ignore[no-untyped-def]
    holder = client_for(account)
    holder.login()
    other = client_for(account)
    other.login()
    old = other.token
    holder.logout(everywhere=True)  # every token issued before now stops working
    assert other.user_info()["email"] == account.email  # 401 -> login with the held password -> retry
    assert other.token != old
    tokenonly = JobManagerClient(url=account.url, token=old, timeout=20)
    with pytest.raises(QJMAuthError, match="session expired"):
        tokenonly.user_info()
    for c in (holder, other, tokenonly):
        c.close()


def test_credentials_file_holds_a_token_never_the_password(account: Account, config_dir, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client = client_for(account)
    client.login(save=True)
    path = credentials.credentials_path()
    assert path.parent == config_dir
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data == {"servers": {account.url: {"email": account.email, "token": client.token}}}
    assert account.password not in path.read_text()
    # a fresh client with no arguments picks the session up
    fresh = JobManagerClient(timeout=20)
    assert fresh.url == account.url and fresh.email == account.email
    assert fresh.user_info()["email"] == account.email
    # env settings come before the file; a different server does not get this token
    monkeypatch.setenv("QJM_URL", "http://127.0.0.1:9/")
    assert JobManagerClient().token is None
    monkeypatch.delenv("QJM_URL")
    fresh.logout()
    assert not path.exists()
    for c in (client, fresh):
        c.close()


def test_host_url_and_port_compose_the_url(config_dir) -> None:  # type: ignore[no-untyped-def]
    c = JobManagerClient("http://127.0.0.1", 8899)
    assert c.url == "http://127.0.0.1:8899/" and c.api_url == "http://127.0.0.1:8899/qjm/api/"
    assert JobManagerClient(url="http://h:1/base").url == "http://h:1/base/"


def test_a_thousand_jobs_in_one_request(account: Account, config_dir) -> None:  # type: ignore[no-untyped-def]
    client = client_for(account)
    client.login()
    before = client.requests_made
    r = client.register_job([f"bulk-{i}" for i in range(1000)])
    assert r["created"] == 1000
    assert client.requests_made - before == 1
    assert len(client.all_job_info()) == 1000
    client.close()


def test_all_job_info_with_fields_lists_only_those(account: Account, config_dir) -> None:  # type: ignore[no-untyped-def]
    """`fields=` asks the server for what a table shows; with a name the server does not know
    (as a server older than `fields=` refuses the parameter: 422 naming it), the client falls
    back to whole records instead of failing."""
    client = client_for(account)
    client.register_job(["f-1", "f-2"], label="lean")
    lean = client.all_job_info(fields=["job_id", "label"])
    assert sorted((list(j), j["job_id"], j["label"]) for j in lean) == [
        (["id", "job_id", "label"], "f-1", "lean"), (["id", "job_id", "label"], "f-2", "lean")]
    full = client.all_job_info(fields=["job_id", "no_such_field"])
    assert {j["job_id"] for j in full} == {"f-1", "f-2"} and all("history" in j and "instance" in j for j in full)
    assert client.all_job_info(fields=["job_id"])[0].keys() >= {"history"}  # remembered: whole records from now on
    client.close()
