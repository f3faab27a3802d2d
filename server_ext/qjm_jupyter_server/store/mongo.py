"""The hosted store: MongoDB through the PyMongo Async API, shared by several servers.

Every state change is ONE single-document atomic operation (`find_one_and_update`,
`update_one` with the expected state in the filter as a fence); there are no
transactions, so a standalone mongod works as well as a replica set or Atlas. Ids are
app-made strings and times epoch-ms ints, exactly as in SQLite, so both backends pass
the same contract suite. Two patterns are avoided on purpose because the wire server the
tests run (SecantusDB) gets them wrong where mongod does not: `$$NOW` inside a query
`$expr` (it matches nothing there; times come from the caller), and concurrent
`find_one_and_update(upsert=True)` on a new key (it sometimes returns None; we insert,
catch DuplicateKeyError, then update).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, fields
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, ConnectionFailure, DuplicateKeyError, PyMongoError

from ..domain import (
    ActionToken,
    Channel,
    GroupSummary,
    Job,
    JobQuery,
    JobRef,
    Notification,
    PollUnit,
    StatusEvent,
    ThrottleState,
    User,
)
from .base import Conflict, StoreUnavailable
from .records import (
    RAN_STATUSES,
    FILLABLE_JOB_FIELDS,
    HISTORY_CAP,
    capped_history,
    check_channel_changes,
    claim_order,
    check_job_changes,
    check_unit_changes,
    check_user_changes,
    events_from_plain,
    events_to_plain,
    merge_registration,
    page_bounds,
    poll_unit_key,
)

T = TypeVar("T")
DEFAULT_DATABASE = "qjm"
# Optimistic loops (read -> compute -> fenced write) give up after this many lost races;
# reaching it means pathological contention, reported as "unavailable", never a 500.
MAX_RACE_RETRIES = 20
# Jobs deleted per round of a bulk delete (ids are read, deleted, then tombstoned).
DELETE_BATCH = 500

AFTER = ReturnDocument.AFTER
# The fields of a JobRef: the poller's per-cycle read skips history and the lists.
_REF_PROJECTION = {"ibm_job_id": 1, "status": 1, "version": 1, "misses": 1, "last_error": 1}


def _guarded(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Turn driver errors into the store's own: Conflict or StoreUnavailable."""

    @functools.wraps(fn)
    async def wrapper(self: MongoStore, *args: Any, **kwargs: Any) -> T:
        try:
            return await fn(self, *args, **kwargs)
        except DuplicateKeyError as exc:
            raise Conflict(_conflict_message(exc)) from exc
        except ConnectionFailure as exc:
            raise StoreUnavailable(f"MongoDB is unreachable: {exc}") from exc
        except PyMongoError as exc:
            raise StoreUnavailable(f"MongoDB error: {exc}") from exc

    return wrapper


def _conflict_message(exc: DuplicateKeyError) -> str:
    text = str(exc)
    if "email" in text:
        return "this email address is already registered"
    return "already exists"


def _encode(name: str, value: Any) -> Any:
    if name == "history":
        return events_to_plain(StatusEvent(**e) if isinstance(e, Mapping) else e for e in value)
    return value


def _to_doc(obj: Any, id_field: str) -> dict[str, Any]:
    doc = asdict(obj)
    doc["_id"] = doc.pop(id_field)
    return doc


def _from_doc(cls: Callable[..., T], doc: Mapping[str, Any] | None, id_field: str) -> T | None:
    if doc is None:
        return None
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    data = {k: v for k, v in doc.items() if k in names}
    data[id_field] = doc["_id"]
    if "history" in data:
        data["history"] = events_from_plain(data["history"])
    return cls(**data)


def _user(doc: Mapping[str, Any] | None) -> User | None:
    return _from_doc(User, doc, "id")


def _job(doc: Mapping[str, Any] | None) -> Job | None:
    return _from_doc(Job, doc, "id")


def _unit(doc: Mapping[str, Any] | None) -> PollUnit | None:
    return _from_doc(PollUnit, doc, "key")


def _note(doc: Mapping[str, Any] | None) -> Notification | None:
    return _from_doc(Notification, doc, "id")


def _token(doc: Mapping[str, Any] | None) -> ActionToken | None:
    return _from_doc(ActionToken, doc, "token_hash")


def _sets(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _encode(k, v) for k, v in changes.items()}


def _page(limit: int, offset: int) -> tuple[int, int] | None:
    """Mongo reads limit 0 as "no limit"; the protocol means "nothing"."""
    limit, offset = page_bounds(limit, offset)
    return (limit, offset) if limit else None


