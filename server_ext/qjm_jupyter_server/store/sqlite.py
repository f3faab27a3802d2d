"""The embedded default store: one SQLite file on local disk, no server to run.

stdlib `sqlite3` on ONE dedicated thread for writes: every write method is one
synchronous function run there, so transactions on the shared connection never
interleave. Reads run on the caller's thread (the event loop) on a second, read-only
connection: in WAL mode a reader never waits for the writer and sees every committed
write, and an indexed read costs tens of microseconds, less than the thread hop
(two loop wake-ups and a future) it replaces; that hop was a visible share of every
request in a profile of `GET jobs`. Every write is `BEGIN IMMEDIATE` (in WAL a deferred
transaction that reads and then writes gets SQLITE_BUSY without the busy handler ever
running: https://www.sqlite.org/rescode.html#busy_snapshot), so several server processes
can share the file. Measured with 4 processes on one WAL file: read-then-write
transactions failed "database is locked" 6,242 times in 8,000 with BEGIN DEFERRED and a
5 s busy_timeout, and never with BEGIN IMMEDIATE. WAL needs every process on one host
(https://www.sqlite.org/wal.html), so the file belongs on local disk, not NFS.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import fields
from typing import Any, TypeVar

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

# Each entry upgrades the schema by one `PRAGMA user_version`; never edit a released
# entry, append a new one (files in the wild are at every earlier version).
MIGRATIONS: list[tuple[str, ...]] = [
    (  # v1
        """CREATE TABLE users (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            is_verified INTEGER NOT NULL DEFAULT 0,
            is_active INTEGER NOT NULL DEFAULT 1,
            is_admin INTEGER NOT NULL DEFAULT 0,
            token_version INTEGER NOT NULL DEFAULT 0,
            ibm_key_cipher TEXT,
            ibm_key_last4 TEXT,
            ibm_key_state TEXT NOT NULL DEFAULT 'none',
            ibm_key_updated_at INTEGER,
            default_instance TEXT,
            notify_default TEXT NOT NULL DEFAULT '[]'
        )""",
        "CREATE INDEX users_created ON users (created_at, id)",
        """CREATE TABLE action_tokens (
            token_hash TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            purpose TEXT NOT NULL,
            expires_at INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX action_tokens_user ON action_tokens (user_id, purpose)",
        """CREATE TABLE throttle (
            key TEXT PRIMARY KEY,
            count INTEGER NOT NULL,
            window_start INTEGER NOT NULL
        )""",
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            ibm_job_id TEXT NOT NULL,
            registered_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            backend TEXT,
            instance TEXT,
            channel TEXT NOT NULL,
            source TEXT NOT NULL,
            created INTEGER,
            notify_status TEXT NOT NULL DEFAULT '[]',
            label TEXT,
            "group" TEXT,
            status TEXT NOT NULL,
            history TEXT NOT NULL DEFAULT '[]',
            notified TEXT NOT NULL DEFAULT '[]',
            watch_state TEXT NOT NULL,
            error_reason TEXT,
            last_poll_at INTEGER,
            last_error TEXT,
            misses INTEGER NOT NULL DEFAULT 0,
            version INTEGER NOT NULL DEFAULT 0,
            UNIQUE (user_id, ibm_job_id)
        )""",
        "CREATE INDEX jobs_user_registered ON jobs (user_id, registered_at, id)",
        "CREATE INDEX jobs_user_updated ON jobs (user_id, updated_at, id)",
        "CREATE INDEX jobs_registered ON jobs (registered_at, id)",
        "CREATE INDEX jobs_updated ON jobs (updated_at, id)",
        "CREATE INDEX jobs_user_instance ON jobs (user_id, instance, watch_state)",
        "CREATE INDEX jobs_retention ON jobs (watch_state, updated_at)",
        """CREATE TABLE poll_units (
            key TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            instance TEXT NOT NULL,
            next_poll_at INTEGER NOT NULL,
            lease_owner TEXT,
            lease_until INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            paused_reason TEXT
        )""",
        "CREATE INDEX poll_units_due ON poll_units (next_poll_at)",
        "CREATE INDEX poll_units_user ON poll_units (user_id)",
        """CREATE TABLE outbox (
            id TEXT PRIMARY KEY,
            dedupe_key TEXT NOT NULL UNIQUE,
            user_id TEXT,
            kind TEXT NOT NULL,
            to_addr TEXT NOT NULL,
            subject TEXT NOT NULL,
            text TEXT NOT NULL,
            html TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            job_id TEXT,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT,
            lease_until INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            sent_at INTEGER
        )""",
        "CREATE INDEX outbox_due ON outbox (state, next_attempt_at)",
        "CREATE INDEX outbox_created ON outbox (created_at, id)",
        "CREATE INDEX outbox_user ON outbox (user_id, created_at, id)",
    ),
    (  # v2: job tombstones for the changes feed, and indexes for housekeeping sweeps
        """CREATE TABLE deleted_jobs (
            job_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            deleted_at INTEGER NOT NULL
        )""",
        "CREATE INDEX deleted_jobs_user ON deleted_jobs (user_id, deleted_at, job_id)",
        "CREATE INDEX deleted_jobs_at ON deleted_jobs (deleted_at, job_id)",
        "CREATE INDEX action_tokens_expiry ON action_tokens (expires_at)",
        "CREATE INDEX throttle_window ON throttle (window_start)",
        "CREATE INDEX outbox_sent ON outbox (state, sent_at)",
    ),
    (  # v3: security sweeps (unsent mail with expired links by kind) and distinct instances
        "CREATE INDEX outbox_kind_created ON outbox (kind, state, created_at)",
        "CREATE INDEX jobs_user_source_instance ON jobs (user_id, source, watch_state, instance)",
        'CREATE INDEX jobs_user_group ON jobs (user_id, "group", status)',
    ),
    (  # v4: notifications people act on: IBM job times and usage, local cancel, stop links, channels, quiet hours
        "ALTER TABLE jobs ADD COLUMN started INTEGER",
        "ALTER TABLE jobs ADD COLUMN finished INTEGER",
        "ALTER TABLE jobs ADD COLUMN usage_seconds REAL",
        "ALTER TABLE jobs ADD COLUMN cancel_requested_at INTEGER",
        "ALTER TABLE users ADD COLUMN mail_stopped_at INTEGER",
        "ALTER TABLE outbox ADD COLUMN unsubscribe_url TEXT",
        "ALTER TABLE outbox ADD COLUMN channel_id TEXT",
        "CREATE INDEX outbox_channel ON outbox (channel_id, created_at, id)",
        """CREATE TABLE channels (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            url_cipher TEXT NOT NULL,
            scheme TEXT NOT NULL,
            host TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            label TEXT,
            notify_status TEXT NOT NULL DEFAULT '[]',
            enabled INTEGER NOT NULL DEFAULT 1
        )""",
        "CREATE INDEX channels_user ON channels (user_id, created_at, id)",
        "ALTER TABLE users ADD COLUMN time_zone TEXT",
        "ALTER TABLE users ADD COLUMN quiet_start TEXT",
        "ALTER TABLE users ADD COLUMN quiet_end TEXT",
        "ALTER TABLE users ADD COLUMN quiet_breakthrough TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE users ADD COLUMN digest_minutes INTEGER NOT NULL DEFAULT 0",
    ),
    (  # v5: external identities (a Jupyter or JupyterHub user name) bound to accounts
        """CREATE TABLE identities (
            identity TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            created_at INTEGER NOT NULL
        )""",
        "CREATE INDEX identities_user ON identities (user_id)",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)

_JSON_FIELDS = frozenset({"notify_default", "notify_status", "history", "notified", "data", "quiet_breakthrough"})
_BOOL_FIELDS = frozenset({"is_verified", "is_active", "is_admin", "enabled"})


def _q(name: str) -> str:
    """Quote a column name (`group` is an SQL keyword)."""
    return f'"{name}"'


def _encode(name: str, value: Any) -> Any:
    if name == "history":
        value = events_to_plain(StatusEvent(**e) if isinstance(e, Mapping) else e for e in value)
    if name in _JSON_FIELDS:
        return json.dumps(value, separators=(",", ":"))
    if name in _BOOL_FIELDS:
        return int(bool(value))
    return value


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in row.keys():
        value = row[name]
        if name in _JSON_FIELDS:
            value = json.loads(value)
        elif name in _BOOL_FIELDS:
            value = bool(value)
        out[name] = value
    if "history" in out:
        out["history"] = events_from_plain(out["history"])
    return out


# Jobs are read column by column in `Job` field order and built positionally: a listing
# decodes up to 1,000 of them, and the generic name-by-name `_decode` of a `sqlite3.Row`
# was most of a listing's store time in a profile.
_JOB_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Job))
_JOB_SELECT = "SELECT " + ", ".join(_q(c) for c in _JOB_COLUMNS) + " FROM jobs"
_JOB_RETURNING = " RETURNING " + ", ".join(_q(c) for c in _JOB_COLUMNS)
_JOB_NOTIFY, _JOB_HISTORY, _JOB_NOTIFIED = (_JOB_COLUMNS.index(n) for n in ("notify_status", "history", "notified"))


def _list(text: str) -> list[Any]:
    return [] if text == "[]" else json.loads(text)  # most `notified`/`history` are empty


def _job(row: Sequence[Any]) -> Job:
    """A Job from a tuple row in `_JOB_COLUMNS` order."""
    values = list(row)
    values[_JOB_NOTIFY] = _list(values[_JOB_NOTIFY])
    values[_JOB_NOTIFIED] = _list(values[_JOB_NOTIFIED])
    values[_JOB_HISTORY] = [StatusEvent(e["status"], int(e["at"]), e.get("reason")) for e in _list(values[_JOB_HISTORY])]
    return Job(*values)


def _jobs(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Job]:
    cur = conn.cursor()
    cur.row_factory = None  # plain tuples
    try:
        return [_job(r) for r in cur.execute(sql, params).fetchall()]
    finally:
        cur.close()


def _job_or_none(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> Job | None:
    found = _jobs(conn, sql, params)
    return found[0] if found else None


def _row_values(obj: Any) -> dict[str, Any]:
    return {f.name: _encode(f.name, getattr(obj, f.name)) for f in fields(obj)}


def _insert_sql(table: str, columns: Sequence[str], tail: str = "") -> str:
    cols = ", ".join(_q(c) for c in columns)
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({cols}) VALUES ({marks}) {tail}"


def _set_clause(changes: Mapping[str, Any]) -> tuple[str, list[Any]]:
    parts = [f"{_q(k)} = ?" for k in changes]
    return ", ".join(parts), [_encode(k, v) for k, v in changes.items()]


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction; `BEGIN IMMEDIATE` takes the write lock up front."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _explain(path: str, exc: sqlite3.Error) -> str:
    text = str(exc)
    low = text.lower()
    if "readonly" in low or "read-only" in low:
        return f"the database file {path} is read-only ({text}); check its permissions and the disk"
    if "disk is full" in low or "database or disk is full" in low:
        return f"the disk holding {path} is full ({text}); nothing was written"
    if "locked" in low or "busy" in low:
        return f"the database {path} stayed locked by another process for more than 5 s ({text})"
    if "unable to open" in low:
        return f"cannot open the database file {path} ({text}); check the directory exists and is writable"
    if "not a database" in low or "malformed" in low:
        return f"{path} is not a usable SQLite database ({text})"
    return f"SQLite error on {path}: {text}"


class SQLiteStore:
    """`Store` over one SQLite file (WAL, `synchronous=NORMAL`, one writer thread)."""

    def __init__(self, path: str, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        self._synchronous = synchronous
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qjm-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()  # the loop's thread, or a test's: one at a time
        self._opened = False
        self._closed = False

    # -- plumbing ----------------------------------------------------------------------
    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreUnavailable(f"the SQLite store for {self.path} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guard, fn, args)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """A read on the reader connection, on this thread (no hop). Before the store is
        open (schema not yet there) and for `:memory:` (a second connection would be
        another database), it goes to the writer thread like a write."""
        if self._closed:
            raise StoreUnavailable(f"the SQLite store for {self.path} is closed")
        if not self._opened or self.path == ":memory:":
            return await self._call(fn, *args)
        with self._reader_lock:
            return self._guard(fn, args, self._reader_connection)

    def _reader_connection(self) -> sqlite3.Connection:
        if self._reader is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA query_only = 1")
            self._reader = conn
        return self._reader

    def _guard(self, fn: Callable[..., T], args: tuple[Any, ...],
               connection: Callable[[], sqlite3.Connection] | None = None) -> T:
        try:
            return fn((connection or self._connection)(), *args)
        except sqlite3.IntegrityError as exc:
            raise Conflict(self._conflict_message(exc)) from exc
        except sqlite3.Error as exc:
            raise StoreUnavailable(_explain(self.path, exc)) from exc
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the database file {self.path}: {exc}") from exc

    @staticmethod
    def _conflict_message(exc: sqlite3.IntegrityError) -> str:
        text = str(exc)
        if "users.email" in text:
            return "this email address is already registered"
        if "UNIQUE" in text:
            return f"already exists ({text.split(':', 1)[-1].strip()})"
        return text

    def _connection(self) -> sqlite3.Connection:
        """Connect and migrate lazily, on the store thread (sqlite3 objects stay there)."""
        if self._conn is not None:
            return self._conn
        if self.path != ":memory:":
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
            if not os.path.exists(self.path):
                # Created 0600 before SQLite touches it: the file holds password hashes
                # and encrypted API keys. SQLite gives -wal/-shm the same mode.
                fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
                os.close(fd)
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {'FULL' if self._synchronous.upper() == 'FULL' else 'NORMAL'}")
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current == SCHEMA_VERSION:
            return
        with _write(conn):
            # Re-read under the write lock: another process may have migrated meanwhile.
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"{self.path} has schema version {current}, newer than this qjm-jupyter "
                    f"understands ({SCHEMA_VERSION}); upgrade qjm-jupyter"
                )
            for version in range(current, SCHEMA_VERSION):
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        await self._call(lambda conn: None)
        self._opened = True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

        def shut() -> None:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, shut)
        finally:
            self._executor.shutdown(wait=False)

    # -- users -------------------------------------------------------------------------------------
    async def create_user(self, user: User) -> None:
        values = _row_values(user)
        values["email"] = user.email.lower()

        await self._call(_insert_row, "users", values)

    async def get_user(self, user_id: str) -> User | None:
        return await self._read(_one, "SELECT * FROM users WHERE id = ?", (user_id,), User)

    async def get_user_by_email(self, email: str) -> User | None:
        # On the store thread like a write, not the reader: the account-mail paths (forgot,
        # verify) look the address up after answering, and an inline lookup made the
        # known-address path measurably slower (tests/server/test_abuse.py), an existence leak.
        return await self._call(_one, "SELECT * FROM users WHERE email = ?", (email.lower(),), User)

    async def update_user(self, user_id: str, changes: Mapping[str, Any]) -> User | None:
        check_user_changes(changes)
        changes = dict(changes)
        if "email" in changes:
            changes["email"] = str(changes["email"]).lower()
        if not changes:
            return await self.get_user(user_id)
        clause, params = _set_clause(changes)

        def run(conn: sqlite3.Connection) -> User | None:
            with _write(conn):
                row = conn.execute(f"UPDATE users SET {clause} WHERE id = ? RETURNING *", [*params, user_id]).fetchone()
            return User(**_decode(row)) if row else None

        return await self._call(run)

    async def bump_token_version(self, user_id: str, now: int) -> User | None:
        def run(conn: sqlite3.Connection) -> User | None:
            with _write(conn):
                row = conn.execute(
                    "UPDATE users SET token_version = token_version + 1, updated_at = ? WHERE id = ? RETURNING *",
                    (now, user_id),
                ).fetchone()
            return User(**_decode(row)) if row else None

        return await self._call(run)

    async def list_users(self, limit: int, offset: int) -> list[User]:
        return await self._call(
            _many, "SELECT * FROM users ORDER BY created_at, id LIMIT ? OFFSET ?", page_bounds(limit, offset), User
        )

    async def count_users(self) -> int:
        return await self._call(_scalar, "SELECT COUNT(*) FROM users", ())

    async def delete_user(self, user_id: str, now: int) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            with _write(conn):
                _tombstone(conn, "user_id = ?", (user_id,), now)
                conn.execute("DELETE FROM jobs WHERE user_id = ?", (user_id,))
                conn.execute("DELETE FROM poll_units WHERE user_id = ?", (user_id,))
                conn.execute("DELETE FROM action_tokens WHERE user_id = ?", (user_id,))
                conn.execute("DELETE FROM outbox WHERE user_id = ?", (user_id,))
                conn.execute("DELETE FROM channels WHERE user_id = ?", (user_id,))
                conn.execute("DELETE FROM identities WHERE user_id = ?", (user_id,))
                return conn.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount > 0

        return await self._call(run)

    # -- external identities -------------------------------------------------------------------
    async def bind_identity(self, identity: str, user_id: str, now: int, *, replace: bool = False) -> None:
        tail = "ON CONFLICT (identity) DO UPDATE SET user_id = excluded.user_id" if replace else ""

        def run(conn: sqlite3.Connection) -> None:
            with _write(conn):
                if not replace:
                    row = conn.execute("SELECT user_id FROM identities WHERE identity = ?", (identity,)).fetchone()
                    if row is not None:
                        if row[0] == user_id:
                            return
                        raise Conflict("this identity is bound to another account")
                conn.execute(
                    f"INSERT INTO identities (identity, user_id, created_at) VALUES (?, ?, ?) {tail}",
                    (identity, user_id, now),
                )

        await self._call(run)

    async def get_user_by_identity(self, identity: str) -> User | None:
        return await self._call(
            _one, "SELECT users.* FROM identities JOIN users ON users.id = identities.user_id WHERE identity = ?",
            (identity,), User,
        )

    async def list_identities(self, user_id: str) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute("SELECT identity FROM identities WHERE user_id = ? ORDER BY identity", (user_id,))
            return [r[0] for r in rows.fetchall()]

        return await self._call(run)

    # -- action tokens -----------------------------------------------------------------------------
    async def put_action_token(self, token: ActionToken) -> None:
        values = _row_values(token)

        await self._call(_insert_row, "action_tokens", values)

    async def consume_action_token(self, token_hash: str, purpose: str, now: int) -> ActionToken | None:
        def run(conn: sqlite3.Connection) -> ActionToken | None:
            with _write(conn):
                row = conn.execute(
                    "DELETE FROM action_tokens WHERE token_hash = ? AND purpose = ? AND expires_at > ? RETURNING *",
                    (token_hash, purpose, now),
                ).fetchone()
            return ActionToken(**_decode(row)) if row else None

        return await self._call(run)

    async def delete_action_tokens(self, user_id: str, purpose: str) -> int:
        return await self._call(
            _exec_count, "DELETE FROM action_tokens WHERE user_id = ? AND purpose = ?", (user_id, purpose)
        )

    async def purge_action_tokens(self, now: int) -> int:
        return await self._call(_exec_count, "DELETE FROM action_tokens WHERE expires_at <= ?", (now,))

    # -- throttle ------------------------------------------------------------------------------------
    async def throttle_hit(self, key: str, now: int, window_ms: int) -> ThrottleState:
        stale = now - window_ms

        def run(conn: sqlite3.Connection) -> ThrottleState:
            with _write(conn):
                # In an UPDATE every expression sees the old row, so both CASEs agree.
                row = conn.execute(
                    """INSERT INTO throttle (key, count, window_start) VALUES (?, 1, ?)
                       ON CONFLICT (key) DO UPDATE SET
                         count = CASE WHEN window_start <= ? THEN 1 ELSE count + 1 END,
                         window_start = CASE WHEN window_start <= ? THEN ? ELSE window_start END
                       RETURNING key, count, window_start""",
                    (key, now, stale, stale, now),
                ).fetchone()
            return ThrottleState(**_decode(row))

        return await self._call(run)

    async def throttle_refund(self, key: str, window_start: int) -> None:
        await self._call(
            _exec_count,
            "UPDATE throttle SET count = count - 1 WHERE key = ? AND window_start = ? AND count > 0",
            (key, window_start),
        )

    async def throttle_get(self, key: str) -> ThrottleState | None:
        return await self._call(_one, "SELECT key, count, window_start FROM throttle WHERE key = ?", (key,), ThrottleState)

    async def throttle_clear(self, key: str) -> None:
        await self._call(_exec_count, "DELETE FROM throttle WHERE key = ?", (key,))

    async def purge_throttles(self, before: int) -> int:
        return await self._call(_exec_count, "DELETE FROM throttle WHERE window_start < ?", (before,))

    # -- jobs ------------------------------------------------------------------------------------------
    async def register_jobs(self, jobs: Sequence[Job]) -> list[tuple[Job, bool]]:
        def run(conn: sqlite3.Connection) -> list[tuple[Job, bool]]:
            out: list[tuple[Job, bool]] = []
            with _write(conn):
                for job in jobs:
                    values = _row_values(job)
                    row = conn.execute(
                        _insert_sql("jobs", list(values), "ON CONFLICT (user_id, ibm_job_id) DO NOTHING RETURNING *"),
                        list(values.values()),
                    ).fetchone()
                    if row is not None:
                        out.append((Job(**_decode(row)), True))
                        continue
                    existing_row = conn.execute(
                        "SELECT * FROM jobs WHERE user_id = ? AND ibm_job_id = ?", (job.user_id, job.ibm_job_id)
                    ).fetchone()
                    existing = Job(**_decode(existing_row))
                    changes = merge_registration(existing, job)
                    if changes:
                        clause, params = _set_clause(changes)
                        existing_row = conn.execute(
                            f"UPDATE jobs SET {clause} WHERE id = ? RETURNING *", [*params, existing.id]
                        ).fetchone()
                        existing = Job(**_decode(existing_row))
                    out.append((existing, False))
            return out

        return await self._call(run)

    async def get_job(self, job_id: str, user_id: str | None = None) -> Job | None:
        if user_id is None:
            return await self._read(_job_or_none, f"{_JOB_SELECT} WHERE id = ?", (job_id,))
        return await self._read(_job_or_none, f"{_JOB_SELECT} WHERE id = ? AND user_id = ?", (job_id, user_id))

    async def get_job_by_ibm_id(self, user_id: str, ibm_job_id: str) -> Job | None:
        return await self._read(
            _job_or_none, f"{_JOB_SELECT} WHERE user_id = ? AND ibm_job_id = ?", (user_id, ibm_job_id)
        )

    async def list_jobs(self, query: JobQuery) -> list[Job]:
        where, params = _job_filter(query)
        if query.updated_after is not None:
            order = "updated_at ASC, id ASC"
        else:
            order = "registered_at DESC, id DESC"
        sql = f"{_JOB_SELECT} {where} ORDER BY {order} LIMIT ? OFFSET ?"
        return await self._read(_jobs, sql, (*params, *page_bounds(query.limit, query.offset)))

    async def count_jobs(self, query: JobQuery, cap: int | None = None) -> int:
        where, params = _job_filter(query)
        if cap is None:
            return await self._read(_scalar, f"SELECT COUNT(*) FROM jobs {where}", tuple(params))
        # The LIMIT inside stops the index walk at `cap` rows.
        sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM jobs {where} LIMIT ?)"
        return await self._read(_scalar, sql, (*params, max(0, cap)))

    async def update_job(self, job_id: str, user_id: str | None, changes: Mapping[str, Any]) -> Job | None:
        check_job_changes(changes)
        if not changes:
            return await self.get_job(job_id, user_id)
        clause, params = _set_clause(changes)
        sql = f"UPDATE jobs SET {clause} WHERE id = ?"
        params.append(job_id)
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)

        def run(conn: sqlite3.Connection) -> Job | None:
            with _write(conn):
                row = conn.execute(sql + " RETURNING *", params).fetchone()
            return Job(**_decode(row)) if row else None

        return await self._call(run)

    async def delete_job(self, job_id: str, user_id: str | None, now: int) -> bool:
        if user_id is None:
            n = await self._call(_delete_jobs, "id = ?", (job_id,), now)
        else:
            n = await self._call(_delete_jobs, "id = ? AND user_id = ?", (job_id, user_id), now)
        return n > 0

    async def delete_jobs_of_user(self, user_id: str, now: int) -> int:
        return await self._call(_delete_jobs, "user_id = ?", (user_id,), now)

    async def list_deleted_jobs(self, user_id: str | None, after: int, limit: int) -> list[tuple[str, int]]:
        if user_id is None:
            sql = "SELECT job_id, deleted_at FROM deleted_jobs WHERE deleted_at > ? ORDER BY deleted_at, job_id LIMIT ?"
            params: tuple[Any, ...] = (after, max(0, limit))
        else:
            sql = (
                "SELECT job_id, deleted_at FROM deleted_jobs WHERE user_id = ? AND deleted_at > ?"
                " ORDER BY deleted_at, job_id LIMIT ?"
            )
            params = (user_id, after, max(0, limit))

        def run(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            return [(str(r[0]), int(r[1])) for r in conn.execute(sql, params).fetchall()]

        return await self._read(run)

    async def purge_deleted_jobs(self, before: int) -> int:
        return await self._call(_exec_count, "DELETE FROM deleted_jobs WHERE deleted_at < ?", (before,))

    async def group_summary(self, user_id: str, group: str, job_id: str) -> GroupSummary:
        # One aggregate over the group's index range: counts come back, rows do not.
        # `history` and `notify_status` are JSON text, matched by their exact encoding.
        ran = " OR ".join(f"history LIKE '%\"status\":\"{s}\"%'" for s in RAN_STATUSES)
        sql = f"""SELECT COUNT(*),
                   SUM(status = 'DONE'), SUM(status = 'ERROR'), SUM(status = 'CANCELLED'),
                   MAX(id != ? AND (status IN ('RUNNING', 'DONE') OR {ran})),
                   MAX(notify_status LIKE '%"RUNNING"%'),
                   MAX(notify_status LIKE '%"DONE"%' OR notify_status LIKE '%"ERROR"%' OR notify_status LIKE '%"CANCELLED"%')
                  FROM jobs WHERE user_id = ? AND "group" = ?"""

        def run(conn: sqlite3.Connection) -> GroupSummary:
            total, done, error, cancelled, others_ran, running, final = conn.execute(sql, (job_id, user_id, group)).fetchone()
            counts = {"DONE": done or 0, "ERROR": error or 0, "CANCELLED": cancelled or 0}
            return GroupSummary(
                total=int(total),
                final_counts={k: int(v) for k, v in counts.items() if v},
                others_ran=bool(others_ran),
                wants_running=bool(running),
                wants_final=bool(final),
            )

        return await self._call(run)

    async def list_user_instances(self, user_id: str) -> list[str]:
        sql = (
            "SELECT DISTINCT instance FROM jobs WHERE user_id = ? AND source = 'ibm' "
            "AND watch_state IN ('active', 'paused') AND instance IS NOT NULL"
        )

        def run(conn: sqlite3.Connection) -> list[str]:
            return [str(r[0]) for r in conn.execute(sql, (user_id,))]

        return await self._call(run)

    async def list_active_jobs(self, user_id: str, instance: str) -> list[Job]:
        return await self._read(
            _jobs,
            f"{_JOB_SELECT} WHERE user_id = ? AND instance = ? AND watch_state = 'active' AND source = 'ibm' "
            "ORDER BY registered_at, id",
            (user_id, instance),
        )

    async def list_active_job_refs(self, user_id: str, instance: str) -> list[JobRef]:
        sql = (
            "SELECT id, ibm_job_id, status, version, misses, last_error FROM jobs "
            "WHERE user_id = ? AND instance = ? AND watch_state = 'active' AND source = 'ibm' "
            "ORDER BY registered_at, id"
        )

        def run(conn: sqlite3.Connection) -> list[JobRef]:
            return [JobRef(r[0], r[1], r[2], int(r[3]), int(r[4]), r[5]) for r in conn.execute(sql, (user_id, instance))]

        return await self._read(run)

    async def cas_job(
        self,
        job_id: str,
        expected_version: int,
        changes: Mapping[str, Any],
        append_history: Sequence[StatusEvent] = (),
    ) -> Job | None:
        check_job_changes(changes)

        def run(conn: sqlite3.Connection) -> Job | None:
            with _write(conn):
                row = conn.execute(
                    "SELECT history FROM jobs WHERE id = ? AND version = ?", (job_id, expected_version)
                ).fetchone()
                if row is None:
                    return None
                sets = dict(changes)
                if append_history or "history" in sets:
                    base = sets.get("history", events_from_plain(json.loads(row["history"])))
                    sets["history"] = capped_history(base, append_history)
                sets["version"] = expected_version + 1
                clause, params = _set_clause(sets)
                new = conn.execute(
                    f"UPDATE jobs SET {clause} WHERE id = ? AND version = ? RETURNING *",
                    [*params, job_id, expected_version],
                ).fetchone()
            return Job(**_decode(new)) if new else None

        return await self._call(run)

    async def purge_jobs(self, finished_before: int, now: int) -> int:
        return await self._call(
            _delete_jobs,
            "watch_state IN ('final', 'lost') AND updated_at < ?",
            (finished_before,),
            now,
        )

    # -- poll units --------------------------------------------------------------------------------------
    async def touch_poll_unit(self, user_id: str, instance: str, now: int) -> None:
        key = poll_unit_key(user_id, instance)
        await self._call(
            _exec_count,
            """INSERT INTO poll_units (key, user_id, instance, next_poll_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (key) DO UPDATE SET next_poll_at = MIN(next_poll_at, excluded.next_poll_at)""",
            (key, user_id, instance, now),
        )

    async def claim_poll_units(self, owner: str, now: int, lease_ms: int, limit: int) -> list[PollUnit]:
        def run(conn: sqlite3.Connection) -> list[PollUnit]:
            with _write(conn):
                rows = conn.execute(
                    """UPDATE poll_units SET lease_owner = ?, lease_until = ?
                       WHERE key IN (SELECT key FROM poll_units
                                     WHERE next_poll_at <= ? AND lease_until < ? AND paused_reason IS NULL
                                     ORDER BY next_poll_at, key LIMIT ?)
                       RETURNING *""",
                    (owner, now + lease_ms, now, now, limit),
                ).fetchall()
            units = [PollUnit(**_decode(r)) for r in rows]
            units.sort(key=lambda u: (u.next_poll_at, u.key))  # RETURNING has no order
            return units

        return await self._call(run)

    async def release_poll_unit(self, key: str, owner: str, changes: Mapping[str, Any]) -> bool:
        check_unit_changes(changes)
        sets = {**changes, "lease_owner": None, "lease_until": 0}
        clause, params = _set_clause(sets)
        return (
            await self._call(
                _exec_count, f"UPDATE poll_units SET {clause} WHERE key = ? AND lease_owner = ?", (*params, key, owner)
            )
            > 0
        )

    async def release_poll_units(self, owner: str, releases: Sequence[tuple[str, Mapping[str, Any]]]) -> int:
        statements = []
        for key, changes in releases:
            check_unit_changes(changes)
            clause, params = _set_clause({**changes, "lease_owner": None, "lease_until": 0})
            statements.append((f"UPDATE poll_units SET {clause} WHERE key = ? AND lease_owner = ?", (*params, key, owner)))

        def run(conn: sqlite3.Connection) -> int:
            with _write(conn):
                return sum(conn.execute(sql, params).rowcount for sql, params in statements)

        return await self._call(run) if statements else 0

    async def wake_user_units(self, user_id: str, now: int) -> int:
        return await self._call(
            _exec_count,
            "UPDATE poll_units SET paused_reason = NULL, next_poll_at = ? WHERE user_id = ?",
            (now, user_id),
        )

    async def delete_poll_unit(self, key: str, owner: str) -> bool:
        n = await self._call(_exec_count, "DELETE FROM poll_units WHERE key = ? AND lease_owner = ?", (key, owner))
        return n > 0

    async def get_poll_unit(self, key: str) -> PollUnit | None:
        return await self._call(_one, "SELECT * FROM poll_units WHERE key = ?", (key,), PollUnit)

    # -- outbox --------------------------------------------------------------------------------------------
    async def enqueue(self, notifications: Sequence[Notification]) -> int:
        def run(conn: sqlite3.Connection) -> int:
            inserted = 0
            with _write(conn):
                for n in notifications:
                    values = _row_values(n)
                    cur = conn.execute(
                        _insert_sql("outbox", list(values), "ON CONFLICT (dedupe_key) DO NOTHING"),
                        list(values.values()),
                    )
                    inserted += cur.rowcount
            return inserted

        return await self._call(run)

    async def claim_outbox(
        self, owner: str, now: int, lease_ms: int, limit: int, channels: bool = False
    ) -> list[Notification]:
        medium = "channel_id IS NOT NULL" if channels else "channel_id IS NULL"

        def run(conn: sqlite3.Connection) -> list[Notification]:
            if limit <= 0:
                return []
            with _write(conn):
                due = conn.execute(
                    f"""SELECT id, user_id, kind, created_at, to_addr FROM outbox
                       WHERE state = 'pending' AND next_attempt_at <= ? AND lease_until < ? AND {medium}""",
                    (now, now),
                ).fetchall()
                chosen = claim_order(tuple(r) for r in due)[:limit]
                if not chosen:
                    return []
                marks = ", ".join("?" for _ in chosen)
                rows = conn.execute(
                    f"""UPDATE outbox SET lease_owner = ?, lease_until = ?, attempts = attempts + 1
                        WHERE id IN ({marks}) RETURNING *""",
                    (owner, now + lease_ms, *chosen),
                ).fetchall()
            place = {row_id: i for i, row_id in enumerate(chosen)}
            items = [Notification(**_decode(r)) for r in rows]
            items.sort(key=lambda n: place[n.id])  # RETURNING has no order
            return items

        return await self._call(run)

    async def mark_sent(self, notification_id: str, owner: str, now: int) -> bool:
        n = await self._call(
            _exec_count,
            """UPDATE outbox SET state = 'sent', sent_at = ?, lease_owner = NULL, lease_until = 0,
                                 text = '', html = '', last_error = NULL
               WHERE id = ? AND lease_owner = ? AND state = 'pending'""",
            (now, notification_id, owner),
        )
        return n > 0

    async def mark_retry(self, notification_id: str, owner: str, next_attempt_at: int, error: str) -> bool:
        n = await self._call(
            _exec_count,
            """UPDATE outbox SET next_attempt_at = ?, last_error = ?, lease_owner = NULL, lease_until = 0
               WHERE id = ? AND lease_owner = ? AND state = 'pending'""",
            (next_attempt_at, error, notification_id, owner),
        )
        return n > 0

    async def mark_failed(self, notification_id: str, owner: str, error: str, now: int) -> bool:
        n = await self._call(
            _exec_count,
            """UPDATE outbox SET state = 'failed', last_error = ?, lease_owner = NULL, lease_until = 0
               WHERE id = ? AND lease_owner = ? AND state = 'pending'""",
            (error, notification_id, owner),
        )
        return n > 0

    async def list_notifications(
        self, user_id: str | None, limit: int, offset: int, channel_id: str | None = None
    ) -> list[Notification]:
        where, params = [], []
        if user_id is not None:
            where.append("user_id = ?")
            params.append(user_id)
        if channel_id is not None:
            where.append("channel_id = ?")
            params.append(channel_id)
        sql = (
            "SELECT * FROM outbox" + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        )
        return await self._call(_many, sql, (*params, *page_bounds(limit, offset)), Notification)

    async def purge_outbox(self, sent_before: int) -> int:
        return await self._call(
            _exec_count, "DELETE FROM outbox WHERE state = 'sent' AND sent_at < ?", (sent_before,)
        )

    async def purge_outbox_links(self, kind: str, created_before: int) -> int:
        return await self._call(
            _exec_count,
            "DELETE FROM outbox WHERE kind = ? AND state IN ('pending', 'failed') AND created_at < ?",
            (kind, created_before),
        )

    async def count_outbox(
        self, state: str | None = None, user_id: str | None = None, channel_id: str | None = None
    ) -> int:
        where, params = [], []
        if channel_id is not None:
            where.append("channel_id = ?")
            params.append(channel_id)
        if state is not None:
            where.append("state = ?")
            params.append(state)
        if user_id is not None:
            where.append("user_id = ?")
            params.append(user_id)
        sql = "SELECT COUNT(*) FROM outbox" + (" WHERE " + " AND ".join(where) if where else "")
        return await self._call(_scalar, sql, tuple(params))


    async def list_held(self, now: int, limit: int) -> list[Notification]:
        return await self._call(
            _many,
            "SELECT * FROM outbox WHERE state = 'held' AND next_attempt_at <= ? ORDER BY next_attempt_at, created_at, id LIMIT ?",
            (now, max(0, limit)),
            Notification,
        )

    async def mark_digested(self, notification_ids: Sequence[str], now: int) -> int:
        ids = list(notification_ids)
        if not ids:
            return 0
        marks = ", ".join("?" for _ in ids)
        return await self._call(
            _exec_count,
            f"UPDATE outbox SET state = 'digested', sent_at = ?, text = '', html = '' WHERE state = 'held' AND id IN ({marks})",
            (now, *ids),
        )

    # -- channels ------------------------------------------------------------------------------------
    async def create_channel(self, channel: Channel) -> None:
        values = _row_values(channel)

        await self._call(_insert_row, "channels", values)

    async def get_channel(self, channel_id: str, user_id: str | None = None) -> Channel | None:
        if user_id is None:
            return await self._call(_one, "SELECT * FROM channels WHERE id = ?", (channel_id,), Channel)
        return await self._call(_one, "SELECT * FROM channels WHERE id = ? AND user_id = ?", (channel_id, user_id), Channel)

    async def list_channels(self, user_id: str) -> list[Channel]:
        return await self._call(
            _many, "SELECT * FROM channels WHERE user_id = ? ORDER BY created_at, id", (user_id,), Channel
        )

    async def update_channel(self, channel_id: str, user_id: str, changes: Mapping[str, Any]) -> Channel | None:
        check_channel_changes(changes)
        if not changes:
            return await self.get_channel(channel_id, user_id)
        clause, params = _set_clause(changes)

        def run(conn: sqlite3.Connection) -> Channel | None:
            with _write(conn):
                row = conn.execute(
                    f"UPDATE channels SET {clause} WHERE id = ? AND user_id = ? RETURNING *", (*params, channel_id, user_id)
                ).fetchone()
            return Channel(**_decode(row)) if row is not None else None

        return await self._call(run)

    async def delete_channel(self, channel_id: str, user_id: str) -> bool:
        n = await self._call(_exec_count, "DELETE FROM channels WHERE id = ? AND user_id = ?", (channel_id, user_id))
        return n > 0


# -- small synchronous helpers (run on the store thread) ---------------------------------------------------
def _one(conn: sqlite3.Connection, sql: str, params: Sequence[Any], cls: Callable[..., T]) -> T | None:
    row = conn.execute(sql, params).fetchone()
    return cls(**_decode(row)) if row else None


def _many(conn: sqlite3.Connection, sql: str, params: Sequence[Any], cls: Callable[..., T]) -> list[T]:
    return [cls(**_decode(r)) for r in conn.execute(sql, params).fetchall()]


def _scalar(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> int:
    return int(conn.execute(sql, params).fetchone()[0])


def _insert_row(conn: sqlite3.Connection, table: str, values: Mapping[str, Any]) -> None:
    with _write(conn):
        conn.execute(_insert_sql(table, list(values)), list(values.values()))


def _exec_count(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> int:
    with _write(conn):
        return conn.execute(sql, params).rowcount


def _tombstone(conn: sqlite3.Connection, where: str, params: Sequence[Any], at: int) -> None:
    """Record the jobs about to be deleted (same transaction), for the changes feed."""
    conn.execute(
        f"""INSERT INTO deleted_jobs (job_id, user_id, deleted_at)
            SELECT id, user_id, ? FROM jobs WHERE {where}
            ON CONFLICT (job_id) DO UPDATE SET deleted_at = excluded.deleted_at""",
        (at, *params),
    )


def _delete_jobs(conn: sqlite3.Connection, where: str, params: Sequence[Any], at: int) -> int:
    with _write(conn):
        _tombstone(conn, where, params, at)
        return conn.execute(f"DELETE FROM jobs WHERE {where}", params).rowcount


def _job_filter(query: JobQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.user_id is not None:
        clauses.append("user_id = ?")
        params.append(query.user_id)
    if query.statuses:
        clauses.append(f"status IN ({', '.join('?' for _ in query.statuses)})")
        params.extend(query.statuses)
    if query.active is True:
        clauses.append("watch_state IN ('active', 'paused')")
    elif query.active is False:
        clauses.append("watch_state IN ('final', 'lost')")
    if query.label is not None:
        clauses.append("label = ?")
        params.append(query.label)
    if query.group is not None:
        clauses.append('"group" = ?')
        params.append(query.group)
    if query.updated_after is not None:
        clauses.append("updated_at > ?")
        params.append(query.updated_after)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteStore"]
