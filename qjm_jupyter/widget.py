"""`JobTable`: the live table of watched jobs, as ipywidgets 8.

A daemon thread fetches the job list every `refresh` seconds through the client's
blocking API (which runs on the client's own loop) and only touches widgets, so the
kernel never blocks; `close()` stops it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import html
import threading
from typing import Any

import ipywidgets as w

from .client import JobManagerClient
from .session import SESSION
from .statuses import STATUSES

COLOURS: Mapping[str, str] = MappingProxyType({
    "INITIALIZING": "#9e9e9e",
    "QUEUED": "#8a6d3b",
    "VALIDATING": "#9e9e9e",
    "RUNNING": "#1565c0",
    "DONE": "#2e7d32",
    "ERROR": "#c62828",
    "CANCELLED": "#ef6c00",
})
HEADERS = ("label", "job id", "backend", "status", "notify on", "registered", "last change", "")
# What a row shows (`row`) and the filter reads (`visible`): the table lists only these.
FIELDS = ("job_id", "label", "ibm_url", "backend", "status", "notify_status", "registered_at", "updated_at",
          "watch_state")
ALL = "all"
ACTIVE = "active"


def chip(status: str) -> str:
    colour = COLOURS.get(status, "#616161")
    return (f'<span style="background:{colour};color:white;border-radius:9px;padding:1px 8px;'
            f'font-size:11px;font-weight:600">{html.escape(status)}</span>')


def _time(value: Any) -> str:
    if not value:
        return "-"
    text = str(value).replace("T", " ")
    return text[:19]


def _text(value: Any) -> w.HTML:
    return w.HTML(html.escape("-" if value in (None, "") else str(value)))


class JobTable(w.VBox):
    """Your watched jobs: status filter, one row per job with a link to IBM and an unwatch button."""

    def __init__(self, client: JobManagerClient | None = None, refresh: float = 5.0, **kwargs: Any) -> None:
        if client is None:
            client = SESSION.client(JobManagerClient)
        self.client = client
        self.refresh_interval = float(refresh)
        self.jobs: list[dict[str, Any]] = []
        self.error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.filter = w.Dropdown(options=[ALL, ACTIVE, *STATUSES], value=ALL, description="status",
                                 layout=w.Layout(width="220px"))
        self.filter.observe(lambda _change: self.render(), names="value")
        self.message = w.HTML("loading…")
        self.grid = w.GridBox(layout=w.Layout(grid_template_columns="repeat(7, auto) 80px", grid_gap="2px 12px"))
        super().__init__([w.HBox([self.filter, self.message]), self.grid], **kwargs)
        self._thread: threading.Thread | None = None
        if self.refresh_interval > 0:
            self._thread = threading.Thread(target=self._loop, name="qjm-job-table", daemon=True)
            self._thread.start()

    # -- data --------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Fetch the jobs now and redraw (blocking; the background thread calls this)."""
        try:
            jobs = self.client.all_job_info(fields=FIELDS)
        except Exception as exc:  # noqa: BLE001 - show it in the table, keep refreshing
            self.error = str(exc)
        else:
            with self._lock:
                self.jobs, self.error = jobs, None
        self.render()

    def visible(self) -> list[dict[str, Any]]:
        choice = self.filter.value
        with self._lock:
            jobs = list(self.jobs)
        if choice == ALL:
            return jobs
        if choice == ACTIVE:
            return [j for j in jobs if j.get("watch_state") in ("active", "paused")]
        return [j for j in jobs if j.get("status") == choice]

    # -- view --------------------------------------------------------------------------------------
    def row(self, job: dict[str, Any]) -> list[w.Widget]:
        job_id = str(job.get("job_id", ""))
        link = job.get("ibm_url")
        id_html = (f'<a href="{html.escape(link, quote=True)}" target="_blank" rel="noopener">{html.escape(job_id)}</a>'
                   if link else html.escape(job_id))
        button = w.Button(description="unwatch", tooltip=f"stop watching {job_id}", layout=w.Layout(width="80px"))
        button.on_click(lambda _b, job_id=job_id: self.unwatch(job_id))
        return [
            _text(job.get("label")),
            w.HTML(id_html),
            _text(job.get("backend")),
            w.HTML(chip(str(job.get("status", "?")))),
            _text(",".join(job.get("notify_status") or []) or "-"),
            _text(_time(job.get("registered_at"))),
            _text(_time(job.get("updated_at"))),
            button,
        ]

    def render(self) -> None:
        if self._stop.is_set():
            return
        shown = self.visible()
        cells: list[w.Widget] = [w.HTML(f"<b>{h}</b>") for h in HEADERS]
        for job in shown:
            cells.extend(self.row(job))
        self.grid.children = cells
        total = len(self.jobs)
        status = f"{total} jobs" if self.filter.value == ALL else f"{len(shown)} of {total} jobs"
        if self.error:
            status += f' — <span style="color:#c62828">{html.escape(self.error)}</span>'
        self.message.value = status

    def unwatch(self, job_id: str) -> None:
        try:
            self.client.delete_job(job_id)
        except Exception as exc:  # noqa: BLE001 - a button must not raise into the kernel
            self.error = str(exc)
        with self._lock:
            self.jobs = [j for j in self.jobs if j.get("job_id") != job_id]
        self.render()

    # -- lifecycle ---------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.refresh_interval)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Stop the refresh thread, then close the widgets."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(0.5)  # never hold the kernel for an in-flight fetch; the thread exits after it
        for child in (self.filter, self.message, *self.grid.children, self.grid):
            child.close()
        super().close()
