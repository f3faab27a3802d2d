"""Watching local jobs (Aer, qiskit primitives, local runtime mode) from the kernel.

The server cannot see a job that lives in this process, so ONE daemon thread polls the
jobs' `status()` (a local call, no network) about every half second and reports each
change through a `report(job_id, status, reason)` callable (a client's `report_status`);
the server then mails as for IBM jobs. The thread exits when every watched job is final
and starts again when new jobs arrive. The kernel's one watcher lives in `session.py`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .statuses import UnknownStatus, is_final, normalize_status

# report(job_id, status, reason): tell the server; raises when it could not.
Report = Callable[[str, str, "str | None"], Any]
# checkin(job_ids) -> {"cancel": [ids]}: this kernel still runs these jobs (a client's `local_checkin`).
Checkin = Callable[[list[str]], dict[str, Any]]

log = logging.getLogger("qjm_jupyter.local")

INTERVAL = 0.5
CHECKIN_INTERVAL = 2.0  # tells the server this kernel is alive; collects cancel requests
MAX_REPORT_FAILURES = 20  # then give up on that job (server gone for ~10 s of tries)


@dataclass
class Watched:
    report: Report
    job: Any
    job_id: str
    reported: str | None = None
    failures: int = 0
    checkin: Checkin | None = None


def _status_of(job: Any) -> tuple[str | None, str | None]:
    """(status, reason) from the job's own local status(); reason for ERROR when it has one."""
    try:
        status = normalize_status(job.status())
    except UnknownStatus:
        return None, None
    except Exception as exc:  # noqa: BLE001 - a broken job is an ERROR, not a dead watcher
        return "ERROR", f"status() raised {type(exc).__name__}: {exc}"[:500]
    reason = None
    if status == "ERROR":
        for attr in ("error_message", "_error_message"):
            value = getattr(job, attr, None)
            try:
                value = value() if callable(value) else value
            except Exception:  # noqa: BLE001 - best effort
                value = None
            if value:
                reason = str(value)[:500]
                break
    return status, reason


class LocalWatcher:
    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self._jobs: dict[str, Watched] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reports = 0  # successful status reports (tests, benchmarks)
        self.checkin_interval = CHECKIN_INTERVAL
        self._last_checkin = 0.0
        self.cancelled: list[str] = []  # ids whose cancel this watcher carried out (tests)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def watched_ids(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    def watch(self, report: Report, jobs: Iterable[tuple[Any, str]], checkin: Checkin | None = None) -> None:
        with self._lock:
            for job, job_id in jobs:
                self._jobs[job_id] = Watched(report, job, job_id, checkin=checkin)
            self._stop.clear()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="qjm-local-jobs", daemon=True)
                self._thread.start()
        self._wake.set()

    def forget(self, job_ids: Iterable[str] | None) -> None:
        with self._lock:
            if job_ids is None:
                self._jobs.clear()
            else:
                for job_id in job_ids:
                    self._jobs.pop(job_id, None)

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until every watched local job's final status was reported (True) or timeout (False).

        For notebooks that end right after a local job (CI): the kernel must live until the
        report went out.
        """
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def poll_once(self) -> None:
        """One pass over the jobs: report changes, drop jobs that reached a final status."""
        with self._lock:
            items = list(self._jobs.values())
        for item in items:
            if self._stop.is_set():
                return
            status, reason = _status_of(item.job)
            if status is None or status == item.reported:
                continue
            try:
                item.report(item.job_id, status, reason)
            except Exception as exc:  # noqa: BLE001 - keep watching; the server may come back
                item.failures += 1
                log.warning("qjm: could not report %s of local job %s: %s", status, item.job_id, exc)
                if item.failures >= MAX_REPORT_FAILURES:
                    self.forget([item.job_id])
                continue
            item.reported, item.failures = status, 0
            self.reports += 1
            if is_final(status):
                self.forget([item.job_id])

    def checkin_once(self) -> None:
        """Tell the server which local jobs still run here (so a cancel from the panel or
        a mail knows this kernel is alive) and cancel those it asks to cancel."""
        with self._lock:
            by_server: dict[int, tuple[Checkin, list[Watched]]] = {}
            for item in self._jobs.values():
                if item.checkin is not None:
                    by_server.setdefault(id(item.checkin), (item.checkin, []))[1].append(item)
        for checkin, items in by_server.values():
            try:
                answer = checkin([i.job_id for i in items])
            except Exception as exc:  # noqa: BLE001 - the server may come back; reports still go
                log.debug("qjm: local check-in failed: %s", exc)
                continue
            wanted = set(answer.get("cancel") or ())
            for item in items:
                if item.job_id in wanted and item.job_id not in self.cancelled:
                    self._cancel(item)

    def _cancel(self, item: Watched) -> None:
        try:
            accepted = item.job.cancel()
        except Exception as exc:  # noqa: BLE001 - report why, keep watching
            accepted = False
            log.warning("qjm: cancelling local job %s failed: %s", item.job_id, exc)
        self.cancelled.append(item.job_id)
        if accepted is False:
            # A future already running cannot be cancelled (qiskit's local jobs run in threads).
            log.warning("qjm: local job %s could not be cancelled (it is already running)", item.job_id)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self.poll_once()
            now = time.monotonic()
            if now - self._last_checkin >= self.checkin_interval:
                self._last_checkin = now
                self.checkin_once()
            with self._lock:
                if not self._jobs:
                    self._thread = None
                    return
            self._wake.wait(self.interval)

