"""What an email says about a job, computed once from its record for every template.

Templates only lay facts out; the arithmetic (queue and run time from the status
history, UTC formatting, links) lives here so the text and HTML parts always agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote, urlencode

from ..domain import Job

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
SUBJECT_MAX = 200


def one_line(value: object, limit: int = SUBJECT_MAX) -> str:
    """Collapse control characters (CR/LF above all) so a label can never add a header line."""
    text = _CONTROL.sub(" ", str(value or ""))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def utc(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(ms: int | None) -> str:
    """Human durations ('1 h 02 min', '45 s'); None when the span is unknown."""
    if ms is None or ms < 0:
        return "—"
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


@dataclass(frozen=True)
class Links:
    """Where an email's links lead, so that every link opens on the server that sent it.

    A server running JupyterLab deep-links into the Lab panel (`lab?qjm-job=…`); one
    without Lab (the `jupyter qjm` group server) links to the qjm web UI, which every
    server serves at `qjm/`.
    """

    base_url: str  # with one trailing slash
    has_lab: bool

    def _lab(self, **params: str) -> str:
        return f"{self.base_url}lab?{urlencode(params)}"

    def job(self, job_id: str) -> str:
        if self.has_lab:
            return self._lab(**{"qjm-job": job_id})
        return f"{self.base_url}qjm/jobs/{quote(job_id, safe='')}"

    def account(self) -> str:
        return self._lab(**{"qjm-settings": "1"}) if self.has_lab else f"{self.base_url}qjm/account"

    def notifications(self) -> str:
        """Channels, quiet hours and digests: what "Manage notifications" promises."""
        if self.has_lab:
            return self._lab(**{"qjm-notifications": "1"})
        return f"{self.base_url}qjm/notifications"

    def group(self, group: str) -> str:
        if self.has_lab:
            return self._lab(**{"qjm-group": group})
        return f"{self.base_url}qjm/?{urlencode({'group': group})}"

    def page(self, page: str, token: str) -> str:
        """The verify and reset pages exist in every mode."""
        return f"{self.base_url}qjm/{page}?{urlencode({'token': token})}"


def quantum_time(seconds: float | None) -> str | None:
    """Billed quantum seconds as IBM reports them (fractions below a minute kept)."""
    if seconds is None:
        return None
    if seconds < 60:
        text = f"{seconds:.1f}".rstrip("0").rstrip(".")
        return f"{text} s"
    return duration(int(round(seconds * 1000)))


SOURCE_NOUN = {"ibm": "IBM Quantum job", "local": "local simulator job"}


@dataclass(frozen=True)
class TimelineRow:
    status: str
    at: str
    reason: str | None


@dataclass(frozen=True)
class JobFacts:
    id: str
    ibm_job_id: str
    title: str  # label, or the IBM job id
    label: str | None
    group: str | None
    backend: str
    instance: str | None  # None for a local job: it runs on no IBM instance
    source: str
    noun: str  # "IBM Quantum job" | "local simulator job": how the mail names it
    status: str
    timeline: list[TimelineRow]
    queued_for: str
    ran_for: str
    usage: str | None  # billed quantum time, once IBM reports it final
    times_from_ibm: bool  # the queue/run figures use IBM's timestamps, not our observations
    error_reason: str | None
    ibm_url: str | None
    manage_url: str


def _first_at(job: Job, statuses: set[str]) -> int | None:
    times = [e.at for e in job.history if e.status in statuses]
    return min(times) if times else None


def job_facts(job: Job, links: Links) -> JobFacts:
    """Queue time runs from submission (IBM's `created`, else registration) to the start
    of the run; run time from the start to the end. IBM's own timestamps (the metrics
    endpoint's running/finished) are used where the watcher got them, our observation
    times (as exact as the poll interval) otherwise."""
    if job.created is not None:
        submitted = job.created
    else:
        submitted = min(job.registered_at, _first_at(job, {"INITIALIZING", "VALIDATING", "QUEUED"}) or job.registered_at)
    started = job.started if job.started is not None else _first_at(job, {"RUNNING"})
    ended = job.finished if job.finished is not None else _first_at(job, {"DONE", "ERROR", "CANCELLED"})
    queued = started - submitted if started is not None else None
    ran = ended - started if (started is not None and ended is not None) else None
    reason = job.error_reason or next((e.reason for e in reversed(job.history) if e.reason), None)
    if job.backend:
        backend = job.backend
    else:
        backend = "local simulator" if job.source == "local" else "backend not reported yet"
    return JobFacts(
        id=job.id,
        ibm_job_id=job.ibm_job_id,
        title=one_line(job.label or job.ibm_job_id),
        label=one_line(job.label) if job.label else None,
        group=one_line(job.group) if job.group else None,
        backend=one_line(backend, 128),
        instance=job.instance if job.source == "ibm" else None,
        source=job.source,
        noun=SOURCE_NOUN.get(job.source, "job"),
        status=job.status,
        timeline=[TimelineRow(e.status, utc(e.at), e.reason) for e in job.history],
        queued_for=duration(queued),
        ran_for=duration(ran),
        usage=quantum_time(job.usage_seconds),
        times_from_ibm=job.started is not None,
        error_reason=reason,
        ibm_url=job.ibm_url,
        manage_url=links.job(job.id),
    )
