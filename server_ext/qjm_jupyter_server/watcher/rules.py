"""Which notifications a status observation makes due: pure functions, no I/O.

The poller sees a job only every `poll_interval`, and a kernel may report late, so
a job can move several steps between two observations (QUEUED, then DONE). The
user asked to hear about statuses *entered*, so skipped ones are inferred here from
the lifecycle order `statuses.ORDER` and reported together in one message.

Choices (documented because each could go the other way):

* A status is implied only when the observed one proves the job passed through it:
  a non-final status or DONE implies every status ranked strictly between the
  previous and the observed one (QUEUED -> DONE implies RUNNING). ERROR and
  CANCELLED imply nothing: a job can fail validation or be cancelled in the queue
  without ever running, and a false "your job is running" mail is worse than none.
* A final status ends watching: later observations of a final job are ignored, so
  a job reaches at most one final status and each is notified at most once.
* A status already in `job.notified` is never due again, even if the job moves
  back (IBM may re-queue a job) and re-enters it.
* An observation equal to the current status enters nothing.
* Group milestones are sent in addition to per-job mail, and only when some job of
  the group asked for the statuses behind them (RUNNING for "first_running", any
  final status for "all_final"), so a group never mails about what nobody requested.
  A channel hears of a milestone on the same terms: its own statuses include them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from qjm_jupyter.statuses import FINAL_STATUSES, ORDER, STATUSES, is_final, normalize_status

from ..domain import GroupSummary, Job, WatchState

Milestone = Literal["first_running", "all_final"]

RUNNING_RANK = ORDER["RUNNING"]

# The statuses behind each milestone: a listener (the group's jobs, a channel) that asked
# for none of them does not hear of it.
MILESTONE_STATUSES: dict[Milestone, frozenset[str]] = {
    "first_running": frozenset({"RUNNING"}),
    "all_final": frozenset(FINAL_STATUSES),
}


@dataclass(frozen=True)
class Decision:
    """The outcome of one observation of one job."""

    previous: str
    status: str  # the job's status after the observation
    entered: tuple[str, ...]  # newly entered statuses, lifecycle order, implied ones included
    due: tuple[str, ...]  # the entered statuses to mail about now
    notified: tuple[str, ...]  # job.notified after the mail is queued (vocabulary order)
    watch_state: WatchState
    ignored: bool = False  # the job was final already: nothing changes

    @property
    def changed(self) -> bool:
        return not self.ignored and status_changes(self.previous, self.status)

    @property
    def final(self) -> bool:
        return is_final(self.status)


def status_changes(previous: str, observed: str) -> bool:
    """Whether observing `observed` moves a job that is at `previous`: a final job never
    moves, an equal status is no move. The poller asks this before reading a full job."""
    before, after = normalize_status(previous), normalize_status(observed)
    return not is_final(before) and after != before


def implied_statuses(previous: str, observed: str) -> list[str]:
    """Statuses the job must have passed through between `previous` and `observed`."""
    if observed in FINAL_STATUSES and observed != "DONE":
        return []
    low, high = ORDER[previous], ORDER[observed]
    between = [s for s in STATUSES if low < ORDER[s] < high and s not in FINAL_STATUSES]
    return sorted(between, key=lambda s: ORDER[s])


def entered_statuses(previous: str, observed: str) -> list[str]:
    """Skipped statuses (lifecycle order) followed by the observed one; [] if unchanged."""
    if observed == previous:
        return []
    return [*implied_statuses(previous, observed), observed]


def _vocabulary_order(values: Iterable[str]) -> tuple[str, ...]:
    wanted = set(values)
    return tuple(s for s in STATUSES if s in wanted)


def decide(job: Job, observed: str) -> Decision:
    """Apply one observed status to a job's state (without writing anything)."""
    status = normalize_status(observed)
    previous = normalize_status(job.status)
    notified = _vocabulary_order(job.notified)
    if is_final(previous):
        return Decision(previous, previous, (), (), notified, "final", ignored=True)
    entered = tuple(entered_statuses(previous, status))
    requested = set(normalize_status(s) for s in job.notify_status)
    due = tuple(s for s in entered if s in requested and s not in notified)
    if is_final(status):
        watch_state: WatchState = "final"
    elif job.watch_state in ("lost", "final"):
        watch_state = "active"  # seen again: watch it again
    else:
        watch_state = job.watch_state
    return Decision(previous, status, entered, due, _vocabulary_order((*notified, *due)), watch_state)


def reached(job: Job, status: str) -> bool:
    """Has the job been in `status`, as far as its current status and history tell."""
    return job.status == status or any(ev.status == status for ev in job.history)


def has_run(job: Job) -> bool:
    """The job reached RUNNING (DONE counts: it cannot finish without running)."""
    return reached(job, "RUNNING") or reached(job, "DONE")


def final_counts(jobs: Sequence[Job]) -> dict[str, int]:
    """How many jobs of a group ended in each final status (vocabulary order, zeros left out)."""
    counts = Counter(j.status for j in jobs if is_final(j.status))
    return {s: counts[s] for s in STATUSES if counts[s]}


@dataclass(frozen=True)
class GroupOutcome:
    milestones: tuple[Milestone, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)


def summarize_group(job: Job, group_jobs: Sequence[Job]) -> GroupSummary:
    """The summary of a group from its jobs (the definition `Store.group_summary` must match)."""
    others = [j for j in group_jobs if j.id != job.id]
    everyone = [*others, job]
    requested = {normalize_status(s) for j in everyone for s in j.notify_status}
    return GroupSummary(
        total=len(everyone),
        final_counts=final_counts(everyone),
        others_ran=any(has_run(j) for j in others),
        wants_running=hears_milestone(requested, "first_running"),
        wants_final=hears_milestone(requested, "all_final"),
    )


def hears_milestone(statuses: Iterable[str], milestone: Milestone) -> bool:
    """Whether a listener asking for `statuses` hears of `milestone` (a channel's statuses)."""
    return bool({normalize_status(s) for s in statuses} & MILESTONE_STATUSES[milestone])


def group_milestones(decision: Decision, job: Job, group: GroupSummary) -> GroupOutcome:
    """Milestones of `job`'s group that this decision completes.

    `group` summarizes the group as stored *after* the job's write (it includes `job`).
    The outbox dedupe key makes a milestone that two processes both detect harmless.
    """
    if not job.group or decision.ignored or not decision.entered:
        return GroupOutcome()
    out: list[Milestone] = []
    if "RUNNING" in decision.entered and group.wants_running and not group.others_ran:
        out.append("first_running")
    if decision.final and group.wants_final and sum(group.final_counts.values()) >= group.total:
        out.append("all_final")
    return GroupOutcome(tuple(out), dict(group.final_counts) if "all_final" in out else {})
