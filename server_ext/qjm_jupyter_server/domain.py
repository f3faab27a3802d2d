"""Records the server keeps, as plain dataclasses shared by services and stores.

Times are UTC epoch milliseconds (ints) everywhere below the API layer: both backends
store them exactly (BSON datetimes have millisecond precision) and they compare
without time-zone surprises. Ids are strings the application makes.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from qjm_jupyter.statuses import DEFAULT_NOTIFY_STATUS

from .errors import Forbidden

KeyState = Literal["none", "ok", "invalid"]
WatchState = Literal["active", "paused", "lost", "final"]
DeliveryState = Literal["pending", "sent", "failed", "held", "digested"]
TokenPurpose = Literal["verify", "reset"]
JobSource = Literal["ibm", "local"]

# IBM Quantum Platform's page of one job. The platform serves every region's jobs from
# this host (the region is a UI setting), so the URL needs only the job id.
IBM_WORKLOADS_URL = "https://quantum.cloud.ibm.com/workloads"


def new_id(prefix: str = "") -> str:
    """Sortable-enough random id: 12 hex chars of ms time + 10 random hex chars."""
    return f"{prefix}{int(time.time() * 1000):012x}{secrets.token_hex(5)}"


@dataclass
class User:
    id: str
    email: str  # lower-cased
    password_hash: str
    created_at: int
    updated_at: int
    is_verified: bool = False
    is_active: bool = True
    is_admin: bool = False
    token_version: int = 0
    ibm_key_cipher: str | None = None  # MultiFernet token; never leaves the server
    ibm_key_last4: str | None = None
    ibm_key_state: KeyState = "none"
    ibm_key_updated_at: int | None = None
    default_instance: str | None = None  # instance CRN used for bare job ids
    notify_default: list[str] = field(default_factory=lambda: list(DEFAULT_NOTIFY_STATUS))
    mail_stopped_at: int | None = None  # "stop all mail" (the footer link): no job mail while set
    # When job mail may arrive (notify/schedule.py): local times "HH:MM" in `time_zone`.
    time_zone: str | None = None  # IANA name; None: UTC
    quiet_start: str | None = None
    quiet_end: str | None = None
    quiet_breakthrough: list[str] = field(default_factory=list)  # statuses mailed even in quiet hours
    digest_minutes: int = 0  # 0: one mail per change; N: one summary per N minutes (1440: daily)

    def require_admin(self) -> None:
        """The one admin check of every admin operation, with its one message."""
        if not self.is_admin:
            raise Forbidden("administrators only")


@dataclass
class StatusEvent:
    status: str
    at: int  # when we observed it (or when the kernel reported it)
    reason: str | None = None


@dataclass
class Job:
    id: str
    user_id: str
    ibm_job_id: str
    registered_at: int
    updated_at: int
    backend: str | None = None
    instance: str | None = None  # IBM instance CRN
    channel: str = "ibm_quantum_platform"  # or "local"
    source: JobSource = "ibm"  # "local": status comes from the kernel, not IBM
    created: int | None = None  # job creation time on IBM's side
    # IBM's own times (the metrics endpoint's timestamps.running/finished) and billed
    # quantum seconds, when IBM reported them; mail prefers them to our observation times,
    # which are only as exact as the poll interval.
    started: int | None = None
    finished: int | None = None
    usage_seconds: float | None = None
    cancel_requested_at: int | None = None  # a local job's cancel waits for its kernel to ask
    notify_status: list[str] = field(default_factory=lambda: list(DEFAULT_NOTIFY_STATUS))
    label: str | None = None
    group: str | None = None
    status: str = "INITIALIZING"
    history: list[StatusEvent] = field(default_factory=list)
    notified: list[str] = field(default_factory=list)  # statuses already enqueued for mail
    watch_state: WatchState = "active"
    error_reason: str | None = None
    last_poll_at: int | None = None
    last_error: str | None = None
    misses: int = 0  # consecutive "not found" answers
    version: int = 0  # bumped by every status write: compare-and-set fence

    @property
    def ibm_url(self) -> str | None:
        """The job's page on IBM Quantum Platform (local jobs have none). Job ids may hold
        `:@+=`, so the id is quoted as one path segment."""
        if self.source != "ibm" or not self.ibm_job_id:
            return None
        return f"{IBM_WORKLOADS_URL}/{quote(self.ibm_job_id, safe='')}"


@dataclass(frozen=True)
class JobRef:
    """What the poller needs of a watched job to see that nothing changed.

    A cycle compares every watched job with IBM's answer, and almost all are unchanged;
    building full `Job` records (history, lists) for each was most of the watcher's CPU
    once thousands of jobs were active. The full record is read only for a job that
    gets written, and `version` fences that write like any other compare-and-set.
    """

    id: str
    ibm_job_id: str
    status: str
    version: int
    misses: int = 0
    last_error: str | None = None


@dataclass
class PollUnit:
    """The unit of polling work: one user's jobs on one IBM instance.

    Leases on units split the work between server processes; each job write is still
    a compare-and-set on `Job.version`, so a lost lease can never apply stale data.
    """

    key: str  # f"{user_id}|{instance}"
    user_id: str
    instance: str
    next_poll_at: int
    lease_owner: str | None = None
    lease_until: int = 0
    failures: int = 0
    last_error: str | None = None
    paused_reason: str | None = None  # "key_invalid" | "forbidden" | None


@dataclass
class ActionToken:
    """A single-use emailed token (verification or password reset), stored hashed."""

    token_hash: str
    user_id: str
    purpose: TokenPurpose
    expires_at: int
    created_at: int
    data: dict[str, Any] = field(default_factory=dict)  # e.g. {"email": new address}


@dataclass
class Notification:
    """One email in the persistent outbox; `dedupe_key` is unique, so enqueue is idempotent."""

    id: str
    dedupe_key: str
    user_id: str | None
    kind: str  # job_status | group | key_invalid | forbidden | job_lost | verify | reset | notice
    to_addr: str
    subject: str
    text: str
    html: str
    created_at: int
    job_id: str | None = None
    unsubscribe_url: str | None = None  # RFC 8058 List-Unsubscribe target (job mail)
    channel_id: str | None = None  # None: an email to `to_addr`; else a delivery to that channel
    state: DeliveryState = "pending"
    attempts: int = 0
    next_attempt_at: int = 0
    lease_owner: str | None = None
    lease_until: int = 0
    last_error: str | None = None
    sent_at: int | None = None


@dataclass(frozen=True)
class GroupSummary:
    """What a group milestone needs to know about one user's group, read in a bounded
    number of store calls whatever the group's size (reading every job of a 10,000-job
    group on each status change was the problem)."""

    total: int  # jobs in the group
    final_counts: dict[str, int]  # final status -> jobs in it
    others_ran: bool  # a job other than the one being written has been RUNNING (or DONE)
    wants_running: bool  # some job of the group asks to be told of RUNNING
    wants_final: bool  # some job of the group asks to be told of a final status


@dataclass
class Channel:
    """A user's extra notification channel: an Apprise URL (ntfy, Slack, Discord, a JSON
    webhook, ...). The URL holds the secret (a webhook token), so it is stored encrypted
    with the key ring, like IBM keys, and never returned: only its scheme and host are."""

    id: str
    user_id: str
    url_cipher: str
    scheme: str
    host: str
    created_at: int
    updated_at: int
    label: str | None = None
    notify_status: list[str] = field(default_factory=lambda: list(DEFAULT_NOTIFY_STATUS))
    enabled: bool = True


@dataclass
class ThrottleState:
    key: str
    count: int
    window_start: int


@dataclass
class JobQuery:
    user_id: str | None  # None: every user's jobs (admins)
    statuses: list[str] | None = None
    active: bool | None = None  # True: watch_state active/paused; False: final/lost
    label: str | None = None
    group: str | None = None
    updated_after: int | None = None  # the changes feed for the Lab panel
    limit: int = 50
    offset: int = 0
    # The page's `total`: False counts up to a cap past the page (JobService.list_jobs),
    # True counts every match. Stores ignore it: they are given the cap.
    exact_total: bool = False
