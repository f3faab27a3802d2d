"""JobTable (ipywidgets, in process) and the local-job watcher against a real server."""

from __future__ import annotations

import time

import pytest

from qjm_jupyter.client import JobManagerClient
from qjm_jupyter.local import LocalWatcher
from qjm_jupyter.widget import FIELDS, JobTable, chip

from .conftest import Account
from .fakejobs import FakeAerJob

pytestmark = pytest.mark.timeout(120)


def test_job_table_rows_filter_and_unwatch(account: Account, config_dir) -> None:  # type: ignore[no-untyped-def]
    client = JobManagerClient(url=account.url, email=account.email, password=account.password, timeout=20)
    client.register_job(["w-1", "w-2"], label="tbl")
    table = JobTable(client, refresh=0)
    assert not table.running
    table.refresh()
    assert table.error is None and {j["job_id"] for j in table.jobs} == {"w-1", "w-2"}
    # The table lists only what it shows (widget.FIELDS), not whole records.
    assert all(set(j) == {"id", *FIELDS} for j in table.jobs)
    assert len(table.grid.children) == 8 * 3  # header + 2 rows
    link = table.grid.children[8 + 1].value
    assert ">w-" in link
    table.filter.value = "DONE"
    assert len(table.grid.children) == 8 and "0 of 2 jobs" in table.message.value
    table.filter.value = "all"
    button = table.grid.children[8 + 7]
    button.click()  # unwatch the first row
    assert len(client.all_job_info()) == 1
    assert len(table.grid.children) == 8 * 2
    table.close()
    client.close()


def test_job_table_background_refresh_stops_on_close(account: Account, config_dir) -> None:  # type: ignore[no-untyped-def]
    client = JobManagerClient(url=account.url, email=account.email, password=account.password, timeout=20)
    table = JobTable(client, refresh=0.2)
    assert table.running
    client.register_job("bg-1")
    deadline = time.monotonic() + 30
    while not table.jobs and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [j["job_id"] for j in table.jobs] == ["bg-1"]
    table.close()
    table._thread.join(30)  # type: ignore[union-attr]
    assert not table.running
    client.close()


def test_job_table_shows_errors_instead_of_raising(config_dir) -> None:  # type: ignore[no-untyped-def]
    table = JobTable(JobManagerClient(url="http://127.0.0.1:9/", token="t", timeout=3), refresh=0)
    table.refresh()
    assert "cannot reach" in table.message.value
    table.close()
    assert "DONE" in chip("DONE") and "#2e7d32" in chip("DONE")


def test_local_watcher_reports_changes_until_final(account: Account, config_dir) -> None:  # type: ignore[no-untyped-def]
    client = JobManagerClient(url=account.url, email=account.email, password=account.password, timeout=20)
    job = FakeAerJob("loc-1", statuses=["QUEUED", "QUEUED", "RUNNING", "DONE"])
    reg = client.register_job(job, ["RUNNING", "DONE"])
    assert reg["jobs"][0]["source"] == "local"
    from qjm_jupyter.session import SESSION

    watcher = SESSION.watcher()
    deadline = time.monotonic() + 30
    while watcher.running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not watcher.running and "loc-1" not in watcher.watched_ids()
    info = client.job_info("loc-1")
    assert info["status"] == "DONE"
    assert [h["status"] for h in info["history"] if h["status"] in ("QUEUED", "RUNNING", "DONE")] == ["QUEUED", "RUNNING", "DONE"]
    client.close()


def test_local_watcher_survives_an_unreachable_server(config_dir) -> None:  # type: ignore[no-untyped-def]
    w = LocalWatcher(interval=0.01)
    client = JobManagerClient(url="http://127.0.0.1:9/", token="t", timeout=2)
    w.watch(client.report_status, [(FakeAerJob("x", statuses=["RUNNING"]), "x")])
    for _ in range(3):
        w.poll_once()
    assert w.reports == 0 and w.watched_ids() == ["x"]
    w.stop()
    client.close()
