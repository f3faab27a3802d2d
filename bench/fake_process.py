"""The fake IBM API in its own process, driven through its `/_fake/*` control routes.

Why: real IBM's CPU is not the watcher's. In one process, the fake's handler threads
(http.server parsing, JSON encoding of every page) share the GIL and the 2 cores with the
poller under test, so a benchmark would charge the watcher for IBM's work. `RemoteFake`
offers the part of `FakeIBM`'s interface the watcher benchmarks use; state changes are
buffered and sent in bulk (`flush`), since 10,000 jobs one request each would dominate
the set-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

from .common import ROOT


class RemoteFake:
    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self.base = ""
        self._keys: list[dict[str, Any]] = []
        self._jobs: list[dict[str, Any]] = []
        self._latency = 0.0

    def start(self) -> str:
        self._proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.ibm_api"], cwd=str(ROOT),
                                      stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        self.base = self._proc.stdout.readline().strip()
        if not self.base.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError("the fake IBM process did not start")
        return self.base

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _post(self, path: str, body: Any) -> None:
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310 - 127.0.0.1 only
            r.read()

    # -- the FakeIBM interface the benchmarks use ----------------------------------------
    def add_instance(self, crn: str) -> str:
        return crn  # an instance exists once a job names it

    def add_key(self, key: str, instances: list[str] | None = None) -> str:
        self._keys.append({"key": key, "instances": instances})
        return key

    def add_job(self, job_id: str, status: str = "Queued", instance: str | None = None) -> None:
        self._jobs.append({"job_id": job_id, "status": status, "instance": instance})

    def flush(self) -> None:
        for start in range(0, len(self._keys), 2000):
            self._post("/_fake/keys", self._keys[start : start + 2000])
        for start in range(0, len(self._jobs), 2000):
            self._post("/_fake/jobs", self._jobs[start : start + 2000])
        self._keys, self._jobs = [], []

    def set_status(self, job_id: str, status: str) -> None:
        self.flush()
        self._post("/_fake/status", [{"job_id": job_id, "status": status}])

    def set_statuses(self, items: list[tuple[str, str]]) -> None:
        self.flush()
        for start in range(0, len(items), 2000):
            self._post("/_fake/status", [{"job_id": j, "status": s} for j, s in items[start : start + 2000]])

    @property
    def latency(self) -> float:
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self.flush()
        self._post("/_fake/config", {"latency": seconds})
        self._latency = seconds

    def count_calls(self) -> int:
        self.flush()
        with urllib.request.urlopen(self.base + "/_fake/stats", timeout=60) as r:  # noqa: S310
            by_path = json.loads(r.read())["by_path"]
        return sum(n for path, n in by_path.items() if not path.startswith("/_fake/"))  # not the control calls

    def cpu_seconds(self) -> float:
        """CPU time the fake process has used (user + system), from /proc."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
