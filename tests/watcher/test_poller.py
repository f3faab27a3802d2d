"""The poller against the fake IBM API, with a real store (SQLite file; MongoDB wire server).

Cycles are driven by hand (`run_cycle`) on a manual clock, so nothing here sleeps or
times anything; the fake IBM API runs over real HTTP on 127.0.0.1 and is the only fake.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from qjm_jupyter_server.clock import ManualClock
from qjm_jupyter_server.domain import ActionToken, Channel, Job, Notification, User, new_id
from qjm_jupyter_server.notify.channel_sender import ChannelSender
from qjm_jupyter_server.notify.messages import MessageFactory
from qjm_jupyter_server.secrets import KeyRing
from qjm_jupyter_server.settings import Settings
from qjm_jupyter_server.store import Store, open_store
from qjm_jupyter_server.watcher.ibm import IBMClient
from qjm_jupyter_server.watcher.poller import CycleStats, Poller
from tests.fixtures.receiver import Receiver
from tests.fixtures.server import JWT_SECRET, fernet_key

INTERVAL = 0.5  # seconds; the manual clock moves, nothing waits for it


def _mongo_store_available() -> bool:
    try:
        from qjm_jupyter_server.store.mongo import MongoStore  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def store(request: pytest.FixtureRequest, tmp_path: Path, jp_asyncio_loop: asyncio.AbstractEventLoop) -> Iterator[Store]:
    """pytest-jupyter has no async fixtures: open and close on its loop."""
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'qjm.sqlite3'}")
    else:
        if not _mongo_store_available():
            pytest.skip("store/mongo.py has not landed yet")
        from qjm_jupyter_server.store.mongo import MongoStore

        s = MongoStore(request.getfixturevalue("mongo_url"), database=request.getfixturevalue("mongo_database"))
    jp_asyncio_loop.run_until_complete(s.open())
    try:
        yield s
    finally:
        jp_asyncio_loop.run_until_complete(s.close())


@dataclass
class World:
    """One server's watcher, wired by hand: real store, key ring, messages, IBM client."""

    store: Store
    fake: Any
    keyring: KeyRing
    clock: ManualClock
    settings: Settings
    messages: MessageFactory
    ibm: IBMClient
    poller: Poller

    async def user(self, key: str | None = None, *, verified: bool = True, email: str | None = None) -> User:
        uid = new_id("u_")
        now = self.clock.now_ms()
        key = key if key is not None else self.fake.key()
        user = User(
            id=uid,
            email=email or f"{uid}@example.org",
            password_hash="x",
            created_at=now,
            updated_at=now,
            is_verified=verified,
            ibm_key_cipher=self.keyring.encrypt(uid, key),
            ibm_key_last4=key[-4:],
            ibm_key_state="ok",
            ibm_key_updated_at=now,
            default_instance=self.fake.default_crn,
        )
        await self.store.create_user(user)
        return user

    async def watch(self, user: User, ibm_job_id: str, notify: list[str] | None = None, *,
                    instance: str | None = None, group: str | None = None) -> Job:
        now = self.clock.now_ms()
        job = Job(
            id=new_id("j_"), user_id=user.id, ibm_job_id=ibm_job_id, registered_at=now, updated_at=now,
            instance=instance or self.fake.default_crn, group=group,
            notify_status=list(notify or ["DONE", "ERROR", "CANCELLED"]),
        )
        [(stored, _)] = await self.store.register_jobs([job])
        await self.store.touch_poll_unit(user.id, stored.instance or "", now)
        return stored

    async def cycle(self, advance: float = INTERVAL * 1.2) -> CycleStats:
        self.clock.advance(int(advance * 1000))
        return await self.poller.run_cycle()

    async def job(self, job: Job) -> Job:
        got = await self.store.get_job(job.id)
        assert got is not None
        return got

    async def mail(self, kind: str | None = None) -> list[Notification]:
        rows = await self.store.list_notifications(None, 1000, 0)
        return [n for n in rows if kind is None or n.kind == kind]

    def job_calls(self) -> tuple[int, int]:
        """(listings, single-job GETs) the fake has answered so far (metrics reads, made for a
        job that starts or ends, are counted by `metrics_calls`)."""
        calls = [c for c in self.fake.calls if c.path.startswith("/api/v1/jobs") and c.method == "GET" and not c.path.endswith("/metrics")]
        listings = sum(1 for c in calls if c.path.rstrip("/") == "/api/v1/jobs")
        return listings, len(calls) - listings


