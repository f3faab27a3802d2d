"""`jupyter qjm` watches IBM Quantum from a child process (watcher/process.py).

Real processes throughout: `jupyter qjm`, its watcher child, the fake IBM API and
aiosmtpd. What must hold: the poller runs in the child and not in the API's process; the
child gets the server's resolved settings and no secret on its command line; a child
that dies is started again and nothing is lost or sent twice; the child ends with its
server, whether the server stops or is killed; and `jupyter qjm watch` serves a server
configured with `watcher = "external"`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.process import JWT_SECRET, QJMProcess, child_pids, qjm_env
from tests.watcher.test_multiprocess import account, assert_one_mail_per_job, job_mail, jobs_of, notifications, settings_for, wait_until

pytestmark = pytest.mark.slow


def watcher_child(proc: QJMProcess) -> int:
    """The server's one watcher child, once it says it is watching."""
    assert proc.proc is not None
    found: list[int] = []

    def up() -> bool:
        found[:] = [c for c in child_pids(proc.proc.pid) if b"watcher.process" in cmdline(c)]
        return len(found) == 1 and re.search(rf"\[qjm watcher {found[0]} [^\n]*watcher and mailer running", proc.log()) is not None

    wait_until(up, "the watcher process", [proc])
    return found[0]


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def sockets_to(pid: int, port: int) -> int:
    """TCP connections of process `pid` whose remote port is `port` (/proc/net/tcp inodes
    matched against the process's open descriptors)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            count += 1
    return count


def status(proc: QJMProcess) -> dict[str, Any]:
    r = httpx.get(proc.api + "status", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def register(proc: QJMProcess, headers: dict[str, str], fake_ibm: Any, ids: list[str]) -> None:
    for job_id in ids:
        fake_ibm.add_job(job_id, "Queued")
    r = httpx.post(proc.api + "jobs", headers=headers, timeout=20,
                   json={"jobs": [{"job_id": j, "notify_status": ["DONE"]} for j in ids]})
    assert r.status_code == 201, r.text


def test_the_group_server_polls_from_its_child_with_the_servers_settings(
    start_qjm: Any, fake_ibm: Any, smtp_server: Any, tmp_path: Path
) -> None:
    d = tmp_path / "group"
    d.mkdir()
    env = qjm_env(d, **settings_for(fake_ibm), **smtp_server.settings())
    del env["QJM_POLL_INTERVAL"]  # given on the command line only: the child must get the resolved value
    server: QJMProcess = start_qjm(data_dir=d, env=env, extra_args=["--QJMServerApp.poll_interval=0.25"])
    body = status(server)
    assert body["mode"] == "group" and body["watcher"] == "process" and body["watcher_running"] is True
    child = watcher_child(server)
    assert JWT_SECRET.encode() not in cmdline(child) and b"QJM" not in cmdline(child)

    headers = account(server, fake_ibm.key(), fake_ibm.default_crn)
    ids = [f"child-{i}" for i in range(5)]
    register(server, headers, fake_ibm, ids)
    wait_until(lambda: all(j["status"] == "QUEUED" for j in jobs_of(server, headers).values()), "the first poll", [server])
    for job_id in ids:
        fake_ibm.set_status(job_id, "Completed")
    wait_until(lambda: len(notifications(server, headers)) == 5
               and all(n["state"] == "sent" for n in notifications(server, headers)), "five mails", [server])
    assert_one_mail_per_job(job_mail(smtp_server, headers["X-Email"]), ids)

    # IBM is asked by the child alone: it holds keep-alive connections to the fake; the server none.
    port = int(fake_ibm.base.rsplit(":", 1)[1].split("/")[0])
    assert server.proc is not None
    assert sockets_to(child, port) >= 1
    assert sockets_to(server.proc.pid, port) == 0
    assert "poll every 0.25s" in server.log()


def test_a_killed_watcher_process_is_started_again_and_nothing_is_lost_or_sent_twice(
    start_qjm: Any, fake_ibm: Any, smtp_server: Any, tmp_path: Path
) -> None:
    d = tmp_path / "restart"
    d.mkdir()
    server: QJMProcess = start_qjm(data_dir=d, env=qjm_env(d, **settings_for(fake_ibm), **smtp_server.settings()))
    first = watcher_child(server)
    headers = account(server, fake_ibm.key(), fake_ibm.default_crn)
    ids = [f"restart-{i:02d}" for i in range(16)]
    register(server, headers, fake_ibm, ids)
    wait_until(lambda: all(j["status"] == "QUEUED" for j in jobs_of(server, headers).values()), "the first poll", [server])

    fake_ibm.latency = 0.05  # a cycle of 16 GETs takes a while: room to die in the middle
    for job_id in ids:
        fake_ibm.set_status(job_id, "Completed")
    wait_until(lambda: any(j["status"] == "DONE" for j in jobs_of(server, headers).values()), "the first DONE", [server])
    os.kill(first, signal.SIGKILL)
    fake_ibm.latency = 0.0

    assert server.proc is not None
    wait_until(lambda: not alive(first), "the child to die", [server])
    second = watcher_child(server)
    assert second != first and server.proc.poll() is None
    wait_until(lambda: all(j["status"] == "DONE" for j in jobs_of(server, headers).values()), "every job DONE", [server])
    wait_until(lambda: len(notifications(server, headers)) == 16
               and all(n["state"] == "sent" for n in notifications(server, headers)), "the outbox to drain", [server])
    time.sleep(1.5)  # a few more cycles: a duplicate would be mailed now
    mails = job_mail(smtp_server, headers["X-Email"])
    assert len(mails) == 16
    assert_one_mail_per_job(mails, ids)
    assert "the watcher process exited (-9)" in server.log()
    assert status(server)["watcher_running"] is True


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_the_watcher_process_ends_with_its_server(start_qjm: Any, fake_ibm: Any, tmp_path: Path, how: int) -> None:
    server: QJMProcess = start_qjm(**settings_for(fake_ibm))
    child = watcher_child(server)
    server.stop(how)
    # Stopped: the server closes the pipe and waits for the child. Killed: the pipe closes
    # with it, and the child sees the end of file.
    deadline = time.monotonic() + (0 if how == signal.SIGTERM else 15)
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child), server.log()
    assert "qjm: watcher stopped" in server.log()
    assert "Traceback" not in server.log()


def test_jupyter_qjm_watch_serves_a_server_whose_watcher_is_external(
    start_qjm: Any, fake_ibm: Any, smtp_server: Any, tmp_path: Path
) -> None:
    d = tmp_path / "external"
    d.mkdir()
    env = qjm_env(d, **settings_for(fake_ibm), **smtp_server.settings())
    env["QJM_WATCHER"] = "external"  # the server's and the command's configuration alike
    server: QJMProcess = start_qjm(data_dir=d, env=env)
    body = status(server)
    assert body["watcher"] == "external" and body["watcher_running"] is False
    assert server.proc is not None and not child_pids(server.proc.pid)

    headers = account(server, fake_ibm.key(), fake_ibm.default_crn)
    ids = [f"ext-{i}" for i in range(3)]
    register(server, headers, fake_ibm, ids)
    time.sleep(1.5)  # five poll intervals: nobody asks IBM yet
    assert fake_ibm.count_calls("/api/v1/jobs") == 0

    log = (d / "watch.log").open("wb")
    watch = subprocess.Popen([sys.executable, "-m", "jupyter", "qjm", "watch"], env=env, cwd=d, stdout=log, stderr=subprocess.STDOUT)
    try:
        for job_id in ids:
            fake_ibm.set_status(job_id, "Completed")
        wait_until(lambda: all(j["status"] == "DONE" for j in jobs_of(server, headers).values()), "every job DONE", [server])
        wait_until(lambda: len(notifications(server, headers)) == 3
                   and all(n["state"] == "sent" for n in notifications(server, headers)), "three mails", [server])
        assert_one_mail_per_job(job_mail(smtp_server, headers["X-Email"]), ids)
    finally:
        watch.send_signal(signal.SIGTERM)
        code = watch.wait(20)
        log.close()
    text = (d / "watch.log").read_text()
    assert code == 0, text
    assert "watcher and mailer running" in text and "watcher stopped" in text and "Traceback" not in text


def test_a_watcher_process_given_sigterm_exits_cleanly_and_is_started_again(start_qjm: Any, fake_ibm: Any) -> None:
    """A service manager stopping the process group (systemd, `timeout`) signals the child
    directly: it stops cleanly, and the server, still running, starts another."""
    server: QJMProcess = start_qjm(**settings_for(fake_ibm))
    first = watcher_child(server)
    os.kill(first, signal.SIGTERM)
    wait_until(lambda: not alive(first), "the child to stop", [server])
    second = watcher_child(server)
    assert second != first
    log = server.log()
    assert "the watcher process exited (0)" in log
    assert "Fatal Python error" not in log and "Traceback" not in log, log
