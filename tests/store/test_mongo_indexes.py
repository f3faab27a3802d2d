"""Every query the Mongo store sends runs on an index: each one is recorded off the wire
(pymongo command monitoring) while every store method runs, then `explain`ed on the wire
server, and its winning plan must not scan the collection.

Listing the queries from the wire rather than by hand means a new query is checked the
day it is written. SecantusDB (the wire server the tests run) explains queries, but its
planner picks an index for fewer shapes than mongod (not `{_id, user_id}`, not a prefix
with extra fields); for those the test requires the index mongod would use, by key
prefix. The only unindexed queries allowed are whole-collection counts (`count_users`,
`count_outbox()`, an admin's unfiltered job total), named in WHOLE_COLLECTION, and an
admin's job total filtered by status/label/group over every user (ADMIN_COUNT_FIELDS).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient, monitoring

from qjm_jupyter_server.domain import ActionToken, Job, JobQuery, Notification, StatusEvent, User
from qjm_jupyter_server.store.mongo import MongoStore

pytestmark = pytest.mark.mongo
T0 = 1_767_225_600_000
# `GET admin/jobs?status=|label=|group=` counts every user's matching jobs; the page itself
# walks the `registered` index, the total scans. Indexing each filter field for every user
# would tax every job write for a rare admin view.
ADMIN_COUNT_FIELDS = {"status", "label", "group"}
QUERY_COMMANDS = {"find", "count", "aggregate", "update", "delete", "findAndModify"}
# (collection, command) pairs whose filter is empty on purpose: a whole-collection count.
WHOLE_COLLECTION = {("users", "aggregate"), ("outbox", "aggregate"), ("jobs", "aggregate")}


class _Recorder(monitoring.CommandListener):
    """Records query commands to one database; inert once `database` is None (pymongo has
    no way to unregister a global listener)."""

    def __init__(self) -> None:
        self.database: str | None = None
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.database and event.database_name == self.database and event.command_name in QUERY_COMMANDS:
            self.commands.append(copy.deepcopy(dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


_RECORDER = _Recorder()
monitoring.register(_RECORDER)


@pytest.fixture
def recorded_store(mongo_url: str, mongo_database: str, jp_asyncio_loop: asyncio.AbstractEventLoop) -> Iterator[MongoStore]:
    _RECORDER.database, _RECORDER.commands = mongo_database, []
    store = MongoStore(mongo_url, database=mongo_database)
    jp_asyncio_loop.run_until_complete(store.open())
    try:
        yield store
    finally:
        _RECORDER.database = None
        jp_asyncio_loop.run_until_complete(store.close())


async def _every_method(store: MongoStore) -> None:
    """Each store method once (the filters of list_jobs in every combination the API makes)."""
    users = [User(id=f"u{i}", email=f"u{i}@x.org", password_hash="h", created_at=T0 + i, updated_at=T0) for i in range(3)]
    for u in users:
        await store.create_user(u)
    await store.get_user("u0")
    await store.get_user_by_email("U1@x.org")
    await store.update_user("u0", {"is_admin": True})
    await store.bump_token_version("u0", T0)
    await store.list_users(10, 0)
    await store.count_users()
    await store.put_action_token(ActionToken("th", "u0", "verify", T0 + 10_000, T0))
    await store.consume_action_token("th", "verify", T0)
    await store.delete_action_tokens("u0", "reset")
    await store.purge_action_tokens(T0)
    await store.throttle_hit("k", T0, 60_000)
    await store.throttle_get("k")
    await store.throttle_clear("k")
    await store.purge_throttles(T0)

    crn = "crn:1"
    jobs = [Job(id=f"j{i}", user_id="u0", ibm_job_id=f"i{i}", registered_at=T0 + i, updated_at=T0 + i, instance=crn,
                label="l", group="g") for i in range(5)]
    await store.register_jobs(jobs)
    again = [Job(id=f"k{i}", user_id="u0", ibm_job_id=f"i{i}", registered_at=T0, updated_at=T0 + 100, instance=crn,
                 notify_status=["RUNNING"], backend="b") for i in range(2)]
    await store.register_jobs(again)  # merges
    await store.get_job("j0")
    await store.get_job("j0", "u0")
    await store.get_job_by_ibm_id("u0", "i1")
    for user_id in ("u0", None):
        for extra in ({}, {"statuses": ["DONE"]}, {"active": True}, {"active": False}, {"label": "l"}, {"group": "g"},
                      {"updated_after": T0}, {"statuses": ["QUEUED"], "active": True, "updated_after": T0}):
            q = JobQuery(user_id=user_id, limit=10, **extra)  # type: ignore[arg-type]
            await store.list_jobs(q)
            await store.count_jobs(q)
            await store.count_jobs(q, cap=1011)  # a page's capped `total`
        await store.list_deleted_jobs(user_id, T0, 10)
    await store.update_job("j1", "u0", {"label": "x", "updated_at": T0 + 200})
    await store.update_job("j1", None, {"label": "y"})
    await store.list_active_jobs("u0", crn)
    await store.list_active_job_refs("u0", crn)
    await store.cas_job("j2", 0, {"status": "DONE", "watch_state": "final"}, [StatusEvent("DONE", T0)])
    await store.delete_job("j3", "u0", now=T0)
    await store.delete_job("j4", None, now=T0)
    await store.purge_jobs(T0 + 10_000, now=T0)
    await store.purge_deleted_jobs(T0 - 1)

    await store.touch_poll_unit("u0", crn, T0)
    claimed = await store.claim_poll_units("me", T0, 60_000, 10)
    assert claimed
    await store.release_poll_unit(claimed[0].key, "me", {"next_poll_at": T0})
    await store.wake_user_units("u0", T0)
    await store.get_poll_unit(claimed[0].key)
    await store.delete_poll_unit(claimed[0].key, "me")

    notes = [Notification(id=f"n{i}", dedupe_key=f"d{i}", user_id="u0", kind="job_status", to_addr="a@b.c",
                          subject="s", text="t", html="h", created_at=T0 + i) for i in range(3)]
    await store.enqueue(notes)
    out = await store.claim_outbox("me", T0 + 10, 60_000, 3)
    await store.mark_sent(out[0].id, "me", T0)
    await store.mark_retry(out[1].id, "me", T0, "e")
    await store.mark_failed(out[2].id, "me", "e", T0)
    await store.list_notifications("u0", 10, 0)
    await store.list_notifications(None, 10, 0)
    await store.purge_outbox(T0)
    await store.count_outbox()
    await store.count_outbox("pending")
    await store.count_outbox(None, "u0")
    await store.count_outbox("sent", "u0")
    await store.delete_jobs_of_user("u1", now=T0)
    await store.delete_user("u2", now=T0)


def _explainable(command: dict[str, Any]) -> dict[str, Any]:
    """The command as `explain` takes it: without the driver's session fields, and an
    update/delete reduced to its first statement."""
    cmd = {k: v for k, v in command.items() if not k.startswith("$") and k not in ("lsid", "txnNumber")}
    for key in ("updates", "deletes"):
        if key in cmd:
            cmd[key] = cmd[key][:1]
    return cmd


def _stages(plan: Any) -> Iterator[str]:
    if isinstance(plan, dict):
        if "stage" in plan:
            yield plan["stage"]
        for value in plan.values():
            yield from _stages(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from _stages(value)


def _filter_of(command: dict[str, Any]) -> Any:
    for key in ("filter", "query"):
        if key in command:
            return command[key]
    if "pipeline" in command:
        return next((s["$match"] for s in command["pipeline"] if "$match" in s), {})
    if "updates" in command:
        return command["updates"][0]["q"]
    if "deletes" in command:
        return command["deletes"][0]["q"]
    return None


def _index_for(command: dict[str, Any], indexes: dict[str, list[str]]) -> str | None:
    """The index mongod can answer the command with: one whose first key the filter pins
    (equality, `$in` or a range), or, for a sorted find, one whose keys are the sort's.
    `_id` is always indexed."""
    flt = _filter_of(command) or {}
    fields = set(flt) if isinstance(flt, dict) else set()
    if "_id" in fields:
        return "_id_"
    best, best_len = None, 0
    for name, keys in indexes.items():
        pinned = 0
        while pinned < len(keys) and keys[pinned] in fields:
            pinned += 1
        if pinned > best_len:
            best, best_len = name, pinned
    if best is not None:
        return best
    sort = list((command.get("sort") or {}).keys())
    for name, keys in indexes.items():
        if sort and keys[: len(sort)] == sort:
            return name
    return None


async def test_every_query_uses_an_index(recorded_store: MongoStore, mongo_url: str, mongo_database: str) -> None:
    """Each recorded query: the wire server's `explain` shows an index scan, or (where its
    planner is simpler than mongod's and scans anyway) the query names an index mongod
    would use. The resulting table (query -> index) is printed: the documentation."""
    await _every_method(recorded_store)
    commands = list(_RECORDER.commands)
    assert len(commands) > 40, "the recorder saw too few queries to prove anything"
    client: MongoClient = MongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    table: dict[str, str] = {}
    scans: list[str] = []
    by_explain = 0
    try:
        db = client[mongo_database]
        indexes = {
            coll: {ix["name"]: list(ix["key"].keys()) for ix in db[coll].list_indexes()}
            for coll in db.list_collection_names()
        }
        for command in commands:
            name = next(iter(command))
            collection = command[name]
            flt = _filter_of(command)
            shape = f"{collection}.{name} {sorted(flt) if isinstance(flt, dict) else flt} sort={list(command.get('sort') or {})}"
            if not flt and (collection, name) in WHOLE_COLLECTION:
                table[shape] = "(whole-collection count)"
                continue
            if (collection, name) == ("jobs", "aggregate") and isinstance(flt, dict) and set(flt) <= ADMIN_COUNT_FIELDS:
                table[shape] = "(admin total over every user: counted by scan)"
                continue
            plan = db.command("explain", _explainable(command), verbosity="queryPlanner")
            winning = plan.get("queryPlanner", {}).get("winningPlan", plan)
            stages = set(_stages(winning))
            if stages and "COLLSCAN" not in stages:
                by_explain += 1
                table[shape] = f"explain: {sorted(stages)}"
                continue
            index = _index_for(command, indexes.get(collection, {}))
            if index is None:
                scans.append(f"{shape}: {sorted(stages)}")
            else:
                table[shape] = f"index {index} (the wire server's planner scans)"
    finally:
        client.close()
    print("\n".join(f"{q} -> {i}" for q, i in sorted(table.items())))
    assert by_explain > 5, "explain never showed an index: the check would prove nothing"
    assert not scans, "queries on no index:\n" + "\n".join(scans)


async def test_first_page_and_feed_poll_read_an_index_in_order(
    recorded_store: MongoStore, mongo_url: str, mongo_database: str
) -> None:
    """The reads of a first page and of the panel's feed poll, recorded off the wire: each
    find has an index whose keys are the user then exactly its sort (same directions), so
    mongod walks it in order and stops at the limit, with no in-memory sort of the user's
    jobs; and each count stops at its cap (`$limit` before `$group`). Their cost follows
    the page or the changes, not the user's jobs. (SecantusDB's planner sorts anyway; the
    index is what mongod needs.)"""
    from qjm_jupyter_server.jobs import TOTAL_BEYOND_PAGE

    await recorded_store.register_jobs([Job(id=f"j{i}", user_id="u0", ibm_job_id=f"i{i}", registered_at=T0 + i,
                                            updated_at=T0 + i) for i in range(30)])
    _RECORDER.commands = []
    for query in (JobQuery(user_id="u0", limit=10), JobQuery(user_id="u0", updated_after=T0 + 25, limit=200)):
        await recorded_store.list_jobs(query)
        await recorded_store.count_jobs(query, cap=query.offset + query.limit + TOTAL_BEYOND_PAGE + 1)
    finds = [c for c in _RECORDER.commands if "find" in c]
    counts = [c for c in _RECORDER.commands if "aggregate" in c]
    assert len(finds) == len(counts) == 2
    client: MongoClient = MongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    try:
        indexes = [dict(ix["key"]) for ix in client[mongo_database]["jobs"].list_indexes()]
    finally:
        client.close()
    for find in finds:
        wanted = {"user_id": 1, **dict(find["sort"])}
        assert any(list(ix.items()) == list(wanted.items()) for ix in indexes), (find, indexes)
        assert find["filter"]["user_id"] == "u0" and find["limit"] > 0
    for count in counts:
        stages = [next(iter(stage)) for stage in count["pipeline"]]
        assert stages[:2] == ["$match", "$limit"] and count["pipeline"][1]["$limit"] > 0, count