@pytest.fixture
def world(store: Store, fake_ibm: Any, tmp_path: Path, jp_asyncio_loop: asyncio.AbstractEventLoop) -> Iterator[World]:
    settings = Settings(
        public_url="http://qjm.test/",
        poll_interval=INTERVAL,
        ibm_iam_url=fake_ibm.base,
        ibm_api_url=fake_ibm.api_url,
        ibm_connect_timeout=2.0,
        ibm_read_timeout=1.0,
        lease_seconds=30.0,
    )
    keyring = KeyRing.load_or_create(tmp_path / "keys", JWT_SECRET, fernet_key())
    clock = ManualClock(start_ms=1_800_000_000_000)
    messages = MessageFactory(settings)
    ibm = IBMClient(settings)
    poller = Poller(store, keyring, messages, ibm, settings, clock, owner=f"test-{secrets.token_hex(3)}")
    try:
        yield World(store, fake_ibm, keyring, clock, settings, messages, ibm, poller)
    finally:
        jp_asyncio_loop.run_until_complete(poller.stop())
        jp_asyncio_loop.run_until_complete(ibm.aclose())


# -- transitions ---------------------------------------------------------------------------------
async def test_one_listing_per_unit_and_one_get_per_job_that_left(world: World) -> None:
    user = await world.user()
    for n in range(3):
        world.fake.add_job(f"job-{n}", "Queued" if n < 2 else "Running")
    jobs = [await world.watch(user, f"job-{n}") for n in range(3)]

    stats = await world.cycle()
    assert (stats.units, stats.listings, stats.gets) == (1, 1, 0)
    assert world.job_calls() == (1, 0)
    assert [(await world.job(j)).status for j in jobs] == ["QUEUED", "QUEUED", "RUNNING"]
    assert await world.mail() == []

    world.fake.set_status("job-0", "Completed")
    world.fake.set_status("job-2", "Failed", reason="boom")
    stats = await world.cycle()
    assert (stats.listings, stats.gets, stats.changes) == (1, 2, 2)
    assert world.job_calls() == (2, 2)
    done, queued, failed = [await world.job(j) for j in jobs]
    assert (done.status, done.watch_state) == ("DONE", "final")
    assert queued.status == "QUEUED" and queued.watch_state == "active"
    assert (failed.status, failed.error_reason) == ("ERROR", "boom")
    mails = await world.mail("job_status")
    assert sorted(m.dedupe_key for m in mails) == sorted([f"job:{done.id}:DONE", f"job:{failed.id}:ERROR"])

    # Final jobs are no longer asked about; an unchanged cycle sends nothing more.
    stats = await world.cycle()
    assert (stats.listings, stats.gets, stats.changes) == (1, 0, 0)
    assert len(await world.mail()) == 2


async def test_ibm_times_usage_and_backend_reach_the_job_and_its_mail(world: World) -> None:
    """A job registered by bare id: IBM's backend, its metrics timestamps and usage are stored
    with the change and shown in the mail; one metrics read per start or end, none otherwise."""
    user = await world.user()
    created = world.clock.now_ms() - 600_000
    world.fake.add_job("timed", "Queued", backend="ibm_kingston", created=created)
    job = await world.watch(user, "timed", ["RUNNING", "DONE"])
    await world.cycle()
    world.fake.set_status("timed", "Running", at=created + 200_000)
    await world.cycle()
    await world.cycle()  # unchanged: no metrics read
    world.fake.set_status("timed", "Completed", at=created + 260_000, usage_seconds=21.5)
    await world.cycle()
    assert world.fake.count_calls("/api/v1/jobs/timed/metrics") == 2
    after = await world.job(job)
    assert (after.backend, after.created, after.started, after.finished, after.usage_seconds) == (
        "ibm_kingston", created, created + 200_000, created + 260_000, 21.5)
    running, done = sorted(await world.mail("job_status"), key=lambda n: n.created_at)
    assert "Queued:   3 min 20 s  " not in running.text and "Queued:   3 min 20 s" in running.text
    assert "Ran:      1 min 00 s  (IBM Quantum's timestamps)" in done.text
    assert "Usage:    21.5 s of quantum time" in done.text and "ibm_kingston" in done.subject


async def test_skipped_status_arrives_in_the_same_message(world: World) -> None:
    user = await world.user()
    world.fake.add_job("skip", "Queued")
    job = await world.watch(user, "skip", ["RUNNING", "DONE"])
    await world.cycle()
    world.fake.set_status("skip", "Completed")  # RUNNING happened between two polls
    await world.cycle()
    [mail] = await world.mail("job_status")
    assert mail.dedupe_key == f"job:{job.id}:RUNNING+DONE"
    assert "DONE" in mail.subject
    after = await world.job(job)
    assert after.notified == ["RUNNING", "DONE"]
    assert [e.status for e in after.history] == ["QUEUED", "DONE"]


async def test_calls_scale_with_units_not_jobs(world: World) -> None:
    other = world.fake.crn(1)
    a, b = await world.user(), await world.user()
    for n in range(5):
        world.fake.add_job(f"a{n}", "Running")
        world.fake.add_job(f"b{n}", "Queued", instance=other)
        await world.watch(a, f"a{n}")
        await world.watch(b, f"b{n}", instance=other)
    stats = await world.cycle()
    assert (stats.units, stats.listings, stats.gets) == (2, 2, 0)