def _merge_fence(existing: Job, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Fence a merge on everything it was computed from; a lost race re-reads."""
    fence: dict[str, Any] = {
        "_id": existing.id,
        "notify_status": existing.notify_status,
        "watch_state": existing.watch_state,
        "status": existing.status,
        "updated_at": existing.updated_at,
    }
    for name in FILLABLE_JOB_FIELDS:
        if name in changes:
            fence[name] = None
    return fence


def _job_filter(query: JobQuery) -> dict[str, Any]:
    flt: dict[str, Any] = {}
    if query.user_id is not None:
        flt["user_id"] = query.user_id
    if query.statuses:
        flt["status"] = {"$in": list(query.statuses)}
    if query.active is True:
        flt["watch_state"] = {"$in": ["active", "paused"]}
    elif query.active is False:
        flt["watch_state"] = {"$in": ["final", "lost"]}
    if query.label is not None:
        flt["label"] = query.label
    if query.group is not None:
        flt["group"] = query.group
    if query.updated_after is not None:
        flt["updated_at"] = {"$gt": query.updated_after}
    return flt


class MongoStore:
    """`Store` over a MongoDB database (`mongodb://` or `mongodb+srv://`)."""

    def __init__(self, url: str, database: str | None = None, *, timeout_ms: int = 5000) -> None:
        self.url = url
        self._database_name = database
        self._timeout_ms = timeout_ms
        self._client: AsyncMongoClient | None = None
        self._db_handle: AsyncDatabase | None = None

    # -- plumbing --------------------------------------------------------------------------
    @property
    def _db(self) -> AsyncDatabase:
        """The client is made lazily: it binds to the running loop (it is not thread-safe)."""
        if self._db_handle is None:
            self._client = AsyncMongoClient(
                self.url,
                tz_aware=True,
                serverSelectionTimeoutMS=self._timeout_ms,
                connectTimeoutMS=self._timeout_ms,
                socketTimeoutMS=max(30_000, self._timeout_ms),
                appname="qjm-jupyter",
            )
            if self._database_name:
                self._db_handle = self._client[self._database_name]
            else:
                self._db_handle = self._client.get_default_database(DEFAULT_DATABASE)
        return self._db_handle

    @property
    def database_name(self) -> str:
        return self._db.name

    def _c(self, name: str) -> AsyncCollection:
        return self._db[name]

    # -- lifecycle ---------------------------------------------------------------------------
    @_guarded
    async def open(self) -> None:
        users, jobs, units, outbox, tokens = (
            self._c("users"), self._c("jobs"), self._c("poll_units"), self._c("outbox"), self._c("action_tokens"),
        )
        await users.create_index([("email", ASCENDING)], unique=True, name="email_unique")
        await users.create_index([("created_at", ASCENDING), ("_id", ASCENDING)], name="created")
        await jobs.create_index([("user_id", ASCENDING), ("ibm_job_id", ASCENDING)], unique=True, name="user_ibm_job_unique")
        await jobs.create_index([("user_id", ASCENDING), ("registered_at", DESCENDING), ("_id", DESCENDING)], name="user_registered")
        await jobs.create_index([("user_id", ASCENDING), ("updated_at", ASCENDING), ("_id", ASCENDING)], name="user_updated")
        await jobs.create_index([("user_id", ASCENDING), ("instance", ASCENDING), ("watch_state", ASCENDING)], name="user_instance")
        await jobs.create_index([("watch_state", ASCENDING), ("updated_at", ASCENDING)], name="retention")
        # Every user's jobs (admins), in either listing order; SQLite has the same two.
        await jobs.create_index([("registered_at", DESCENDING), ("_id", DESCENDING)], name="registered")
        await jobs.create_index([("updated_at", ASCENDING), ("_id", ASCENDING)], name="updated")
        await units.create_index([("next_poll_at", ASCENDING)], name="due")
        await units.create_index([("user_id", ASCENDING)], name="user")
        await outbox.create_index([("dedupe_key", ASCENDING)], unique=True, name="dedupe_unique")
        await outbox.create_index([("state", ASCENDING), ("next_attempt_at", ASCENDING)], name="due")
        await outbox.create_index([("created_at", ASCENDING), ("_id", ASCENDING)], name="created")
        await outbox.create_index([("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_created")
        await tokens.create_index([("user_id", ASCENDING), ("purpose", ASCENDING)], name="user_purpose")
        await tokens.create_index([("expires_at", ASCENDING)], name="expiry")
        await self._c("identities").create_index([("user_id", ASCENDING)], name="user")
        await self._c("throttle").create_index([("window_start", ASCENDING)], name="window")
        await outbox.create_index([("state", ASCENDING), ("sent_at", ASCENDING)], name="sent")
        await outbox.create_index([("kind", ASCENDING), ("state", ASCENDING), ("created_at", ASCENDING)], name="kind_created")
        await jobs.create_index(
            [("user_id", ASCENDING), ("source", ASCENDING), ("watch_state", ASCENDING), ("instance", ASCENDING)],
            name="user_source_instance",
        )
        await jobs.create_index([("user_id", ASCENDING), ("group", ASCENDING), ("status", ASCENDING)], name="user_group")
        deleted = self._c("deleted_jobs")
        await deleted.create_index([("user_id", ASCENDING), ("deleted_at", ASCENDING), ("_id", ASCENDING)], name="user_deleted")
        await deleted.create_index([("deleted_at", ASCENDING), ("_id", ASCENDING)], name="deleted")
        await self._c("channels").create_index([("user_id", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)], name="user_created")
        await outbox.create_index([("channel_id", ASCENDING), ("created_at", DESCENDING)], name="channel_created")

    async def close(self) -> None:
        client, self._client, self._db_handle = self._client, None, None
        if client is not None:
            await client.close()

    # -- users ---------------------------------------------------------------------------------
    @_guarded
    async def create_user(self, user: User) -> None:
        doc = _to_doc(user, "id")
        doc["email"] = user.email.lower()
        await self._c("users").insert_one(doc)

    @_guarded
    async def get_user(self, user_id: str) -> User | None:
        return _user(await self._c("users").find_one({"_id": user_id}))

    @_guarded
    async def get_user_by_email(self, email: str) -> User | None:
        return _user(await self._c("users").find_one({"email": email.lower()}))

    @_guarded
    async def update_user(self, user_id: str, changes: Mapping[str, Any]) -> User | None:
        check_user_changes(changes)
        sets = dict(changes)
        if "email" in sets:
            sets["email"] = str(sets["email"]).lower()
        if not sets:
            return await self.get_user(user_id)
        doc = await self._c("users").find_one_and_update({"_id": user_id}, {"$set": sets}, return_document=AFTER)
        return _user(doc)

    @_guarded
    async def bump_token_version(self, user_id: str, now: int) -> User | None:
        doc = await self._c("users").find_one_and_update(
            {"_id": user_id}, {"$inc": {"token_version": 1}, "$set": {"updated_at": now}}, return_document=AFTER
        )
        return _user(doc)

    @_guarded
    async def list_users(self, limit: int, offset: int) -> list[User]:
        page = _page(limit, offset)
        if page is None:
            return []
        cursor = self._c("users").find({}).sort([("created_at", ASCENDING), ("_id", ASCENDING)]).skip(page[1]).limit(page[0])
        return [u for d in await cursor.to_list(None) if (u := _user(d))]

    @_guarded
    async def count_users(self) -> int:
        return await self._c("users").count_documents({})

    @_guarded
    async def delete_user(self, user_id: str, now: int) -> bool:
        # The user row goes last: a crash half-way leaves a user whose delete can be retried.
        await self._delete_jobs({"user_id": user_id}, now)
        await self._c("poll_units").delete_many({"user_id": user_id})
        await self._c("action_tokens").delete_many({"user_id": user_id})
        await self._c("outbox").delete_many({"user_id": user_id})
        await self._c("channels").delete_many({"user_id": user_id})
        await self._c("identities").delete_many({"user_id": user_id})
        return (await self._c("users").delete_one({"_id": user_id})).deleted_count > 0

    # -- external identities ---------------------------------------------------------------------
    @_guarded
    async def bind_identity(self, identity: str, user_id: str, now: int, *, replace: bool = False) -> None:
        identities = self._c("identities")
        if replace:
            await identities.update_one(
                {"_id": identity}, {"$set": {"user_id": user_id}, "$setOnInsert": {"created_at": now}}, upsert=True
            )
            return
        try:
            await identities.insert_one({"_id": identity, "user_id": user_id, "created_at": now})
        except DuplicateKeyError:
            found = await identities.find_one({"_id": identity})
            if found is None or found.get("user_id") != user_id:
                raise Conflict("this identity is bound to another account") from None

    @_guarded
    async def get_user_by_identity(self, identity: str) -> User | None:
        found = await self._c("identities").find_one({"_id": identity})
        if found is None:
            return None
        return _user(await self._c("users").find_one({"_id": found["user_id"]}))

    @_guarded
    async def list_identities(self, user_id: str) -> list[str]:
        cursor = self._c("identities").find({"user_id": user_id}).sort([("_id", ASCENDING)])
        return [doc["_id"] async for doc in cursor]

    # -- action tokens ---------------------------------------------------------------------------
    @_guarded
    async def put_action_token(self, token: ActionToken) -> None:
        await self._c("action_tokens").insert_one(_to_doc(token, "token_hash"))

    @_guarded
    async def consume_action_token(self, token_hash: str, purpose: str, now: int) -> ActionToken | None:
        doc = await self._c("action_tokens").find_one_and_delete(
            {"_id": token_hash, "purpose": purpose, "expires_at": {"$gt": now}}
        )
        return _token(doc)

    @_guarded
    async def delete_action_tokens(self, user_id: str, purpose: str) -> int:
        return (await self._c("action_tokens").delete_many({"user_id": user_id, "purpose": purpose})).deleted_count

    @_guarded
    async def purge_action_tokens(self, now: int) -> int:
        return (await self._c("action_tokens").delete_many({"expires_at": {"$lte": now}})).deleted_count

    # -- throttle -----------------------------------------------------------------------------------
    @_guarded
    async def throttle_hit(self, key: str, now: int, window_ms: int) -> ThrottleState:
        coll, stale = self._c("throttle"), now - window_ms
        for _ in range(MAX_RACE_RETRIES):
            doc = await coll.find_one_and_update(
                {"_id": key, "window_start": {"$gt": stale}}, {"$inc": {"count": 1}}, return_document=AFTER
            )
            if doc is None:
                doc = await coll.find_one_and_update(
                    {"_id": key, "window_start": {"$lte": stale}},
                    {"$set": {"count": 1, "window_start": now}},
                    return_document=AFTER,
                )
            if doc is None:
                try:
                    await coll.insert_one({"_id": key, "count": 1, "window_start": now})
                except DuplicateKeyError:
                    continue  # another process created it first: count on that window
                return ThrottleState(key=key, count=1, window_start=now)
            return ThrottleState(key=key, count=int(doc["count"]), window_start=int(doc["window_start"]))
        raise StoreUnavailable(f"throttle counter {key!r} is too contended")

    @_guarded
    async def throttle_refund(self, key: str, window_start: int) -> None:
        await self._c("throttle").update_one(
            {"_id": key, "window_start": window_start, "count": {"$gt": 0}}, {"$inc": {"count": -1}}
        )

    @_guarded
    async def throttle_get(self, key: str) -> ThrottleState | None:
        doc = await self._c("throttle").find_one({"_id": key})
        return None if doc is None else ThrottleState(key=key, count=int(doc["count"]), window_start=int(doc["window_start"]))

    @_guarded
    async def throttle_clear(self, key: str) -> None:
        await self._c("throttle").delete_one({"_id": key})

    @_guarded
    async def purge_throttles(self, before: int) -> int:
        return (await self._c("throttle").delete_many({"window_start": {"$lt": before}})).deleted_count

    # -- jobs -------------------------------------------------------------------------------------------
    @_guarded
    async def register_jobs(self, jobs: Sequence[Job]) -> list[tuple[Job, bool]]:
        """Bulk: one `insert_many` for the batch, one read of the jobs already watched and
        one `bulk_write` of their merges, whatever the batch size (it was three round
        trips per job). A job whose merge lost a race, or that vanished between the
        insert and the read, goes through `_register_one`, which retries alone."""
        if not jobs:
            return []
        coll = self._c("jobs")
        duplicates: set[int] = set()
        try:
            await coll.insert_many([_to_doc(job, "id") for job in jobs], ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                if error.get("code") not in (11000, 11001):
                    raise
                duplicates.add(int(error["index"]))
        results: dict[int, tuple[Job, bool]] = {i: (job, True) for i, job in enumerate(jobs) if i not in duplicates}
        if duplicates:
            await self._merge_registrations(coll, jobs, sorted(duplicates), results)
        return [results[i] for i in range(len(jobs))]

    async def _merge_registrations(self, coll: AsyncCollection, jobs: Sequence[Job], indexes: list[int],
                                   results: dict[int, tuple[Job, bool]]) -> None:
        by_user: dict[str, list[str]] = {}
        for i in indexes:
            by_user.setdefault(jobs[i].user_id, []).append(jobs[i].ibm_job_id)
        existing: dict[tuple[str, str], Job] = {}
        for user_id, ibm_ids in by_user.items():
            async for doc in coll.find({"user_id": user_id, "ibm_job_id": {"$in": ibm_ids}}):
                job = _job(doc)
                if job is not None:
                    existing[(job.user_id, job.ibm_job_id)] = job
        updates: list[tuple[int, Job, dict[str, Any]]] = []
        alone: list[int] = []
        for i in indexes:
            found = existing.get((jobs[i].user_id, jobs[i].ibm_job_id))
            if found is None:
                alone.append(i)  # deleted since the insert, or an `id` clash: the careful path
                continue
            changes = merge_registration(found, jobs[i])
            if changes:
                updates.append((i, found, changes))
            else:
                results[i] = (found, False)
        if updates:
            await coll.bulk_write([UpdateOne(_merge_fence(found, changes), {"$set": _sets(changes)})
                                   for _, found, changes in updates], ordered=False)
            after = {doc["_id"]: doc async for doc in coll.find({"_id": {"$in": [f.id for _, f, _ in updates]}})}
            for i, found, changes in updates:
                job = _job(after.get(found.id))
                if job is not None and all(getattr(job, k) == v for k, v in changes.items()):
                    results[i] = (job, False)
                else:
                    alone.append(i)  # someone else wrote first: merge again, alone
        for i in alone:
            results[i] = await self._register_one(jobs[i])

    async def _register_one(self, job: Job) -> tuple[Job, bool]:
        coll = self._c("jobs")
        for _ in range(MAX_RACE_RETRIES):
            try:
                await coll.insert_one(_to_doc(job, "id"))
                return job, True
            except DuplicateKeyError:
                pass
            existing = _job(await coll.find_one({"user_id": job.user_id, "ibm_job_id": job.ibm_job_id}))
            if existing is None:
                if await coll.find_one({"_id": job.id}, projection={"_id": 1}) is not None:
                    raise Conflict(f"job id {job.id} already exists")
                continue  # deleted between our insert and read: insert again
            changes = merge_registration(existing, job)
            if not changes:
                return existing, False
            doc = await coll.find_one_and_update(
                _merge_fence(existing, changes), {"$set": _sets(changes)}, return_document=AFTER
            )
            if doc is not None:
                return _job(doc), False  # type: ignore[return-value]
        raise StoreUnavailable(f"job {job.ibm_job_id} is too contended to register")

    @_guarded
    async def get_job(self, job_id: str, user_id: str | None = None) -> Job | None:
        flt: dict[str, Any] = {"_id": job_id}
        if user_id is not None:
            flt["user_id"] = user_id
        return _job(await self._c("jobs").find_one(flt))

    @_guarded
    async def get_job_by_ibm_id(self, user_id: str, ibm_job_id: str) -> Job | None:
        return _job(await self._c("jobs").find_one({"user_id": user_id, "ibm_job_id": ibm_job_id}))

    @_guarded
    async def list_jobs(self, query: JobQuery) -> list[Job]:
        page = _page(query.limit, query.offset)
        if page is None:
            return []
        if query.updated_after is not None:
            order = [("updated_at", ASCENDING), ("_id", ASCENDING)]
        else:
            order = [("registered_at", DESCENDING), ("_id", DESCENDING)]
        cursor = self._c("jobs").find(_job_filter(query)).sort(order).skip(page[1]).limit(page[0])
        return [j for d in await cursor.to_list(None) if (j := _job(d))]

    @_guarded
    async def count_jobs(self, query: JobQuery, cap: int | None = None) -> int:
        if cap is None:
            return await self._c("jobs").count_documents(_job_filter(query))
        if cap <= 0:
            return 0
        # count_documents with a limit is `$match`, `$limit`, `$group`: the server stops at `cap`.
        return await self._c("jobs").count_documents(_job_filter(query), limit=cap)

    @_guarded
    async def update_job(self, job_id: str, user_id: str | None, changes: Mapping[str, Any]) -> Job | None:
        check_job_changes(changes)
        if not changes:
            return await self.get_job(job_id, user_id)
        flt: dict[str, Any] = {"_id": job_id}
        if user_id is not None:
            flt["user_id"] = user_id
        return _job(await self._c("jobs").find_one_and_update(flt, {"$set": _sets(changes)}, return_document=AFTER))

    @_guarded
    async def delete_job(self, job_id: str, user_id: str | None, now: int) -> bool:
        flt: dict[str, Any] = {"_id": job_id}
        if user_id is not None:
            flt["user_id"] = user_id
        doc = await self._c("jobs").find_one_and_delete(flt, projection={"user_id": 1})
        if doc is None:
            return False
        await self._tombstone([(job_id, doc["user_id"])], now)
        return True

    @_guarded
    async def delete_jobs_of_user(self, user_id: str, now: int) -> int:
        return await self._delete_jobs({"user_id": user_id}, now)

    async def _delete_jobs(self, flt: Mapping[str, Any], at: int) -> int:
        """Bulk delete with tombstones. Without transactions the tombstone is written
        after the delete, and only for ids really gone: a crash in between can lose a
        tombstone (a stale row in a panel until it reloads) but never invent one."""
        coll, removed = self._c("jobs"), 0
        while True:
            docs = await coll.find(flt, projection={"user_id": 1}).limit(DELETE_BATCH).to_list(None)
            if not docs:
                return removed
            owners = {d["_id"]: d["user_id"] for d in docs}
            removed += (await coll.delete_many({**flt, "_id": {"$in": list(owners)}})).deleted_count
            kept = {d["_id"] for d in await coll.find({"_id": {"$in": list(owners)}}, projection={"_id": 1}).to_list(None)}
            await self._tombstone([(i, u) for i, u in owners.items() if i not in kept], at)
            if len(docs) < DELETE_BATCH:
                return removed

    async def _tombstone(self, jobs: Sequence[tuple[str, str]], at: int) -> None:
        if not jobs:
            return
        await self._c("deleted_jobs").bulk_write(
            [UpdateOne({"_id": i}, {"$set": {"user_id": u, "deleted_at": at}}, upsert=True) for i, u in jobs],
            ordered=False,
        )

    @_guarded
    async def list_deleted_jobs(self, user_id: str | None, after: int, limit: int) -> list[tuple[str, int]]:
        if limit <= 0:
            return []
        flt: dict[str, Any] = {"deleted_at": {"$gt": after}}
        if user_id is not None:
            flt["user_id"] = user_id
        cursor = self._c("deleted_jobs").find(flt).sort([("deleted_at", ASCENDING), ("_id", ASCENDING)]).limit(limit)
        return [(str(d["_id"]), int(d["deleted_at"])) for d in await cursor.to_list(None)]

    @_guarded
    async def purge_deleted_jobs(self, before: int) -> int:
        return (await self._c("deleted_jobs").delete_many({"deleted_at": {"$lt": before}})).deleted_count

    @_guarded
    async def group_summary(self, user_id: str, group: str, job_id: str) -> GroupSummary:
        coll, flt = self._c("jobs"), {"user_id": user_id, "group": group}
        total = await coll.count_documents(flt)
        counts = {s: await coll.count_documents({**flt, "status": s}) for s in ("DONE", "ERROR", "CANCELLED")}
        ran = [{"status": {"$in": list(RAN_STATUSES)}}, {"history.status": {"$in": list(RAN_STATUSES)}}]
        others_ran = await coll.find_one({**flt, "_id": {"$ne": job_id}, "$or": ran}, projection={"_id": 1})
        running = await coll.find_one({**flt, "notify_status": "RUNNING"}, projection={"_id": 1})
        final = await coll.find_one({**flt, "notify_status": {"$in": ["DONE", "ERROR", "CANCELLED"]}}, projection={"_id": 1})
        return GroupSummary(
            total=total,
            final_counts={k: v for k, v in counts.items() if v},
            others_ran=others_ran is not None,
            wants_running=running is not None,
            wants_final=final is not None,
        )

    @_guarded
    async def list_user_instances(self, user_id: str) -> list[str]:
        found = await self._c("jobs").distinct(
            "instance", {"user_id": user_id, "source": "ibm", "watch_state": {"$in": ["active", "paused"]}}
        )
        return [str(i) for i in found if i is not None]

    @_guarded
    async def list_active_jobs(self, user_id: str, instance: str) -> list[Job]:
        cursor = self._c("jobs").find(
            {"user_id": user_id, "instance": instance, "watch_state": "active", "source": "ibm"}
        ).sort([("registered_at", ASCENDING), ("_id", ASCENDING)])
        return [j for d in await cursor.to_list(None) if (j := _job(d))]

    @_guarded
    async def list_active_job_refs(self, user_id: str, instance: str) -> list[JobRef]:
        cursor = self._c("jobs").find(
            {"user_id": user_id, "instance": instance, "watch_state": "active", "source": "ibm"},
            projection=_REF_PROJECTION,
        ).sort([("registered_at", ASCENDING), ("_id", ASCENDING)])
        return [
            JobRef(d["_id"], d["ibm_job_id"], d["status"], int(d["version"]), int(d.get("misses", 0)), d.get("last_error"))
            for d in await cursor.to_list(None)
        ]

    @_guarded
    async def cas_job(
        self,
        job_id: str,
        expected_version: int,
        changes: Mapping[str, Any],
        append_history: Sequence[StatusEvent] = (),
    ) -> Job | None:
        check_job_changes(changes)
        sets = dict(changes)
        update: dict[str, Any] = {"$inc": {"version": 1}}
        if "history" in sets:
            sets["history"] = capped_history(sets["history"], append_history)
        elif append_history:
            update["$push"] = {"history": {"$each": events_to_plain(append_history), "$slice": -HISTORY_CAP}}
        if sets:
            update["$set"] = _sets(sets)
        doc = await self._c("jobs").find_one_and_update(
            {"_id": job_id, "version": expected_version}, update, return_document=AFTER
        )
        return _job(doc)

    @_guarded
    async def purge_jobs(self, finished_before: int, now: int) -> int:
        return await self._delete_jobs(
            {"watch_state": {"$in": ["final", "lost"]}, "updated_at": {"$lt": finished_before}}, now
        )

    # -- poll units ------------------------------------------------------------------------------------
    @_guarded
    async def touch_poll_unit(self, user_id: str, instance: str, now: int) -> None:
        key = poll_unit_key(user_id, instance)
        coll = self._c("poll_units")
        try:
            await coll.insert_one(_to_doc(PollUnit(key=key, user_id=user_id, instance=instance, next_poll_at=now), "key"))
        except DuplicateKeyError:
            await coll.update_one({"_id": key, "next_poll_at": {"$gt": now}}, {"$set": {"next_poll_at": now}})

    @_guarded
    async def claim_poll_units(self, owner: str, now: int, lease_ms: int, limit: int) -> list[PollUnit]:
        coll, units = self._c("poll_units"), []
        for _ in range(max(0, limit)):
            doc = await coll.find_one_and_update(
                {"next_poll_at": {"$lte": now}, "lease_until": {"$lt": now}, "paused_reason": None},
                {"$set": {"lease_owner": owner, "lease_until": now + lease_ms}},
                sort=[("next_poll_at", ASCENDING), ("_id", ASCENDING)],
                return_document=AFTER,
            )
            if doc is None:
                break
            units.append(_unit(doc))
        return units  # type: ignore[return-value]

    @_guarded
    async def release_poll_unit(self, key: str, owner: str, changes: Mapping[str, Any]) -> bool:
        check_unit_changes(changes)
        sets = {**changes, "lease_owner": None, "lease_until": 0}
        result = await self._c("poll_units").update_one({"_id": key, "lease_owner": owner}, {"$set": sets})
        return result.matched_count > 0

    @_guarded
    async def release_poll_units(self, owner: str, releases: Sequence[tuple[str, Mapping[str, Any]]]) -> int:
        ops = []
        for key, changes in releases:
            check_unit_changes(changes)
            ops.append(UpdateOne({"_id": key, "lease_owner": owner}, {"$set": {**changes, "lease_owner": None, "lease_until": 0}}))
        if not ops:
            return 0
        result = await self._c("poll_units").bulk_write(ops, ordered=False)
        return result.matched_count

    @_guarded
    async def wake_user_units(self, user_id: str, now: int) -> int:
        result = await self._c("poll_units").update_many(
            {"user_id": user_id}, {"$set": {"paused_reason": None, "next_poll_at": now}}
        )
        return result.matched_count

    @_guarded
    async def delete_poll_unit(self, key: str, owner: str) -> bool:
        return (await self._c("poll_units").delete_one({"_id": key, "lease_owner": owner})).deleted_count > 0

    @_guarded
    async def get_poll_unit(self, key: str) -> PollUnit | None:
        return _unit(await self._c("poll_units").find_one({"_id": key}))

    # -- outbox ------------------------------------------------------------------------------------------
    @_guarded
    async def enqueue(self, notifications: Sequence[Notification]) -> int:
        inserted = 0
        for n in notifications:
            try:
                await self._c("outbox").insert_one(_to_doc(n, "id"))
                inserted += 1
            except DuplicateKeyError:
                pass  # same dedupe_key (or id): already queued, which is the point
        return inserted

    @_guarded
    async def claim_outbox(
        self, owner: str, now: int, lease_ms: int, limit: int, channels: bool = False
    ) -> list[Notification]:
        """Order the due rows (`claim_order`), then lease them one by one, each fenced on
        still being due and unleased; a row another process took first is skipped."""
        coll, items = self._c("outbox"), []
        if limit <= 0:
            return []
        medium = {"$ne": None} if channels else None  # None also matches rows from before channels
        due_filter = {"state": "pending", "next_attempt_at": {"$lte": now}, "lease_until": {"$lt": now}, "channel_id": medium}
        due = await coll.find(due_filter, projection={"user_id": 1, "kind": 1, "created_at": 1, "to_addr": 1}).to_list(None)
        order = claim_order((d["_id"], d.get("user_id"), d["kind"], int(d["created_at"]), d["to_addr"]) for d in due)
        for row_id in order:
            doc = await coll.find_one_and_update(
                {"_id": row_id, **due_filter},
                {"$set": {"lease_owner": owner, "lease_until": now + lease_ms}, "$inc": {"attempts": 1}},
                return_document=AFTER,
            )
            if doc is not None:
                items.append(_note(doc))
                if len(items) >= limit:
                    break
        return items  # type: ignore[return-value]

    async def _fenced_outbox(self, notification_id: str, owner: str, sets: dict[str, Any]) -> bool:
        sets = {**sets, "lease_owner": None, "lease_until": 0}
        result = await self._c("outbox").update_one(
            {"_id": notification_id, "lease_owner": owner, "state": "pending"}, {"$set": sets}
        )
        return result.matched_count > 0

    @_guarded
    async def mark_sent(self, notification_id: str, owner: str, now: int) -> bool:
        return await self._fenced_outbox(
            notification_id, owner, {"state": "sent", "sent_at": now, "text": "", "html": "", "last_error": None}
        )

    @_guarded
    async def mark_retry(self, notification_id: str, owner: str, next_attempt_at: int, error: str) -> bool:
        return await self._fenced_outbox(notification_id, owner, {"next_attempt_at": next_attempt_at, "last_error": error})

    @_guarded
    async def mark_failed(self, notification_id: str, owner: str, error: str, now: int) -> bool:
        return await self._fenced_outbox(notification_id, owner, {"state": "failed", "last_error": error})

    @_guarded
    async def list_notifications(
        self, user_id: str | None, limit: int, offset: int, channel_id: str | None = None
    ) -> list[Notification]:
        page = _page(limit, offset)
        if page is None:
            return []
        flt: dict[str, Any] = {} if user_id is None else {"user_id": user_id}
        if channel_id is not None:
            flt["channel_id"] = channel_id
        cursor = self._c("outbox").find(flt).sort([("created_at", DESCENDING), ("_id", DESCENDING)]).skip(page[1]).limit(page[0])
        return [n for d in await cursor.to_list(None) if (n := _note(d))]

    @_guarded
    async def purge_outbox(self, sent_before: int) -> int:
        result = await self._c("outbox").delete_many({"state": "sent", "sent_at": {"$lt": sent_before}})
        return result.deleted_count

    @_guarded
    async def purge_outbox_links(self, kind: str, created_before: int) -> int:
        result = await self._c("outbox").delete_many(
            {"kind": kind, "state": {"$in": ["pending", "failed"]}, "created_at": {"$lt": created_before}}
        )
        return result.deleted_count

    @_guarded
    async def count_outbox(
        self, state: str | None = None, user_id: str | None = None, channel_id: str | None = None
    ) -> int:
        flt: dict[str, Any] = {}
        if channel_id is not None:
            flt["channel_id"] = channel_id
        if state is not None:
            flt["state"] = state
        if user_id is not None:
            flt["user_id"] = user_id
        return await self._c("outbox").count_documents(flt)


    @_guarded
    async def list_held(self, now: int, limit: int) -> list[Notification]:
        if limit <= 0:
            return []
        cursor = self._c("outbox").find({"state": "held", "next_attempt_at": {"$lte": now}}).sort(
            [("next_attempt_at", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]).limit(limit)
        return [n for d in await cursor.to_list(None) if (n := _note(d))]

    @_guarded
    async def mark_digested(self, notification_ids: Sequence[str], now: int) -> int:
        ids = list(notification_ids)
        if not ids:
            return 0
        result = await self._c("outbox").update_many(
            {"_id": {"$in": ids}, "state": "held"},
            {"$set": {"state": "digested", "sent_at": now, "text": "", "html": ""}},
        )
        return result.modified_count

    # -- channels ------------------------------------------------------------------------------
    @_guarded
    async def create_channel(self, channel: Channel) -> None:
        try:
            await self._c("channels").insert_one(_to_doc(channel, "id"))
        except DuplicateKeyError:
            raise Conflict("already exists (channel id)") from None

    @_guarded
    async def get_channel(self, channel_id: str, user_id: str | None = None) -> Channel | None:
        flt: dict[str, Any] = {"_id": channel_id}
        if user_id is not None:
            flt["user_id"] = user_id
        return _from_doc(Channel, await self._c("channels").find_one(flt), "id")

    @_guarded
    async def list_channels(self, user_id: str) -> list[Channel]:
        cursor = self._c("channels").find({"user_id": user_id}).sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        return [c for d in await cursor.to_list(None) if (c := _from_doc(Channel, d, "id"))]

    @_guarded
    async def update_channel(self, channel_id: str, user_id: str, changes: Mapping[str, Any]) -> Channel | None:
        check_channel_changes(changes)
        if not changes:
            return await self.get_channel(channel_id, user_id)
        doc = await self._c("channels").find_one_and_update(
            {"_id": channel_id, "user_id": user_id}, {"$set": _sets(changes)}, return_document=AFTER
        )
        return _from_doc(Channel, doc, "id")

    @_guarded
    async def delete_channel(self, channel_id: str, user_id: str) -> bool:
        result = await self._c("channels").delete_one({"_id": channel_id, "user_id": user_id})
        return result.deleted_count > 0


__all__ = ["DEFAULT_DATABASE", "MongoStore"]
