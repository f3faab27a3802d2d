"""Properties of the transition rules, over any sequence of observations."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from qjm_jupyter.statuses import FINAL_STATUSES, STATUSES, is_final
from qjm_jupyter_server.domain import Job, StatusEvent
from qjm_jupyter_server.watcher.rules import (
    decide,
    entered_statuses,
    final_counts,
    group_milestones,
    summarize_group,
)

statuses = st.sampled_from(STATUSES)
requests = st.lists(statuses, unique=True)


def job(status: str = "INITIALIZING", notify: list[str] | None = None, **kw: object) -> Job:
    return Job(
        id=kw.pop("id", "j1"),  # type: ignore[arg-type]
        user_id="u1",
        ibm_job_id=str(kw.pop("ibm_job_id", "ibm-1")),
        registered_at=0,
        updated_at=0,
        status=status,
        notify_status=list(notify if notify is not None else ["DONE", "ERROR", "CANCELLED"]),
        **kw,  # type: ignore[arg-type]
    )


def run(j: Job, observations: list[str]) -> tuple[Job, list[tuple[str, ...]]]:
    """Apply observations the way transitions.py does; return the job and each mail's statuses."""
    mails: list[tuple[str, ...]] = []
    for i, obs in enumerate(observations):
        d = decide(j, obs)
        if d.due:
            mails.append(d.due)
        if d.changed:
            j = replace(j, status=d.status, notified=list(d.notified), watch_state=d.watch_state,
                        history=[*j.history, StatusEvent(d.status, i)])
    return j, mails


# -- examples that pin the documented choices ------------------------------------------------
def test_skipped_running_is_reported_with_done_in_one_message() -> None:
    d = decide(job("QUEUED", ["RUNNING", "DONE"]), "DONE")
    assert d.entered == ("RUNNING", "DONE")
    assert d.due == ("RUNNING", "DONE")
    assert d.watch_state == "final"


def test_error_does_not_imply_running() -> None:
    d = decide(job("QUEUED", ["RUNNING", "ERROR"]), "ERROR")
    assert d.entered == ("ERROR",)
    assert d.due == ("ERROR",)
    assert decide(job("QUEUED", ["RUNNING", "CANCELLED"]), "CANCELLED").due == ("CANCELLED",)


def test_aliases_and_case_are_accepted() -> None:
    assert decide(job("RUNNING"), "Completed").due == ("DONE",)
    assert decide(job("RUNNING"), "canceled").status == "CANCELLED"


def test_unchanged_status_enters_nothing() -> None:
    d = decide(job("RUNNING", ["RUNNING"]), "RUNNING")
    assert not d.changed and d.due == () and d.entered == ()


def test_final_job_ignores_later_observations() -> None:
    d = decide(job("DONE", ["RUNNING", "DONE", "ERROR"]), "ERROR")
    assert d.ignored and not d.changed and d.due == () and d.status == "DONE"


def test_already_notified_status_is_not_due_again() -> None:
    d = decide(job("QUEUED", ["RUNNING"], notified=["RUNNING"]), "RUNNING")
    assert d.changed and d.due == ()


def test_unrequested_entered_status_is_not_due() -> None:
    d = decide(job("QUEUED", ["DONE"]), "RUNNING")
    assert d.entered == ("RUNNING",) and d.due == ()


def test_lost_job_seen_again_is_active() -> None:
    assert decide(job("QUEUED", watch_state="lost"), "RUNNING").watch_state == "active"


def test_entered_from_initializing_to_running() -> None:
    assert entered_statuses("INITIALIZING", "RUNNING") == ["VALIDATING", "QUEUED", "RUNNING"]
    assert entered_statuses("RUNNING", "QUEUED") == ["QUEUED"]  # re-queued: entered again


# -- group milestones -----------------------------------------------------------------------------
def _group(*specs: tuple[str, str, list[str]]) -> list[Job]:
    return [job(status, notify, id=jid, ibm_job_id=jid, group="g") for jid, status, notify in specs]