async def test_unverified_user_gets_no_job_mail(world: World) -> None:
    user = await world.user(verified=False)
    world.fake.add_job("quiet", "Running")
    job = await world.watch(user, "quiet")
    await world.cycle()
    world.fake.set_status("quiet", "Completed")
    await world.cycle()
    assert (await world.job(job)).status == "DONE"
    assert await world.mail() == []


async def test_group_milestones(world: World) -> None:
    user = await world.user()
    for n in range(2):
        world.fake.add_job(f"g{n}", "Queued")
    jobs = [await world.watch(user, f"g{n}", ["RUNNING", "DONE", "ERROR"], group="sweep") for n in range(2)]
    await world.cycle()
    world.fake.set_status("g0", "Running")
    await world.cycle()
    assert [m.dedupe_key for m in await world.mail("group")] == [f"group:{user.id}:sweep:first_running"]
    world.fake.set_status("g1", "Running")
    world.fake.set_status("g0", "Completed")
    await world.cycle()
    assert len(await world.mail("group")) == 1  # the second job running is no milestone
    world.fake.set_status("g1", "Failed")
    await world.cycle()
    groups = await world.mail("group")
    assert len(groups) == 2
    final = next(m for m in groups if m.dedupe_key.endswith("all_final"))
    assert "1 DONE" in final.subject and "1 ERROR" in final.subject
    # per-job mail too: g0 RUNNING, g1 RUNNING, g0 DONE, g1 ERROR
    assert len(await world.mail("job_status")) == 4
    assert [(await world.job(j)).watch_state for j in jobs] == ["final", "final"]


async def test_group_milestones_reach_each_channel_once_even_in_quiet_hours(world: World, receiver: Receiver) -> None:
    """Group milestones go to each of the user's channels that hears of the statuses behind
    them (RUNNING for the first job running, a final status for all final), as single
    messages through the outbox: not held by quiet hours or a digest, once per channel
    even when two pollers share the store and the group step runs again."""
    from qjm_jupyter_server.watcher.transitions import apply_observation

    user = await world.user()
    user = dataclasses.replace(user, quiet_start="00:00", quiet_end="23:59", digest_minutes=60)  # everything is held
    await world.store.update_user(user.id, {"quiet_start": "00:00", "quiet_end": "23:59", "digest_minutes": 60})
    now = world.clock.now_ms()

    async def channel(cid: str, url: str, statuses: list[str], enabled: bool = True) -> None:
        await world.store.create_channel(Channel(
            id=cid, user_id=user.id, url_cipher=world.keyring.encrypt(user.id, url), scheme=url.split(":")[0],
            host="127.0.0.1", created_at=now, updated_at=now, notify_status=statuses, enabled=enabled))

    await channel("c_chat", f"json://{receiver.base}/chat", ["RUNNING", "DONE", "ERROR"])
    await channel("c_phone", f"json://{receiver.base}/phone", ["DONE"])  # hears of the end only
    await channel("c_off", f"json://{receiver.base}/off", ["RUNNING", "DONE"], enabled=False)
    for n in range(3):
        world.fake.add_job(f"gc{n}", "Queued")
    jobs = [await world.watch(user, f"gc{n}", ["RUNNING", "DONE", "ERROR"], group="sweep") for n in range(3)]
    second = Poller(world.store, world.keyring, world.messages, world.ibm, world.settings, world.clock, owner="test-second")
    sender = ChannelSender(world.store, world.keyring,
                           Settings(channel_allowed_hosts=("127.0.0.1",), channel_timeout=5.0), world.clock, "w-ch")

    async def both_pollers() -> None:
        world.clock.advance(int(INTERVAL * 1.2 * 1000))
        await asyncio.gather(world.poller.run_cycle(), second.run_cycle())
        while await sender.drain_once():
            pass

    def group_titles(path: str) -> list[str]:
        return [b["title"] for b in receiver.bodies(path) if "group sweep" in b["title"]]

    await both_pollers()
    world.fake.set_status("gc0", "Running")
    await both_pollers()
    assert group_titles("/chat") == ["[qjm] group sweep: first job running"]
    assert group_titles("/phone") == []  # it did not ask for RUNNING
    world.fake.set_status("gc1", "Running")
    world.fake.set_status("gc0", "Completed")
    await both_pollers()
    # The last two jobs end at once, each applied by its own "process" (message factory).
    runs = [await world.job(j) for j in jobs[1:]]
    other = MessageFactory(world.settings)
    await asyncio.gather(
        apply_observation(world.store, world.messages, user, runs[0], "ERROR", "boom", world.clock.now_ms()),
        apply_observation(world.store, other, user, runs[1], "DONE", None, world.clock.now_ms()),
    )
    await both_pollers()
    await both_pollers()  # cycles that find nothing new add nothing
    final = "[qjm] group sweep: all 3 jobs finished (2 DONE, 1 ERROR)"
    assert group_titles("/chat") == ["[qjm] group sweep: first job running", final]
    assert group_titles("/phone") == [final]
    assert receiver.bodies("/off") == []
    [body] = [b for b in receiver.bodies("/phone") if b["title"] == final]
    assert "DONE: 2" in body["message"] and "ERROR: 1" in body["message"] and "gc2" in body["message"]

    log = {c: await world.store.list_notifications(user.id, 100, 0, channel_id=c) for c in ("c_chat", "c_phone")}
    assert sorted((n.kind, n.state) for n in log["c_phone"] if n.kind == "group") == [("group", "sent")]
    assert sorted((n.kind, n.state) for n in log["c_chat"] if n.kind == "group") == [("group", "sent")] * 2
    # The emails: per-job mail is held (quiet hours, digest); the milestones are not.
    mails = [n for n in await world.mail() if n.channel_id is None]
    assert sorted(n.state for n in mails if n.kind == "group") == ["pending", "pending"]
    assert {n.state for n in mails if n.kind == "job_status"} == {"held"}


