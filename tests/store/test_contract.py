"""The Store contract (store/base.py docstrings), run against every backend.

A backend passes only if it behaves exactly like the others: these tests are the
definition of "identical" for SQLite and MongoDB.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from qjm_jupyter_server.domain import (
    ActionToken,
    Channel,
    Job,
    JobQuery,
    JobRef,
    Notification,
    StatusEvent,
    User,
)
from qjm_jupyter_server.store.base import Conflict, Store

T0 = 1_767_225_600_000
_seq = itertools.count()


def make_user(email: str | None = None, *, at: int = T0, **kw: Any) -> User:
    n = next(_seq)
    return User(
        id=kw.pop("id", f"u{n:05d}"),
        email=email or f"user{n}@example.org",
        password_hash="$2b$04$hash",
        created_at=at,
        updated_at=at,
        **kw,
    )


def make_job(user_id: str, ibm_job_id: str | None = None, *, at: int = T0, **kw: Any) -> Job:
    n = next(_seq)
    return Job(
        id=kw.pop("id", f"j{n:06d}"),
        user_id=user_id,
        ibm_job_id=ibm_job_id or f"d{n:06d}",
        registered_at=at,
        updated_at=kw.pop("updated_at", at),
        **kw,
    )


def make_note(dedupe_key: str | None = None, *, at: int = T0, user_id: str | None = "u1", **kw: Any) -> Notification:
    n = next(_seq)
    return Notification(
        id=kw.pop("id", f"n{n:06d}"),
        dedupe_key=dedupe_key or f"k{n}",
        user_id=user_id,
        kind=kw.pop("kind", "job_status"),
        to_addr="someone@example.org",
        subject="Job done",
        text="plain body with https://qjm.test/verify?t=secret",
        html="<p>html body</p>",
        created_at=at,
        **kw,
    )


def q(user_id: str | None, **kw: Any) -> JobQuery:
    return JobQuery(user_id=user_id, **kw)


# -- lifecycle -------------------------------------------------------------------------------
async def test_open_is_idempotent(store: Store) -> None:
    await store.open()
    u = make_user()
    await store.create_user(u)
    await store.open()
    assert await store.get_user(u.id) == u


# -- users ---------------------------------------------------------------------------------
async def test_user_round_trip_and_case_insensitive_email(store: Store) -> None:
    u = make_user("Ada.Lovelace@Example.ORG", is_admin=True, notify_default=["RUNNING", "DONE"], ibm_key_state="ok")
    await store.create_user(u)
    got = await store.get_user(u.id)
    assert got is not None
    assert got.email == "ada.lovelace@example.org"
    assert got.is_admin is True and got.is_verified is False and got.is_active is True
    assert got.notify_default == ["RUNNING", "DONE"]
    assert await store.get_user_by_email("ADA.LOVELACE@example.org") == got
    assert await store.get_user("nobody") is None
    assert await store.get_user_by_email("nobody@example.org") is None


async def test_duplicate_email_in_any_case_conflicts(store: Store) -> None:
    await store.create_user(make_user("same@example.org"))
    with pytest.raises(Conflict):
        await store.create_user(make_user("SAME@Example.org"))
    assert await store.count_users() == 1


async def test_update_user_and_email_conflict(store: Store) -> None:
    a, b = make_user("a@example.org"), make_user("b@example.org")
    await store.create_user(a)
    await store.create_user(b)
    updated = await store.update_user(a.id, {"is_verified": True, "email": "New@Example.org", "updated_at": T0 + 5})
    assert updated is not None
    assert (updated.is_verified, updated.email, updated.updated_at) == (True, "new@example.org", T0 + 5)
    assert await store.get_user_by_email("new@example.org") == updated
    with pytest.raises(Conflict):
        await store.update_user(b.id, {"email": "NEW@example.org"})
    assert (await store.get_user(b.id)).email == "b@example.org"  # type: ignore[union-attr]
    assert await store.update_user("missing", {"is_verified": True}) is None


async def test_bump_token_version(store: Store) -> None:
    u = make_user()
    await store.create_user(u)
    results = await asyncio.gather(*(store.bump_token_version(u.id, T0 + i) for i in range(5)))
    assert sorted(r.token_version for r in results if r) == [1, 2, 3, 4, 5]
    assert (await store.get_user(u.id)).token_version == 5  # type: ignore[union-attr]
    assert await store.bump_token_version("missing", T0) is None


async def test_list_users_oldest_first_with_paging(store: Store) -> None:
    users = [make_user(at=T0 + i) for i in (3, 1, 2, 0)]
    for u in users:
        await store.create_user(u)
    ordered = sorted(users, key=lambda u: u.created_at)
    assert [u.id for u in await store.list_users(10, 0)] == [u.id for u in ordered]
    assert [u.id for u in await store.list_users(2, 1)] == [u.id for u in ordered[1:3]]
    assert await store.count_users() == 4


async def test_delete_user_cascades_to_outbox_too(store: Store) -> None:
    gone, kept = make_user(), make_user()
    for u in (gone, kept):
        await store.create_user(u)
        await store.register_jobs([make_job(u.id), make_job(u.id)])
        await store.touch_poll_unit(u.id, "crn:a", T0)
        await store.put_action_token(ActionToken(f"h-{u.id}", u.id, "verify", T0 + 1000, T0))
        await store.enqueue([make_note(user_id=u.id)])
    assert await store.delete_user(gone.id, now=T0) is True
    assert await store.get_user(gone.id) is None
    assert await store.count_jobs(q(gone.id)) == 0
    assert await store.get_poll_unit(f"{gone.id}|crn:a") is None
    assert await store.consume_action_token(f"h-{gone.id}", "verify", T0) is None
    assert await store.list_notifications(gone.id, 10, 0) == []  # addresses and subjects go too
    assert await store.count_outbox(user_id=gone.id) == 0
    assert await store.count_outbox(user_id=kept.id) == 1
    # the other user is untouched
    assert await store.count_jobs(q(kept.id)) == 2
    assert await store.get_poll_unit(f"{kept.id}|crn:a") is not None
    assert await store.consume_action_token(f"h-{kept.id}", "verify", T0) is not None
    assert await store.delete_user(gone.id, now=T0) is False


# -- action tokens --------------------------------------------------------------------------
# -- external identities ----------------------------------------------------------------------
async def test_identity_binding_finds_its_user_and_is_exclusive(store: Store) -> None:
    a, b = make_user(), make_user()
    await store.create_user(a)
    await store.create_user(b)
    assert await store.get_user_by_identity("jupyter:alice") is None
    await store.bind_identity("jupyter:alice", a.id, T0)
    await store.bind_identity("jupyter:alice", a.id, T0 + 1)  # again, same user: no-op
    assert await store.get_user_by_identity("jupyter:alice") == a
    with pytest.raises(Conflict):
        await store.bind_identity("jupyter:alice", b.id, T0)
    assert await store.get_user_by_identity("jupyter:alice") == a
    await store.bind_identity("hub:alice", a.id, T0)
    assert await store.list_identities(a.id) == ["hub:alice", "jupyter:alice"]
    assert await store.list_identities(b.id) == []
    # replace moves the binding (linking a host identity to an existing account)
    await store.bind_identity("jupyter:alice", b.id, T0, replace=True)
    assert await store.get_user_by_identity("jupyter:alice") == b
    assert await store.list_identities(a.id) == ["hub:alice"]
    assert await store.list_identities(b.id) == ["jupyter:alice"]


async def test_identity_bindings_go_with_their_user(store: Store) -> None:
    a = make_user()
    await store.create_user(a)
    await store.bind_identity("hub:carol", a.id, T0)
    assert await store.delete_user(a.id, now=T0)
    assert await store.get_user_by_identity("hub:carol") is None
    assert await store.list_identities(a.id) == []
    b = make_user()
    await store.create_user(b)
    await store.bind_identity("hub:carol", b.id, T0)  # free again
    assert await store.get_user_by_identity("hub:carol") == b


async def test_concurrent_first_binds_have_one_winner(store: Store) -> None:
    users = [make_user() for _ in range(6)]
    for u in users:
        await store.create_user(u)

    async def bind(u: User) -> bool:
        try:
            await store.bind_identity("jupyter:race", u.id, T0)
        except Conflict:
            return False
        return True

    won = await asyncio.gather(*(bind(u) for u in users))
    assert sum(won) == 1
    winner = users[won.index(True)]
    assert await store.get_user_by_identity("jupyter:race") == winner


async def test_action_token_single_use_purpose_and_expiry(store: Store) -> None:
    tok = ActionToken("hash1", "u1", "verify", expires_at=T0 + 1000, created_at=T0, data={"email": "x@example.org"})
    await store.put_action_token(tok)
    assert await store.consume_action_token("hash1", "reset", T0) is None  # wrong purpose
    results = await asyncio.gather(*(store.consume_action_token("hash1", "verify", T0 + 10) for _ in range(4)))
    winners = [r for r in results if r is not None]
    assert winners == [tok]
    assert await store.consume_action_token("hash1", "verify", T0 + 10) is None

    await store.put_action_token(ActionToken("hash2", "u1", "reset", expires_at=T0 + 1000, created_at=T0))
    assert await store.consume_action_token("hash2", "reset", T0 + 1000) is None  # expired at expires_at


async def test_delete_action_tokens(store: Store) -> None:
    for i, purpose in enumerate(["verify", "verify", "reset"]):
        await store.put_action_token(ActionToken(f"t{i}", "u1", purpose, T0 + 100, T0))  # type: ignore[arg-type]
    await store.put_action_token(ActionToken("other", "u2", "verify", T0 + 100, T0))
    assert await store.delete_action_tokens("u1", "verify") == 2
    assert await store.consume_action_token("t0", "verify", T0) is None
    assert await store.consume_action_token("t2", "reset", T0) is not None
    assert await store.consume_action_token("other", "verify", T0) is not None


# -- throttle ---------------------------------------------------------------------------------
async def test_throttle_fixed_windows(store: Store) -> None:
    assert await store.throttle_get("k") is None
    s1 = await store.throttle_hit("k", T0, 1000)
    s2 = await store.throttle_hit("k", T0 + 500, 1000)
    s3 = await store.throttle_hit("k", T0 + 999, 1000)
    assert [(s.count, s.window_start) for s in (s1, s2, s3)] == [(1, T0), (2, T0), (3, T0)]
    s4 = await store.throttle_hit("k", T0 + 1000, 1000)  # the window is over: restart at 1
    assert (s4.key, s4.count, s4.window_start) == ("k", 1, T0 + 1000)
    got = await store.throttle_get("k")
    assert got is not None and (got.count, got.window_start) == (1, T0 + 1000)
    await store.throttle_hit("other", T0, 1000)
    await store.throttle_clear("k")
    assert await store.throttle_get("k") is None
    assert (await store.throttle_get("other")).count == 1  # type: ignore[union-attr]


async def test_throttle_concurrent_hits_all_count(store: Store) -> None:
    await asyncio.gather(*(store.throttle_hit("c", T0 + i, 60_000) for i in range(6)))
    assert (await store.throttle_get("c")).count == 6  # type: ignore[union-attr]


async def test_throttle_hit_is_one_atomic_check_and_count(store: Store) -> None:
    # 120 attempts at once each get their own count, as if they came one by one, so a
    # caller comparing the count with a limit lets exactly `limit` through
    states = await asyncio.gather(*(store.throttle_hit("t", T0 + i, 60_000) for i in range(120)))
    assert sorted(s.count for s in states) == list(range(1, 121))
    assert len([s for s in states if s.count <= 7]) == 7
    assert (await store.throttle_get("t")).count == 120  # type: ignore[union-attr]
    # a new window starts over. The window began with whichever attempt the store applied
    # first (any of T0 .. T0 + 119 when they race), so step past the latest possible end.
    later = T0 + 119 + 60_000
    fresh = await store.throttle_hit("t", later, 60_000)
    assert (fresh.count, fresh.window_start) == (1, later)


async def test_throttle_refund_gives_back_one_in_the_same_window(store: Store) -> None:
    s = await store.throttle_hit("r", T0, 1000)
    await store.throttle_hit("r", T0 + 1, 1000)
    await store.throttle_refund("r", s.window_start)
    assert (await store.throttle_get("r")).count == 1  # type: ignore[union-attr]
    await store.throttle_refund("r", T0 - 5)  # an older window: nothing to give back
    assert (await store.throttle_get("r")).count == 1  # type: ignore[union-attr]
    await store.throttle_refund("r", s.window_start)
    await store.throttle_refund("r", s.window_start)  # never below zero
    assert (await store.throttle_get("r")).count == 0  # type: ignore[union-attr]
    await store.throttle_refund("missing", T0)  # no counter: nothing happens


# -- jobs: registration -----------------------------------------------------------------------
async def test_register_creates_and_merges_in_input_order(store: Store) -> None:
    a = make_job("u1", "ibm-a", notify_status=["DONE"], label="first")
    b = make_job("u1", "ibm-b")
    out = await store.register_jobs([a, b])
    assert out == [(a, True), (b, True)]

    again = make_job("u1", "ibm-a", at=T0 + 50, notify_status=["RUNNING", "ERROR"], label="second", group="g1", backend="ibm_fez")
    c = make_job("u1", "ibm-c", at=T0 + 50)
    out = await store.register_jobs([c, again])
    assert [created for _, created in out] == [True, False]
    merged = out[1][0]
    assert merged.id == a.id  # the stored job, not the new one
    assert merged.notify_status == ["RUNNING", "DONE", "ERROR"]  # union, vocabulary order
    assert merged.label == "first"  # set before: kept
    assert (merged.group, merged.backend) == ("g1", "ibm_fez")  # unset before: filled
    assert merged.registered_at == T0
    assert await store.get_job(a.id) == merged
    assert await store.count_jobs(q("u1")) == 3


async def test_register_same_ibm_id_twice_in_one_call(store: Store) -> None:
    first = make_job("u1", "dup", notify_status=["DONE"])
    second = make_job("u1", "dup", notify_status=["QUEUED"])
    out = await store.register_jobs([first, second])
    assert [c for _, c in out] == [True, False]
    assert out[1][0].id == first.id and out[1][0].notify_status == ["QUEUED", "DONE"]
    assert await store.count_jobs(q("u1")) == 1


async def test_same_ibm_id_for_two_users_is_two_jobs(store: Store) -> None:
    out = await store.register_jobs([make_job("u1", "shared"), make_job("u2", "shared")])
    assert [c for _, c in out] == [True, True]
    assert (await store.get_job_by_ibm_id("u2", "shared")).user_id == "u2"  # type: ignore[union-attr]
    assert await store.get_job_by_ibm_id("u3", "shared") is None


async def test_register_revives_paused_or_lost_only_when_asking_more_and_not_final(store: Store) -> None:
    paused = make_job("u1", "p", notify_status=["DONE"], watch_state="paused", status="RUNNING")
    lost = make_job("u1", "l", notify_status=["DONE"], watch_state="lost", status="QUEUED")
    final_lost = make_job("u1", "f", notify_status=["DONE"], watch_state="lost", status="DONE")
    same = make_job("u1", "s", notify_status=["DONE", "ERROR"], watch_state="paused", status="QUEUED")
    await store.register_jobs([paused, lost, final_lost, same])
    out = await store.register_jobs(
        [
            make_job("u1", "p", notify_status=["RUNNING"]),
            make_job("u1", "l", notify_status=["ERROR"]),
            make_job("u1", "f", notify_status=["ERROR"]),
            make_job("u1", "s", notify_status=["ERROR"]),  # nothing new asked
        ]
    )
    assert [j.watch_state for j, _ in out] == ["active", "active", "lost", "paused"]
    assert out[3][0] == same  # no change at all


async def test_register_duplicate_job_id_conflicts(store: Store) -> None:
    j = make_job("u1", "one")
    await store.register_jobs([j])
    with pytest.raises(Conflict):
        await store.register_jobs([make_job("u1", "two", id=j.id)])


# -- jobs: reads ------------------------------------------------------------------------------
async def test_get_job_scoped_to_user(store: Store) -> None:
    j = make_job("u1")
    await store.register_jobs([j])
    assert await store.get_job(j.id) == j
    assert await store.get_job(j.id, "u1") == j
    assert await store.get_job(j.id, "u2") is None
    assert await store.get_job("missing") is None


async def test_job_round_trip_all_fields(store: Store) -> None:
    j = make_job(
        "u1", "full", backend="ibm_torino", instance="crn:v1:x", channel="local", source="local", created=T0 - 7,
        notify_status=["QUEUED", "DONE"], label="L", group="G", status="RUNNING",
        history=[StatusEvent("QUEUED", T0 - 5), StatusEvent("RUNNING", T0 - 1, reason="started")],
        notified=["QUEUED"], watch_state="paused", error_reason="why", last_poll_at=T0 - 2, last_error="e",
        misses=2, version=7,
    )
    await store.register_jobs([j])
    assert await store.get_job(j.id) == j


async def test_list_jobs_newest_first_paging_and_counts(store: Store) -> None:
    jobs = [make_job("u1", at=T0 + i) for i in range(7)]
    jobs.append(make_job("u1", at=T0 + 3, id="j999999"))  # same time: id desc breaks the tie
    await store.register_jobs(jobs)
    await store.register_jobs([make_job("u2", at=T0 + 100)])
    expected = sorted(jobs, key=lambda j: (j.registered_at, j.id), reverse=True)
    assert [j.id for j in await store.list_jobs(q("u1", limit=50))] == [j.id for j in expected]
    assert [j.id for j in await store.list_jobs(q("u1", limit=3, offset=2))] == [j.id for j in expected[2:5]]
    assert await store.list_jobs(q("u1", limit=3, offset=20)) == []
    assert await store.count_jobs(q("u1", limit=1, offset=5)) == 8  # limit/offset do not count
    assert await store.count_jobs(q(None)) == 9
    assert (await store.list_jobs(q(None, limit=1)))[0].user_id == "u2"


async def test_list_jobs_every_filter(store: Store) -> None:
    specs = [
        dict(status="RUNNING", watch_state="active", label="a", group="g1"),
        dict(status="QUEUED", watch_state="paused", label="a", group="g2"),
        dict(status="DONE", watch_state="final", label="b", group="g1"),
        dict(status="ERROR", watch_state="final", label=None, group=None),
        dict(status="QUEUED", watch_state="lost", label="b", group="g1"),
    ]
    jobs = [make_job("u1", at=T0 + i, **s) for i, s in enumerate(specs)]  # type: ignore[arg-type]
    await store.register_jobs(jobs + [make_job("u2", status="RUNNING", label="a", group="g1")])

    async def ids(**kw: Any) -> list[int]:
        query = q("u1", **kw)
        found = await store.list_jobs(query)
        assert await store.count_jobs(query) == len(found)
        return sorted(jobs.index(j) for j in found)

    assert await ids(statuses=["QUEUED"]) == [1, 4]
    assert await ids(statuses=["DONE", "ERROR"]) == [2, 3]
    assert await ids(active=True) == [0, 1]
    assert await ids(active=False) == [2, 3, 4]
    assert await ids(label="a") == [0, 1]
    assert await ids(group="g1") == [0, 2, 4]
    assert await ids(label="b", group="g1", active=False, statuses=["QUEUED"]) == [4]
    assert await ids(statuses=["CANCELLED"]) == []
    assert await store.count_jobs(q(None, label="a")) == 3


async def test_count_jobs_stops_at_its_cap(store: Store) -> None:
    """With a cap the count is min(matches, cap), whatever the filters, limit and offset
    (a page's `total` counts only a little past the page, so the first page does not grow
    with the user's jobs)."""
    jobs = [make_job("u1", at=T0 + i, status="DONE" if i % 3 else "QUEUED") for i in range(12)]
    await store.register_jobs(jobs + [make_job("u2", at=T0 + 50) for _ in range(4)])
    for i in (0, 1, 2):
        await store.update_job(jobs[i].id, "u1", {"updated_at": T0 + 100 + i})
    everyone, mine = q(None), q("u1", limit=2, offset=7)
    queued, feed = q("u1", statuses=["QUEUED"]), q("u1", updated_after=T0 + 100)
    cases = [(mine, 12), (everyone, 16), (queued, 4), (feed, 2)]
    for query, exact in cases:
        assert await store.count_jobs(query) == exact
        assert await store.count_jobs(query, cap=None) == exact
        for cap in (1, 3, exact - 1, exact, exact + 1, 10_000):
            assert await store.count_jobs(query, cap=cap) == min(exact, cap), (query, cap)
        assert await store.count_jobs(query, cap=0) == 0
    assert await store.count_jobs(q("nobody"), cap=5) == 0


async def test_updated_after_is_a_changes_feed_oldest_change_first(store: Store) -> None:
    jobs = [make_job("u1", at=T0 + i) for i in range(5)]
    await store.register_jobs(jobs)
    # touch them in a different order than they were registered
    for k, idx in enumerate([3, 0, 4]):
        await store.update_job(jobs[idx].id, "u1", {"label": f"x{k}", "updated_at": T0 + 100 + k})
    feed = await store.list_jobs(q("u1", updated_after=T0 + 4))
    assert [j.id for j in feed] == [jobs[3].id, jobs[0].id, jobs[4].id]
    assert await store.count_jobs(q("u1", updated_after=T0 + 100)) == 2
    assert [j.id for j in await store.list_jobs(q("u1", updated_after=T0 + 4, limit=1, offset=1))] == [jobs[0].id]


async def test_update_delete_and_active_jobs(store: Store) -> None:
    a = make_job("u1", instance="crn:a")
    b = make_job("u1", instance="crn:a", watch_state="paused")
    c = make_job("u1", instance="crn:b")
    d = make_job("u1", instance="crn:a", source="local")
    e = make_job("u2", instance="crn:a")
    await store.register_jobs([a, b, c, d, e])
    assert [j.id for j in await store.list_active_jobs("u1", "crn:a")] == [a.id]

    assert await store.update_job(a.id, "u2", {"label": "nope"}) is None  # not the owner
    upd = await store.update_job(a.id, "u1", {"label": "mine", "notify_status": ["RUNNING"], "watch_state": "paused", "updated_at": T0 + 9})
    assert upd is not None and (upd.label, upd.notify_status, upd.watch_state, upd.updated_at) == ("mine", ["RUNNING"], "paused", T0 + 9)
    assert (await store.update_job(b.id, None, {"watch_state": "active"})).watch_state == "active"  # type: ignore[union-attr]
    assert [j.id for j in await store.list_active_jobs("u1", "crn:a")] == [b.id]
    assert await store.update_job("missing", None, {"label": "x"}) is None

    # the refs are the same jobs, in the same order, with the fields the poller fences on
    moved = await store.cas_job(b.id, b.version, {"misses": 2, "last_error": "not found", "status": "QUEUED"})
    assert moved is not None
    assert await store.list_active_job_refs("u1", "crn:a") == [
        JobRef(b.id, b.ibm_job_id, "QUEUED", moved.version, 2, "not found")
    ]
    assert await store.list_active_job_refs("u1", "crn:c") == []
    assert await store.delete_job(c.id, "u2", now=T0) is False
    assert await store.delete_job(c.id, "u1", now=T0) is True
    assert await store.delete_job(c.id, None, now=T0) is False
    assert await store.delete_jobs_of_user("u1", now=T0) == 3
    assert await store.count_jobs(q(None)) == 1


# -- jobs: compare-and-set ------------------------------------------------------------------------
async def test_cas_job_success_and_stale_version(store: Store) -> None:
    j = make_job("u1")
    await store.register_jobs([j])
    ev = StatusEvent("RUNNING", T0 + 1)
    new = await store.cas_job(j.id, 0, {"status": "RUNNING", "updated_at": T0 + 1, "notified": ["RUNNING"]}, [ev])
    assert new is not None
    assert (new.status, new.version, new.history, new.notified) == ("RUNNING", 1, [ev], ["RUNNING"])
    assert await store.cas_job(j.id, 0, {"status": "DONE"}) is None  # lost race: stale version
    assert (await store.get_job(j.id)).status == "RUNNING"  # type: ignore[union-attr]
    assert await store.cas_job("missing", 0, {"status": "DONE"}) is None


async def test_cas_job_concurrent_exactly_one_wins(store: Store) -> None:
    j = make_job("u1")
    await store.register_jobs([j])
    results = await asyncio.gather(
        *(store.cas_job(j.id, 0, {"status": s}, [StatusEvent(s, T0 + i)]) for i, s in enumerate(["QUEUED", "RUNNING", "DONE"]))
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    stored = await store.get_job(j.id)
    assert stored == winners[0] and stored.version == 1 and len(stored.history) == 1  # type: ignore[union-attr]


async def test_history_is_capped_at_last_100_events(store: Store) -> None:
    j = make_job("u1", history=[StatusEvent("QUEUED", T0 + i) for i in range(95)])
    await store.register_jobs([j])
    extra = [StatusEvent("RUNNING", T0 + 1000 + i, reason=f"r{i}") for i in range(10)]
    new = await store.cas_job(j.id, 0, {}, extra)
    assert new is not None and len(new.history) == 100
    assert new.history[0] == StatusEvent("QUEUED", T0 + 5)
    assert new.history[-10:] == extra
    assert new.version == 1


async def test_purge_jobs_removes_only_old_finished(store: Store) -> None:
    specs = [("final", T0), ("lost", T0 + 10), ("final", T0 + 500), ("active", T0), ("paused", T0)]
    jobs = [make_job("u1", watch_state=w, updated_at=t) for w, t in specs]  # type: ignore[arg-type]
    await store.register_jobs(jobs)
    assert await store.purge_jobs(T0 + 100, now=T0 + 100) == 2
    left = {j.id for j in await store.list_jobs(q("u1"))}
    assert left == {jobs[2].id, jobs[3].id, jobs[4].id}


# -- poll units ------------------------------------------------------------------------------------
async def test_touch_poll_unit_creates_and_only_moves_earlier(store: Store) -> None:
    await store.touch_poll_unit("u1", "crn:a", T0 + 100)
    unit = await store.get_poll_unit("u1|crn:a")
    assert unit is not None and (unit.user_id, unit.instance, unit.next_poll_at, unit.lease_owner) == ("u1", "crn:a", T0 + 100, None)
    await store.touch_poll_unit("u1", "crn:a", T0 + 500)
    assert (await store.get_poll_unit("u1|crn:a")).next_poll_at == T0 + 100  # type: ignore[union-attr]
    await store.touch_poll_unit("u1", "crn:a", T0 + 50)
    assert (await store.get_poll_unit("u1|crn:a")).next_poll_at == T0 + 50  # type: ignore[union-attr]
    assert await store.get_poll_unit("u1|crn:b") is None


async def test_claim_poll_units_exclusive_under_gather(store: Store) -> None:
    keys = set()
    for i in range(12):
        await store.touch_poll_unit(f"u{i}", "crn:a", T0 + i)
        keys.add(f"u{i}|crn:a")
    batches = await asyncio.gather(*(store.claim_poll_units(f"w{w}", T0 + 100, 60_000, 2) for w in range(8)))
    claimed = [u.key for batch in batches for u in batch]
    assert len(claimed) == len(set(claimed)) == 12
    assert set(claimed) == keys
    for w, batch in enumerate(batches):
        assert all(u.lease_owner == f"w{w}" and u.lease_until == T0 + 100 + 60_000 for u in batch)
    assert await store.claim_poll_units("late", T0 + 200, 60_000, 10) == []


async def test_claim_poll_units_due_paused_and_order(store: Store) -> None:
    await store.touch_poll_unit("u1", "crn:late", T0 + 30)
    await store.touch_poll_unit("u1", "crn:early", T0 + 10)
    await store.touch_poll_unit("u1", "crn:future", T0 + 10_000)
    await store.touch_poll_unit("u2", "crn:paused", T0)
    await store.claim_poll_units("w", T0, 1000, 10)  # leases the paused-to-be unit
    assert await store.release_poll_unit("u2|crn:paused", "w", {"paused_reason": "key_invalid", "next_poll_at": T0})
    got = await store.claim_poll_units("w", T0 + 100, 1000, 10)
    assert [u.key for u in got] == ["u1|crn:early", "u1|crn:late"]  # earliest due first
    assert await store.claim_poll_units("x", T0 + 100, 1000, 10) == []
    # touching does not unpause; waking does
    await store.touch_poll_unit("u2", "crn:paused", T0 + 100)
    assert await store.claim_poll_units("x", T0 + 200, 1000, 10) == []


async def test_expired_lease_is_stolen_and_old_owner_is_fenced(store: Store) -> None:
    await store.touch_poll_unit("u1", "crn:a", T0)
    [mine] = await store.claim_poll_units("old", T0, 1000, 5)
    assert await store.claim_poll_units("new", T0 + 999, 1000, 5) == []  # still leased
    [stolen] = await store.claim_poll_units("new", T0 + 1001, 1000, 5)
    assert stolen.key == mine.key and stolen.lease_owner == "new"
    assert await store.release_poll_unit(mine.key, "old", {"next_poll_at": T0 + 5000, "failures": 3}) is False
    assert await store.delete_poll_unit(mine.key, "old") is False
    unit = await store.get_poll_unit(mine.key)
    assert unit is not None and (unit.lease_owner, unit.failures) == ("new", 0)
    assert await store.release_poll_unit(mine.key, "new", {"next_poll_at": T0 + 5000, "failures": 1, "last_error": "boom"})
    unit = await store.get_poll_unit(mine.key)
    assert unit is not None
    assert (unit.lease_owner, unit.lease_until, unit.next_poll_at, unit.failures, unit.last_error) == (None, 0, T0 + 5000, 1, "boom")
    assert await store.release_poll_unit(mine.key, "new", {}) is False  # released already


async def test_release_poll_units_in_one_write_each_fenced(store: Store) -> None:
    for inst in ("crn:a", "crn:b", "crn:c"):
        await store.touch_poll_unit("u1", inst, T0)
    claimed = await store.claim_poll_units("w", T0, 1000, 10)
    assert len(claimed) == 3
    [stolen] = [u for u in claimed if u.key == "u1|crn:c"]
    await store.release_poll_unit(stolen.key, "w", {})
    assert len(await store.claim_poll_units("other", T0, 1000, 10)) == 1  # crn:c now leased by "other"
    released = await store.release_poll_units("w", [
        ("u1|crn:a", {"next_poll_at": T0 + 5000, "failures": 0, "last_error": None}),
        ("u1|crn:b", {"next_poll_at": T0 + 7000, "failures": 2, "last_error": "transient: 503"}),
        ("u1|crn:c", {"next_poll_at": T0 + 1, "failures": 9}),  # not ours any more: untouched
    ])
    assert released == 2
    a, b, c = [await store.get_poll_unit(f"u1|crn:{x}") for x in "abc"]
    assert a is not None and (a.lease_owner, a.lease_until, a.next_poll_at, a.failures) == (None, 0, T0 + 5000, 0)
    assert b is not None and (b.lease_owner, b.next_poll_at, b.failures, b.last_error) == (None, T0 + 7000, 2, "transient: 503")
    assert c is not None and (c.lease_owner, c.failures) == ("other", 0)
    assert await store.release_poll_units("w", []) == 0
    with pytest.raises(ValueError):
        await store.release_poll_units("other", [("u1|crn:c", {"lease_owner": "me"})])  # only the release fields


async def test_wake_user_units(store: Store) -> None:
    for inst in ("crn:a", "crn:b"):
        await store.touch_poll_unit("u1", inst, T0)
    await store.touch_poll_unit("u2", "crn:a", T0)
    for u in await store.claim_poll_units("w", T0, 10, 10):
        await store.release_poll_unit(u.key, "w", {"paused_reason": "key_invalid", "next_poll_at": T0 + 99_999})
    assert await store.wake_user_units("u1", T0 + 50) == 2
    got = await store.claim_poll_units("w", T0 + 50, 10, 10)
    assert sorted(u.key for u in got) == ["u1|crn:a", "u1|crn:b"]
    assert (await store.get_poll_unit("u2|crn:a")).paused_reason == "key_invalid"  # type: ignore[union-attr]
    assert await store.wake_user_units("nobody", T0) == 0


async def test_delete_poll_unit_is_fenced(store: Store) -> None:
    await store.touch_poll_unit("u1", "crn:a", T0)
    assert await store.delete_poll_unit("u1|crn:a", "w") is False  # nobody holds it
    await store.claim_poll_units("w", T0, 1000, 1)
    assert await store.delete_poll_unit("u1|crn:a", "w") is True
    assert await store.get_poll_unit("u1|crn:a") is None


# -- outbox ------------------------------------------------------------------------------------------
async def test_enqueue_is_idempotent_on_dedupe_key(store: Store) -> None:
    a = make_note("job1:DONE")
    assert await store.enqueue([a, make_note("job1:RUNNING")]) == 2
    assert await store.enqueue([make_note("job1:DONE"), make_note("job1:ERROR")]) == 1
    assert await store.enqueue([make_note("job1:DONE")]) == 0
    results = await asyncio.gather(*(store.enqueue([make_note("race")]) for _ in range(4)))
    assert sum(results) == 1
    assert await store.count_outbox() == 4
    assert await store.count_outbox("pending") == 4
    assert await store.enqueue([make_note("other-user", user_id="u2")]) == 1
    assert await store.count_outbox(user_id="u1") == 4
    assert await store.count_outbox("pending", user_id="u2") == 1
    assert [n for n in await store.list_notifications(None, 10, 0) if n.dedupe_key == "job1:DONE"] == [a]


async def test_claim_outbox_exclusive_oldest_first_and_due(store: Store) -> None:
    notes = [make_note(at=T0 + i) for i in (5, 1, 3, 0, 4, 2)]
    notes.append(make_note(at=T0, next_attempt_at=T0 + 10_000))  # not due yet
    await store.enqueue(notes)
    first = await store.claim_outbox("w1", T0 + 100, 1000, 2)
    assert [n.created_at for n in first] == [T0, T0 + 1]
    assert all(n.attempts == 1 and n.lease_owner == "w1" and n.lease_until == T0 + 1100 for n in first)
    batches = await asyncio.gather(*(store.claim_outbox(f"w{i}", T0 + 100, 1000, 2) for i in range(2, 6)))
    claimed = [n.id for b in batches for n in b] + [n.id for n in first]
    assert len(claimed) == len(set(claimed)) == 6
    assert await store.claim_outbox("w9", T0 + 200, 1000, 10) == []
    # an expired lease can be taken over, and attempts keep counting
    again = await store.claim_outbox("w9", T0 + 1101, 1000, 1)
    assert [n.id for n in again] == [first[0].id] and again[0].attempts == 2
    assert await store.mark_sent(first[0].id, "w1", T0 + 1200) is False  # fenced out


async def test_claim_outbox_puts_account_mail_first_and_shares_fairly(store: Store) -> None:
    flood = [make_note(f"flood{i}", at=T0 + i, user_id="noisy") for i in range(30)]
    quiet = make_note("quiet", at=T0 + 40, user_id="quiet")
    reset = make_note("reset", at=T0 + 50, user_id="other", kind="reset")
    await store.enqueue([*flood, quiet, reset])
    batch = await store.claim_outbox("w", T0 + 100, 1000, 3)
    # account mail is never queued behind job mail; one user's volume does not starve another's
    assert [n.dedupe_key for n in batch] == ["reset", "flood0", "quiet"]
    rest = await store.claim_outbox("w", T0 + 100, 1000, 100)
    assert [n.dedupe_key for n in rest] == [f"flood{i}" for i in range(1, 30)]


async def test_purge_outbox_links_drops_unsent_rows_of_a_kind(store: Store) -> None:
    old = make_note("old-reset", at=T0, kind="reset")
    new = make_note("new-reset", at=T0 + 500, kind="reset")
    job = make_note("job", at=T0, kind="job_status")
    failed = make_note("failed-reset", at=T0, kind="reset", state="failed")
    await store.enqueue([old, new, job, failed])
    assert await store.purge_outbox_links("reset", T0 + 100) == 2
    assert sorted(n.dedupe_key for n in await store.list_notifications(None, 10, 0)) == ["job", "new-reset"]


async def test_group_summary_matches_the_rule_on_the_jobs(store: Store) -> None:
    from qjm_jupyter_server.watcher.rules import summarize_group

    ran_then_failed = make_job("u1", group="g", status="ERROR", history=[StatusEvent("RUNNING", T0), StatusEvent("ERROR", T0 + 1)])
    jobs = [
        make_job("u1", group="g", status="QUEUED", notify_status=["DONE"]),
        make_job("u1", group="g", status="DONE", notify_status=["ERROR"]),
        make_job("u1", group="g", status="CANCELLED", notify_status=[]),
        ran_then_failed,
        make_job("u1", group="other", status="RUNNING", notify_status=["RUNNING"]),
        make_job("u2", group="g", status="RUNNING", notify_status=["RUNNING"]),
    ]
    await store.register_jobs(jobs)
    in_group = jobs[:4]
    for me in in_group:
        got = await store.group_summary("u1", "g", me.id)
        assert got == summarize_group(me, in_group), me.id
    assert (await store.group_summary("u1", "g", jobs[0].id)).others_ran is True
    # a job that ran and then failed is the only one with RUNNING in its history
    solo = make_job("u3", group="s", status="ERROR", history=[StatusEvent("RUNNING", T0)])
    await store.register_jobs([solo, make_job("u3", group="s", status="QUEUED")])
    assert (await store.group_summary("u3", "s", solo.id)).others_ran is False
    assert (await store.group_summary("u3", "s", "another")).others_ran is True
    summary = await store.group_summary("u1", "g", jobs[0].id)
    assert (summary.total, summary.final_counts) == (4, {"DONE": 1, "ERROR": 1, "CANCELLED": 1})
    assert (summary.wants_running, summary.wants_final) == (False, True)
    assert (await store.group_summary("u1", "other", "x")).wants_running is True
    assert (await store.group_summary("u1", "none", "x")).total == 0


async def test_user_instances_are_the_distinct_watched_ones(store: Store) -> None:
    await store.register_jobs([
        make_job("u1", instance="crn:a"), make_job("u1", instance="crn:a"), make_job("u1", instance="crn:b"),
        make_job("u1", instance="crn:c", watch_state="final"), make_job("u1", source="local", instance=None),
        make_job("u2", instance="crn:z"),
    ])
    assert sorted(await store.list_user_instances("u1")) == ["crn:a", "crn:b"]
    assert await store.list_user_instances("nobody") == []


async def test_outbox_retry_failed_sent_transitions(store: Store) -> None:
    a, b, c = make_note(at=T0), make_note(at=T0 + 1), make_note(at=T0 + 2)
    await store.enqueue([a, b, c])
    await store.claim_outbox("w", T0, 1000, 3)
    assert await store.mark_retry(a.id, "other", T0 + 500, "x") is False
    assert await store.mark_retry(a.id, "w", T0 + 500, "421 try later") is True
    assert await store.mark_failed(b.id, "w", "550 no such user", T0 + 10) is True
    assert await store.mark_sent(c.id, "w", T0 + 20) is True
    assert await store.mark_sent(c.id, "w", T0 + 21) is False  # lease dropped already

    by_id = {n.id: n for n in await store.list_notifications("u1", 10, 0)}
    ra, rb, rc = by_id[a.id], by_id[b.id], by_id[c.id]
    assert (ra.state, ra.next_attempt_at, ra.last_error, ra.lease_owner, ra.attempts) == ("pending", T0 + 500, "421 try later", None, 1)
    assert (rb.state, rb.last_error, rb.lease_owner) == ("failed", "550 no such user", None)
    assert (rc.state, rc.sent_at, rc.lease_owner, rc.text, rc.html) == ("sent", T0 + 20, None, "", "")
    assert rc.subject == c.subject and rc.to_addr == c.to_addr
    assert (await store.count_outbox("pending"), await store.count_outbox("failed"), await store.count_outbox("sent")) == (1, 1, 1)

    assert await store.claim_outbox("w", T0 + 499, 1000, 5) == []  # retry not due yet
    [retry] = await store.claim_outbox("w", T0 + 500, 1000, 5)
    assert retry.id == a.id and retry.attempts == 2


async def test_list_notifications_newest_first_per_user_and_all(store: Store) -> None:
    mine = [make_note(at=T0 + i, user_id="u1") for i in range(4)]
    other = make_note(at=T0 + 10, user_id="u2")
    system = make_note(at=T0 + 20, user_id=None)
    await store.enqueue(mine + [other, system])
    assert [n.id for n in await store.list_notifications("u1", 10, 0)] == [n.id for n in reversed(mine)]
    assert [n.id for n in await store.list_notifications("u1", 2, 1)] == [mine[2].id, mine[1].id]
    everything = await store.list_notifications(None, 3, 0)
    assert [n.id for n in everything] == [system.id, other.id, mine[3].id]
    assert everything[0] == system


async def test_paging_edges_are_the_same_everywhere(store: Store) -> None:
    await store.register_jobs([make_job("u1", at=T0 + i) for i in range(3)])
    await store.create_user(make_user())
    await store.enqueue([make_note()])
    assert await store.list_jobs(q("u1", limit=0)) == []  # not "unlimited"
    assert await store.list_jobs(q("u1", limit=-1)) == []
    assert len(await store.list_jobs(q("u1", limit=2, offset=-5))) == 2
    assert await store.list_users(0, 0) == []
    assert await store.list_notifications(None, 0, 0) == []
    assert len(await store.list_notifications(None, 5, -1)) == 1


# -- tombstones (deletions in the changes feed) ------------------------------------------------------
async def test_every_kind_of_delete_leaves_a_tombstone(store: Store) -> None:
    gone = make_user()
    await store.create_user(gone)
    one, two, three = make_job("u1"), make_job("u1"), make_job("u1")
    theirs = make_job("u2")
    old_final = make_job("u3", watch_state="final", updated_at=T0)
    old_active = make_job("u3", updated_at=T0)
    of_gone = make_job(gone.id)
    await store.register_jobs([one, two, three, theirs, old_final, old_active, of_gone])

    assert await store.delete_job(one.id, "u2", now=T0 + 5) is False  # not theirs: no tombstone
    assert await store.list_deleted_jobs(None, 0, 100) == []
    assert await store.delete_job(one.id, "u1", now=T0 + 10) is True
    assert await store.delete_jobs_of_user("u1", now=T0 + 20) == 2
    assert await store.purge_jobs(T0 + 1, now=T0 + 30) == 1
    assert await store.delete_user(gone.id, now=T0 + 40) is True

    assert await store.list_deleted_jobs("u1", 0, 100) == sorted(
        [(one.id, T0 + 10), (two.id, T0 + 20), (three.id, T0 + 20)], key=lambda t: (t[1], t[0])
    )
    assert await store.list_deleted_jobs("u2", 0, 100) == []
    assert await store.list_deleted_jobs("u3", 0, 100) == [(old_final.id, T0 + 30)]
    assert await store.list_deleted_jobs(gone.id, 0, 100) == [(of_gone.id, T0 + 40)]
    everyone = await store.list_deleted_jobs(None, 0, 100)
    assert [t[1] for t in everyone] == [T0 + 10, T0 + 20, T0 + 20, T0 + 30, T0 + 40]  # oldest first
    # strictly after the cursor, and the limit keeps the oldest
    assert [t[0] for t in await store.list_deleted_jobs(None, T0 + 20, 100)] == [old_final.id, of_gone.id]
    assert await store.list_deleted_jobs(None, 0, 1) == [(one.id, T0 + 10)]
    assert await store.list_deleted_jobs(None, 0, 0) == []
    # the survivors are untouched and have no tombstone
    assert {j.id for j in await store.list_jobs(q(None))} == {theirs.id, old_active.id}


@pytest.mark.parametrize(
    "method, args",
    [("delete_user", ("u1",)), ("delete_job", ("j1", "u1")), ("delete_jobs_of_user", ("u1",)), ("purge_jobs", (T0,))],
)
async def test_every_delete_takes_its_time_from_the_caller(store: Store, method: str, args: tuple[Any, ...]) -> None:
    """A tombstone's time is the caller's clock (the services' Clock, a test's ManualClock);
    a store never reads the wall clock behind its back, so `now` has no default."""
    with pytest.raises(TypeError, match="now"):
        await getattr(store, method)(*args)


async def test_purge_deleted_jobs_drops_only_old_tombstones(store: Store) -> None:
    jobs = [make_job("u1") for _ in range(3)]
    await store.register_jobs(jobs)
    for i, job in enumerate(jobs):
        await store.delete_job(job.id, "u1", now=T0 + 100 * i)
    assert await store.purge_deleted_jobs(T0 + 100) == 1
    assert [t[0] for t in await store.list_deleted_jobs("u1", 0, 10)] == [jobs[1].id, jobs[2].id]
    assert await store.purge_deleted_jobs(T0 + 100) == 0


# -- housekeeping ------------------------------------------------------------------------------------
async def test_purge_action_tokens_removes_only_expired(store: Store) -> None:
    await store.put_action_token(ActionToken("old", "u1", "verify", expires_at=T0, created_at=T0 - 10))
    await store.put_action_token(ActionToken("live", "u1", "reset", expires_at=T0 + 1, created_at=T0 - 10))
    assert await store.purge_action_tokens(T0) == 1  # expired at expires_at, like consume
    assert await store.purge_action_tokens(T0) == 0
    assert await store.consume_action_token("live", "reset", T0) is not None


async def test_purge_outbox_removes_only_old_sent_rows(store: Store) -> None:
    old_sent, new_sent, failed, pending = (make_note(at=T0 + i) for i in range(4))
    await store.enqueue([old_sent, new_sent, failed, pending])
    await store.claim_outbox("w", T0 + 10, 1000, 3)
    assert await store.mark_sent(old_sent.id, "w", T0 + 100)
    assert await store.mark_sent(new_sent.id, "w", T0 + 200)
    assert await store.mark_failed(failed.id, "w", "550", T0 + 50)
    assert await store.purge_outbox(T0 + 200) == 1
    left = {n.id for n in await store.list_notifications(None, 10, 0)}
    assert left == {new_sent.id, failed.id, pending.id}
    assert await store.count_outbox("sent") == 1


async def test_purge_throttles_removes_only_old_windows(store: Store) -> None:
    await store.throttle_hit("old", T0, 1000)
    await store.throttle_hit("new", T0 + 500, 1000)
    assert await store.purge_throttles(T0 + 500) == 1
    assert await store.throttle_get("old") is None
    assert (await store.throttle_get("new")).count == 1  # type: ignore[union-attr]


async def test_active_job_refs_match_active_jobs(store: Store) -> None:
    jobs = [make_job("u1", instance="crn:r", at=T0 + (7 * i) % 5) for i in range(5)]
    await store.register_jobs([*jobs, make_job("u1", instance="crn:r", watch_state="final", status="DONE")])
    full = await store.list_active_jobs("u1", "crn:r")
    refs = await store.list_active_job_refs("u1", "crn:r")
    assert len(refs) == 5
    assert refs == [JobRef(j.id, j.ibm_job_id, j.status, j.version, j.misses, j.last_error) for j in full]


# -- channels and the channel dimension of the outbox -------------------------------------------
def make_channel(user_id: str, *, at: int = T0, **kw: Any) -> Channel:
    n = next(_seq)
    return Channel(id=kw.pop("id", f"c{n:05d}"), user_id=user_id, url_cipher=f"cipher-{n}", scheme="json",
                   host="hooks.example.org", created_at=at, updated_at=at, **kw)


async def test_channels_crud_scoped_to_their_owner(store: Store) -> None:
    ada, bob = make_user(), make_user()
    await store.create_user(ada)
    await store.create_user(bob)
    first, second = make_channel(ada.id, at=T0 + 1, label="phone"), make_channel(ada.id, at=T0 + 2, notify_status=["ERROR"])
    for c in (second, first, make_channel(bob.id)):
        await store.create_channel(c)
    assert [c.id for c in await store.list_channels(ada.id)] == [first.id, second.id]
    got = await store.get_channel(first.id, ada.id)
    assert got is not None and (got.label, got.notify_status, got.enabled, got.url_cipher) == (
        "phone", ["DONE", "ERROR", "CANCELLED"], True, first.url_cipher)
    assert await store.get_channel(first.id, bob.id) is None
    assert await store.update_channel(first.id, bob.id, {"label": "x"}) is None
    changed = await store.update_channel(first.id, ada.id, {"label": None, "enabled": False, "notify_status": ["RUNNING"]})
    assert changed is not None and (changed.label, changed.enabled, changed.notify_status) == (None, False, ["RUNNING"])
    with pytest.raises(ValueError):
        await store.update_channel(first.id, ada.id, {"user_id": bob.id})
    with pytest.raises(Conflict):
        await store.create_channel(make_channel(ada.id, id=first.id))
    assert await store.delete_channel(first.id, bob.id) is False
    assert await store.delete_channel(first.id, ada.id) is True
    assert [c.id for c in await store.list_channels(ada.id)] == [second.id]
    await store.delete_user(ada.id, T0 + 10)
    assert await store.list_channels(ada.id) == []


async def test_each_medium_claims_only_its_own_outbox_rows(store: Store) -> None:
    email = make_note(at=T0)
    to_phone = make_note(at=T0 + 1, channel_id="c-phone")
    to_chat = make_note(at=T0 + 2, channel_id="c-chat")
    await store.enqueue([to_chat, email, to_phone])
    mail = await store.claim_outbox("mailer", T0 + 10, 1000, 10)
    hooks = await store.claim_outbox("hooks", T0 + 10, 1000, 10, channels=True)
    assert [n.id for n in mail] == [email.id]
    assert [n.id for n in hooks] == [to_phone.id, to_chat.id] and hooks[0].channel_id == "c-phone"
    assert await store.claim_outbox("other", T0 + 10, 1000, 10, channels=True) == []
    assert [n.id for n in await store.list_notifications("u1", 10, 0, channel_id="c-chat")] == [to_chat.id]
    assert await store.count_outbox(user_id="u1", channel_id="c-phone") == 1
    assert await store.count_outbox(user_id="u1") == 3


async def test_held_rows_are_listed_when_due_and_digested_once(store: Store) -> None:
    early = make_note(at=T0, state="held", next_attempt_at=T0 + 100)
    late = make_note(at=T0 + 1, state="held", next_attempt_at=T0 + 900)
    pending = make_note(at=T0 + 2)
    await store.enqueue([late, pending, early])
    assert [n.id for n in await store.list_held(T0 + 100, 10)] == [early.id]
    assert [n.id for n in await store.list_held(T0 + 1000, 10)] == [early.id, late.id]
    claimed = await store.claim_outbox("w", T0 + 1000, 1000, 10)
    assert [n.id for n in claimed] == [pending.id]  # held rows are never claimed for sending
    assert await store.mark_retry(pending.id, "w", T0, "later") is True
    assert await store.mark_digested([early.id, late.id, pending.id], T0 + 1000) == 2  # only held rows
    assert await store.mark_digested([early.id], T0 + 1001) == 0
    assert await store.list_held(T0 + 5000, 10) == []
    rows = {n.id: n for n in await store.list_notifications("u1", 10, 0)}
    assert (rows[early.id].state, rows[early.id].text, rows[early.id].sent_at) == ("digested", "", T0 + 1000)
    assert rows[pending.id].state == "pending"