def test_first_running_once_for_the_group() -> None:
    before = _group(("a", "QUEUED", ["RUNNING", "DONE"]), ("b", "QUEUED", ["DONE"]))
    d = decide(before[0], "RUNNING")
    after_a = replace(before[0], status="RUNNING")
    assert group_milestones(d, after_a, summarize_group(after_a, [after_a, before[1]])).milestones == ("first_running",)
    # the second job to run completes no milestone
    d2 = decide(before[1], "RUNNING")
    after_b = replace(before[1], status="RUNNING")
    assert group_milestones(d2, after_b, summarize_group(after_b, [after_a, after_b])).milestones == ()


def test_first_running_needs_a_request() -> None:
    before = _group(("a", "QUEUED", ["DONE"]), ("b", "QUEUED", ["DONE"]))
    d = decide(before[0], "RUNNING")
    after = replace(before[0], status="RUNNING")
    assert group_milestones(d, after, summarize_group(after, [after, before[1]])).milestones == ()


def test_all_final_with_counts() -> None:
    jobs = _group(("a", "DONE", ["DONE"]), ("b", "ERROR", ["DONE"]), ("c", "RUNNING", ["DONE"]))
    d = decide(jobs[2], "DONE")
    after = replace(jobs[2], status="DONE")
    out = group_milestones(d, after, summarize_group(after, [jobs[0], jobs[1], after]))
    assert out.milestones == ("all_final",)
    assert out.counts == {"DONE": 2, "ERROR": 1}


def test_all_final_waits_for_every_job() -> None:
    jobs = _group(("a", "RUNNING", ["DONE"]), ("b", "QUEUED", ["DONE"]))
    d = decide(jobs[0], "DONE")
    after = replace(jobs[0], status="DONE")
    assert group_milestones(d, after, summarize_group(after, [after, jobs[1]])).milestones == ()


def test_final_counts_order() -> None:
    assert final_counts(_group(("a", "ERROR", []), ("b", "DONE", []), ("c", "RUNNING", []))) == {"DONE": 1, "ERROR": 1}


# -- properties over any sequence of observations ----------------------------------------------
@settings(max_examples=400, deadline=None)
@given(requested=requests, start=statuses, observations=st.lists(statuses, max_size=12))
def test_never_notifies_a_status_twice(requested: list[str], start: str, observations: list[str]) -> None:
    _, mails = run(job(start if not is_final(start) else "INITIALIZING", requested), observations)
    flat = [s for m in mails for s in m]
    assert len(flat) == len(set(flat))


@settings(max_examples=400, deadline=None)
@given(requested=requests, observations=st.lists(statuses, max_size=12))
def test_never_notifies_an_unrequested_status(requested: list[str], observations: list[str]) -> None:
    _, mails = run(job("INITIALIZING", requested), observations)
    assert all(s in requested for m in mails for s in m)


@settings(max_examples=400, deadline=None)
@given(requested=requests, observations=st.lists(statuses, max_size=12))
def test_requested_final_status_reached_is_notified_exactly_once(requested: list[str], observations: list[str]) -> None:
    final_job, mails = run(job("INITIALIZING", requested), observations)
    flat = [s for m in mails for s in m]
    reached_final = next((o for o in observations if o in FINAL_STATUSES), None)
    assert final_job.status == (reached_final or final_job.status)
    for s in FINAL_STATUSES:
        expected = 1 if (s == reached_final and s in requested) else 0
        assert flat.count(s) == expected, (s, mails)
    if reached_final is not None:
        assert final_job.watch_state == "final"


@settings(max_examples=300, deadline=None)
@given(requested=requests, observations=st.lists(statuses, max_size=12))
def test_done_implies_running_was_entered(requested: list[str], observations: list[str]) -> None:
    """A requested RUNNING is never silently lost on the way to DONE."""
    final_job, mails = run(job("INITIALIZING", requested), observations)
    flat = [s for m in mails for s in m]
    if final_job.status == "DONE" and "RUNNING" in requested:
        assert flat.count("RUNNING") == 1


@settings(max_examples=200, deadline=None)
@given(requested=requests, observations=st.lists(statuses, min_size=1, max_size=12))
def test_same_observation_twice_is_idempotent(requested: list[str], observations: list[str]) -> None:
    """Re-applying the last observation (a retried CAS, a second process) enters nothing."""
    j, _ = run(job("INITIALIZING", requested), observations)
    d = decide(j, observations[-1]) if not is_final(j.status) else decide(j, j.status)
    assert d.due == ()