async def test_a_status_change_in_a_big_group_reads_a_bounded_number_of_jobs(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Judging a group milestone must not read the whole group on every status change,
    and the milestone email lists a bounded number of jobs (counts cover the rest)."""
    from qjm_jupyter_server.watcher.transitions import apply_observation

    size = 150
    user = await world.user()
    now = world.clock.now_ms()
    jobs = [
        Job(id=new_id("j_"), user_id=user.id, ibm_job_id=f"big{n}", registered_at=now, updated_at=now,
            instance=world.fake.default_crn, group="big", notify_status=["RUNNING", "DONE"])
        for n in range(size)
    ]
    await world.store.register_jobs(jobs)
    rows_read: list[int] = []
    list_jobs = world.store.list_jobs

    async def counting_list_jobs(query: Any) -> Any:
        found = await list_jobs(query)
        rows_read[-1] += len(found)
        return found

    monkeypatch.setattr(world.store, "list_jobs", counting_list_jobs)
    for status in ("RUNNING", "DONE"):
        for job in jobs:
            stored = await world.job(job)
            rows_read.append(0)
            await apply_observation(world.store, world.messages, user, stored, status, None, world.clock.now_ms())
    print(f"group of {size}: rows read per status change: max {max(rows_read)}, total {sum(rows_read)}")
    assert max(rows_read) <= 20, max(rows_read)
    groups = {m.dedupe_key.rsplit(":", 1)[1]: m for m in await world.mail("group")}
    assert set(groups) == {"first_running", "all_final"}
    final = groups["all_final"]
    assert f"all {size} jobs finished ({size} DONE)" in final.subject
    assert f"{size - 20} more" in final.text
    assert len(final.text) + len(final.html) < 40_000, len(final.text) + len(final.html)


# -- errors --------------------------------------------------------------------------------------
async def _unit(world: World, user: User) -> Any:
    unit = await world.store.get_poll_unit(f"{user.id}|{world.fake.default_crn}")
    assert unit is not None
    return unit


async def test_rate_limited_backs_off_and_keeps_jobs(world: World) -> None:
    user = await world.user()
    world.fake.add_job("rl", "Running")
    job = await world.watch(user, "rl", ["DONE"])
    await world.cycle()
    before = await world.job(job)
    world.fake.set_status("rl", "Completed")
    world.fake.fail_next = [(429, {"Retry-After": "30"}, {"errors": [{"message": "Too many requests", "code": "429"}]})]
    stats = await world.cycle()
    assert stats.errors == {"rate_limited": 1}
    unit = await _unit(world, user)
    assert unit.failures == 1 and unit.paused_reason is None
    assert unit.next_poll_at >= world.clock.now_ms() + 30_000  # Retry-After honoured
    assert (await world.job(job)).version == before.version  # untouched
    # Not due before Retry-After has passed ...
    assert (await world.cycle(advance=10)).units == 0
    # ... then polled again and the change is picked up; the failure count resets.
    stats = await world.cycle(advance=25)
    assert stats.units == 1 and stats.changes == 1
    assert (await _unit(world, user)).failures == 0
    assert len(await world.mail("job_status")) == 1


async def test_retry_after_is_capped(world: World) -> None:
    user = await world.user()
    world.fake.add_job("cap", "Running")
    await world.watch(user, "cap")
    world.fake.fail_next = [(429, {"Retry-After": "86400"}, {"errors": [{"message": "slow down", "code": "429"}]})]
    await world.cycle()
    unit = await _unit(world, user)
    assert unit.next_poll_at <= world.clock.now_ms() + 300_000


async def test_transient_errors_grow_the_backoff_and_keep_jobs(world: World) -> None:
    user = await world.user()
    world.fake.add_job("t", "Queued")
    job = await world.watch(user, "t")
    await world.cycle()
    before = await world.job(job)
    delays = []
    for _ in range(3):
        world.fake.fail_next = [(502, {}, {"errors": [{"message": "Bad gateway", "code": "502"}]})]
        stats = await world.cycle(advance=1000)  # far past any backoff so far
        assert stats.errors == {"transient": 1}
        unit = await _unit(world, user)
        delays.append(unit.next_poll_at - world.clock.now_ms())
    assert unit.failures == 3
    assert delays[0] < delays[1] < delays[2]
    after = await world.job(job)
    assert (after.status, after.version, after.watch_state) == (before.status, before.version, "active")
    stats = await world.cycle(advance=1000)
    assert stats.errors == {} and (await _unit(world, user)).failures == 0


async def test_hanging_server_is_a_transient_error(world: World) -> None:
    user = await world.user()
    world.fake.add_job("h", "Queued")
    job = await world.watch(user, "h")
    world.fake.hang_next = [10.0]  # longer than ibm_read_timeout (1 s)
    stats = await world.cycle()
    assert stats.errors == {"transient": 1}
    assert (await world.job(job)).status == "INITIALIZING"
    assert (await _unit(world, user)).failures == 1


async def test_invalid_key_pauses_mails_once_and_resumes_on_a_new_key(world: World) -> None:
    key = world.fake.key()
    user = await world.user(key)
    world.fake.add_job("k", "Queued")
    job = await world.watch(user, "k")
    await world.cycle()
    world.fake.revoke_key(key)
    world.ibm.forget_key(key)  # the cached IAM token would still work for a while
    stats = await world.cycle()
    assert stats.errors == {"auth_invalid": 1}
    assert (await world.store.get_user(user.id)).ibm_key_state == "invalid"  # type: ignore[union-attr]
    assert (await _unit(world, user)).paused_reason == "key_invalid"
    calls = len(world.fake.calls)
    for _ in range(3):
        assert (await world.cycle()).units == 0
    assert len(world.fake.calls) == calls  # paused: IBM is not asked again
    assert len(await world.mail("key_invalid")) == 1

    # The user replaces the key (what PATCH me does: store the key, wake the units).
    new_key = world.fake.key()
    now = world.clock.now_ms()
    await world.store.update_user(user.id, {
        "ibm_key_cipher": world.keyring.encrypt(user.id, new_key), "ibm_key_state": "ok",
        "ibm_key_updated_at": now, "ibm_key_last4": new_key[-4:],
    })
    await world.store.wake_user_units(user.id, now)
    world.fake.set_status("k", "Completed")
    stats = await world.cycle()
    assert stats.units == 1 and stats.changes == 1
    assert (await world.job(job)).status == "DONE"
    assert len(await world.mail("key_invalid")) == 1


async def test_forbidden_instance_retries_hourly_three_times_then_pauses_with_one_mail(world: World) -> None:
    elsewhere = world.fake.crn(2)
    user = await world.user(world.fake.key(instances=[elsewhere]))
    world.fake.add_job("f", "Queued")
    job = await world.watch(user, "f")
    stats = await world.cycle()
    assert stats.errors == {"forbidden": 1} and stats.paused == 0
    for retry in (1, 2, 3):
        unit = await _unit(world, user)
        assert (unit.paused_reason, unit.failures) == (None, retry)
        assert unit.next_poll_at == world.clock.now_ms() + 3_600_000  # a long backoff, not a pause
        assert (await world.cycle(advance=3_599)).units == 0  # not due before the hour is up
        stats = await world.cycle(advance=2)
        assert stats.units == 1 and stats.errors == {"forbidden": 1}
    # The fourth refusal in a row: paused until the key changes, IBM is not asked again.
    assert stats.paused == 1
    assert (await _unit(world, user)).paused_reason == "forbidden"
    calls = len(world.fake.calls)
    assert (await world.cycle(advance=7_200)).units == 0
    assert len(world.fake.calls) == calls
    assert len(await world.mail("forbidden")) == 1
    assert (await world.job(job)).watch_state == "active"  # kept; resumes when the key changes


async def test_forbidden_instance_resumes_when_access_is_granted_before_the_retries_run_out(world: World) -> None:
    key = world.fake.key(instances=[world.fake.crn(2)])
    user = await world.user(key)
    world.fake.add_job("g", "Queued")
    job = await world.watch(user, "g")
    await world.cycle()
    await world.cycle(advance=3_601)
    assert (await _unit(world, user)).failures == 2
    world.fake.key_instances[key].add(world.fake.default_crn)  # the invitation was accepted
    world.fake.set_status("g", "Completed")
    stats = await world.cycle(advance=3_601)
    assert stats.errors == {} and stats.changes == 1
    unit = await _unit(world, user)
    assert (unit.paused_reason, unit.failures, unit.last_error) == (None, 0, None)
    assert (await world.job(job)).status == "DONE"
    # A later refusal starts a new streak of retries instead of pausing at once.
    world.fake.key_instances[key].discard(world.fake.default_crn)
    world.fake.add_job("g2", "Queued")
    await world.watch(user, "g2")
    await world.cycle()
    unit = await _unit(world, user)
    assert (unit.paused_reason, unit.failures) == (None, 1)
    assert len(await world.mail("forbidden")) == 1  # one email per instance


async def test_many_forbidden_instances_mail_once_per_user_per_window(world: World) -> None:
    """One request naming many instances the key cannot use must not become many emails
    (each would be a poll unit and a "no access" mail, and the server's mail budget is shared)."""
    user = await world.user(world.fake.key(instances=[world.fake.crn(1)]))
    for n in range(2, 22):
        world.fake.add_job(f"f{n}", "Queued", instance=world.fake.crn(n))
        await world.watch(user, f"f{n}", instance=world.fake.crn(n))
    stats = await world.cycle()
    assert stats.errors == {"forbidden": 20}
    assert len(await world.mail("forbidden")) == 1
    # another user is told too: the limit is per user
    other = await world.user(world.fake.key(instances=[world.fake.crn(1)]))
    world.fake.add_job("o", "Queued", instance=world.fake.crn(30))
    await world.watch(other, "o", instance=world.fake.crn(30))
    await world.cycle()
    assert sorted(m.user_id for m in await world.mail("forbidden")) == sorted([user.id, other.id])


async def test_not_found_three_times_makes_the_job_lost(world: World) -> None:
    user = await world.user()
    world.fake.add_job("here", "Running")
    kept = await world.watch(user, "here")
    ghost = await world.watch(user, "ghost")  # IBM has never heard of it
    for expected in (1, 2):
        await world.cycle()
        g = await world.job(ghost)
        assert (g.misses, g.watch_state) == (expected, "active")
    stats = await world.cycle()
    assert stats.lost == 1
    g = await world.job(ghost)
    assert g.watch_state == "lost"
    assert len(await world.mail("job_lost")) == 1
    _, gets = world.job_calls()
    stats = await world.cycle()
    assert world.job_calls()[1] == gets  # a lost job is not asked about again
    assert (await world.job(kept)).watch_state == "active"
    assert len(await world.mail("job_lost")) == 1


async def test_found_again_resets_misses(world: World) -> None:
    user = await world.user()
    job = await world.watch(user, "late")
    await world.cycle()
    assert (await world.job(job)).misses == 1
    world.fake.add_job("late", "Running")  # eventual consistency: it shows up
    await world.cycle()
    after = await world.job(job)
    assert (after.misses, after.status, after.last_error) == (0, "RUNNING", None)


async def test_unit_without_active_jobs_is_deleted_and_jobs_are_kept(world: World) -> None:
    user = await world.user()
    world.fake.add_job("fin", "Completed")
    job = await world.watch(user, "fin")
    await world.cycle()
    assert (await world.job(job)).status == "DONE"
    stats = await world.cycle()
    assert stats.deleted == 1
    assert await world.store.get_poll_unit(f"{user.id}|{world.fake.default_crn}") is None
    assert await world.store.get_job(job.id) is not None  # nothing ever deletes a job


async def test_has_work_and_clean_stop(world: World) -> None:
    user = await world.user()
    world.fake.add_job("w", "Queued")
    await world.watch(user, "w")
    assert not world.poller.has_work()
    await world.poller.start()
    assert world.poller.has_work()
    await world.poller.stop()
    assert world.poller._task is None


# -- retention -------------------------------------------------------------------------------------
async def test_retention_removes_only_old_finished_jobs(world: World) -> None:
    user = await world.user()
    world.fake.add_job("old-done", "Queued")
    world.fake.add_job("still-queued", "Queued")
    old = await world.watch(user, "old-done")
    kept = await world.watch(user, "still-queued")
    world.fake.set_status("old-done", "Completed")
    await world.cycle()
    assert (await world.job(old)).watch_state == "final"

    assert await world.poller.purge_expired(force=True) == 0  # retention off by default: keep everything
    world.poller.settings = dataclasses.replace(world.settings, retention_days=1)
    assert await world.poller.purge_expired(force=True) == 0  # finished, but not a day ago yet
    world.clock.advance(2 * 86_400_000)
    assert await world.poller.purge_expired(force=True) == 1
    assert await world.store.get_job(old.id) is None
    assert (await world.job(kept)).watch_state == "active"


async def test_housekeeping_sweeps_tokens_sent_mail_throttles_and_tombstones(world: World) -> None:
    store, now = world.store, world.clock.now_ms()
    day = 86_400_000
    user = await world.user()
    # expired and live email links
    await store.put_action_token(ActionToken("expired", user.id, "verify", expires_at=now - 1, created_at=now - day))
    await store.put_action_token(ActionToken("live", user.id, "reset", expires_at=now + day, created_at=now))
    # sent mail 31 and 29 days old, and a failed one from long ago
    notes = [
        Notification(id=new_id("n_"), dedupe_key=f"hk{i}", user_id=user.id, kind="notice", to_addr=user.email,
                     subject="s", text="t", html="h", created_at=now - 40 * day)
        for i in range(3)
    ]
    await store.enqueue(notes)
    claimed = await store.claim_outbox("w", now, 60_000, 3)
    assert len(claimed) == 3
    assert await store.mark_sent(notes[0].id, "w", now - 31 * day)
    assert await store.mark_sent(notes[1].id, "w", now - 29 * day)
    assert await store.mark_failed(notes[2].id, "w", "550", now - 40 * day)
    # a throttle window from two days ago and one from now
    await store.throttle_hit("old-window", now - 2 * day, 900_000)
    await store.throttle_hit("new-window", now, 900_000)
    # tombstones 8 and 6 days old
    world.fake.add_job("t1", "Queued")
    world.fake.add_job("t2", "Queued")
    old_gone, new_gone = await world.watch(user, "t1"), await world.watch(user, "t2")
    assert await store.delete_job(old_gone.id, user.id, now=now - 8 * day)
    assert await store.delete_job(new_gone.id, user.id, now=now - 6 * day)

    # retention_days is 0 (keep finished jobs), yet everything else is swept
    assert world.settings.retention_days == 0
    assert await world.poller.purge_expired(force=True) == 4
    assert world.poller.last_purge == {
        "sent emails": 1, "expired email links": 1, "unsent expired links": 0, "throttle counters": 1,
        "job tombstones": 1,
    }
    assert await store.consume_action_token("expired", "verify", now - 10) is None
    assert await store.consume_action_token("live", "reset", now) is not None
    assert {n.id for n in await world.mail()} == {notes[1].id, notes[2].id}
    assert await store.throttle_get("old-window") is None and await store.throttle_get("new-window") is not None
    assert await store.list_deleted_jobs(user.id, 0, 10) == [(new_gone.id, now - 6 * day)]
    # not again within the hour (unless forced) ...
    assert await world.poller.purge_expired() == 0
    # ... and outbox_retention_days = 0 keeps sent mail for ever
    world.poller.settings = dataclasses.replace(world.settings, outbox_retention_days=0)
    world.clock.advance(365 * day)
    assert await world.poller.purge_expired(force=True) == 2
    assert world.poller.last_purge == {
        "expired email links": 0, "unsent expired links": 0, "throttle counters": 1, "job tombstones": 1,  # no "sent emails" sweep
    }
    assert {n.id for n in await world.mail()} == {notes[1].id, notes[2].id}


async def test_unit_due_again_within_a_long_cycle_is_not_left_leased(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """With many units a cycle can outlast poll_interval: a unit already polled in the cycle
    that is claimed again must be handed back, not sit out its whole lease."""
    import qjm_jupyter_server.watcher.poller as poller_module

    monkeypatch.setattr(poller_module, "CLAIM_BATCH", 1)
    first, second = await world.user(), await world.user()
    world.fake.add_job("a-1", "Queued")
    world.fake.add_job("b-1", "Queued")
    await world.watch(first, "a-1")
    await world.watch(second, "b-1")

    real_now = world.clock.now_ms
    step = int(INTERVAL * 1000)  # every clock read moves time on by a poll interval

    def ticking() -> int:
        world.clock.advance(step)
        return real_now()

    monkeypatch.setattr(world.clock, "now_ms", ticking)
    stats = await world.poller.run_cycle()
    assert stats.units == 2
    for user in (first, second):
        unit = await world.store.get_poll_unit(f"{user.id}|{world.fake.default_crn}")
        assert unit is not None and unit.lease_owner is None, unit


# -- reads per cycle -------------------------------------------------------------------------------
class CountingStore:
    """The real store, counting the calls that read or write whole job records."""

    COUNTED = ("get_job", "list_active_jobs", "list_jobs", "cas_job")

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in self.COUNTED:
            return attr

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return await attr(*args, **kwargs)

        return counted


def counting_poller(world: World) -> tuple[Poller, CountingStore]:
    counting = CountingStore(world.store)
    poller = Poller(counting, world.keyring, world.messages, world.ibm, world.settings, world.clock,  # type: ignore[arg-type]
                    owner=f"count-{secrets.token_hex(3)}")
    return poller, counting


async def test_a_steady_cycle_reads_no_full_job(world: World) -> None:
    user = await world.user()
    for n in range(20):
        world.fake.add_job(f"s{n}", "Queued" if n % 2 else "Running")
        await world.watch(user, f"s{n}")
    first = await world.cycle()  # INITIALIZING -> QUEUED/RUNNING: every job is written once
    assert first.changes == 20
    poller, counting = counting_poller(world)
    world.clock.advance(int(INTERVAL * 1200))
    stats = await poller.run_cycle()
    assert (stats.units, stats.observations, stats.changes) == (1, 20, 0)
    assert counting.calls == {}  # no get_job, no list_active_jobs, no write

    # One job moves on: exactly that one is read in full and written.
    world.fake.set_status("s3", "Running")
    world.clock.advance(int(INTERVAL * 1200))
    stats = await poller.run_cycle()
    assert (stats.observations, stats.changes) == (20, 1)
    assert counting.calls == {"get_job": 1, "cas_job": 1}


async def test_misses_are_counted_without_full_reads_until_the_job_is_lost(world: World) -> None:
    user = await world.user()
    world.fake.add_job("here", "Running")
    await world.watch(user, "here")
    ghost = await world.watch(user, "ghost")
    await world.cycle()
    poller, counting = counting_poller(world)
    world.clock.advance(int(INTERVAL * 1200))
    await poller.run_cycle()  # second miss: a fenced write from the ref alone
    assert counting.calls == {"cas_job": 1}
    assert (await world.job(ghost)).misses == 2
    world.clock.advance(int(INTERVAL * 1200))
    stats = await poller.run_cycle()  # third miss: lost, and the mail needs the full job
    assert stats.lost == 1
    assert counting.calls == {"cas_job": 2, "get_job": 1}
    [mail] = await world.mail("job_lost")
    assert mail.job_id == ghost.id


async def test_a_cycle_hands_its_leases_back_in_a_few_writes(world: World) -> None:
    """Leases go back group-committed (`release_poll_units`), not one write per unit; every
    unit is free and scheduled when the cycle returns."""
    users = [await world.user() for _ in range(30)]
    for n, user in enumerate(users):
        world.fake.add_job(f"r{n}", "Queued")
        await world.watch(user, f"r{n}")
    counting = CountingStore(world.store)
    counting.COUNTED = ("release_poll_unit", "release_poll_units")
    poller = Poller(counting, world.keyring, world.messages, world.ibm, world.settings, world.clock,  # type: ignore[arg-type]
                    owner=f"count-{secrets.token_hex(3)}")
    world.clock.advance(int(INTERVAL * 1200))
    world.fake.latency = 0.05  # the first listings end together (ibm_concurrency of them): their leases share a write
    stats = await poller.run_cycle()
    assert stats.units == 30
    assert counting.calls.get("release_poll_unit", 0) == 0
    # One write per unit before. How many fewer depends on how fast each write is against how
    # fast units finish (a slow store batches more), so only "fewer" is asserted.
    assert 1 <= counting.calls["release_poll_units"] < stats.units
    now = world.clock.now_ms()
    for user in users:
        unit = await world.store.get_poll_unit(f"{user.id}|{world.fake.default_crn}")
        assert unit is not None and unit.lease_owner is None and unit.next_poll_at > now, unit


def test_needs_write_mirrors_apply_observation() -> None:
    from qjm_jupyter_server.domain import JobRef
    from qjm_jupyter_server.watcher.poller import _needs_write

    ref = JobRef("j", "d", "QUEUED", 3)
    assert not _needs_write(ref, "QUEUED")
    assert _needs_write(ref, "RUNNING")
    assert _needs_write(ref, "")  # unknown status: the full path logs it
    assert _needs_write(dataclasses.replace(ref, misses=1), "QUEUED")  # seen again: clear the miss
    assert _needs_write(dataclasses.replace(ref, last_error="boom"), "QUEUED")
    assert not _needs_write(dataclasses.replace(ref, status="DONE"), "RUNNING")  # final: ignored


async def test_ibm_calls_in_flight_follow_the_work_up_to_the_cap(world: World) -> None:
    """At 50 ms a call, 200 units due every 2 s need ~20 calls in flight (Little's law with
    headroom; IAM and a listing per unit). The fake IBM API itself counts them: more than the
    floor of 8, far fewer than the 200 a fixed limit of 200 let start at once (the bound
    leaves room for a loaded machine, where the measured latency includes the event loop's
    queueing), and never more than a cap of 16. One cycle per cap: the limiter counts units
    due per interval on the real clock, and cycles driven back to back would count twice."""
    users = [await world.user() for _ in range(200)]
    for n, user in enumerate(users):
        world.fake.add_job(f"f{n}", "Queued")
        await world.watch(user, f"f{n}")
    world.fake.latency = 0.05
    seen: dict[int, tuple[int, int]] = {}
    for cap in (200, 16):
        settings = dataclasses.replace(world.settings, ibm_concurrency=cap, poll_interval=2.0)
        ibm = IBMClient(settings)
        poller = Poller(world.store, world.keyring, world.messages, ibm, settings, world.clock, owner=f"inflight-{secrets.token_hex(3)}")
        world.fake.max_inflight = 0
        try:
            world.clock.advance(2_500)
            stats = await poller.run_cycle()
            assert stats.units == 200 and not stats.errors
        finally:
            await poller.stop()
            await ibm.aclose()
        seen[cap] = (world.fake.max_inflight, ibm.limit.peak)
    sized, sized_peak = seen[200]
    assert 8 < sized < 100 and sized_peak < 100, seen  # the work, not the cap, set the limit
    capped, capped_peak = seen[16]
    assert 8 < capped <= 16 and capped_peak <= 16, seen
