"""The REAL qiskit-ibm-runtime client against the fake, and our client beside it.

If the fake drifted from what the real client expects (shapes, counts, scoping, errors),
these tests break; and where our client and qiskit read the same job they must agree.
Both ways of pointing the real client at the fake are exercised: `url_resolver` with
QISKIT_FUNCTIONS_EXPERIMENTAL=1, and `url=` plus `proxies=` with the fake as a forward
proxy. The real client has no read timeout
through a proxy, hence the hard timeout on every test.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

runtime = pytest.importorskip("qiskit_ibm_runtime")

from qiskit_ibm_runtime import QiskitRuntimeService, RuntimeJobV2  # noqa: E402
from qiskit_ibm_runtime.accounts import InvalidAccountError  # noqa: E402
from qiskit_ibm_runtime.exceptions import IBMInputValueError, RuntimeJobMaxTimeoutError, RuntimeJobNotFound  # noqa: E402

from qjm_jupyter_server.settings import Settings  # noqa: E402
from qjm_jupyter_server.watcher.ibm import IBMClient  # noqa: E402
from tests.fixtures.ibm import FakeIBMFixture  # noqa: E402
from tests.fixtures.server import ibm_key  # noqa: E402

pytestmark = pytest.mark.timeout(60)

WIRINGS = ["proxy", "resolver"]
CASES: list[tuple[str, str, int | None, str]] = [
    ("job-q", "Queued", None, "QUEUED"),
    ("job-r", "Running", None, "RUNNING"),
    ("job-d", "Completed", None, "DONE"),
    ("job-f", "Failed", 1517, "ERROR"),
    ("job-c", "Cancelled", None, "CANCELLED"),
    ("job-t", "Cancelled", 1305, "ERROR"),
]


def our_client(fake: FakeIBMFixture) -> IBMClient:
    return IBMClient(Settings(ibm_iam_url=fake.base, ibm_api_url=fake.api_url, ibm_read_timeout=10.0))


@pytest.mark.parametrize("wiring", WIRINGS)
async def test_statuses_agree_between_qiskit_and_our_client(fake_ibm: FakeIBMFixture, wiring: str) -> None:
    key = fake_ibm.key()
    for job_id, api_status, code, _ in CASES:
        fake_ibm.add_job(job_id, api_status, reason_code=code)
    svc = fake_ibm.service(key, wiring=wiring)
    ours = our_client(fake_ibm)
    try:
        for job_id, _, _, expected in CASES:
            theirs = svc.job(job_id).status()
            mine = (await ours.get_job(key, fake_ibm.default_crn, job_id)).status
            assert (job_id, theirs, mine) == (job_id, expected, expected)
    finally:
        await ours.aclose()


@pytest.mark.parametrize("wiring", WIRINGS)
async def test_a_job_moves_through_its_life(fake_ibm: FakeIBMFixture, wiring: str) -> None:
    key = fake_ibm.key()
    fake_ibm.add_job("j", "Queued")
    job = fake_ibm.service(key, wiring=wiring).job("j")
    seen = [job.status()]
    for api_status in ("Running", "Completed"):
        fake_ibm.set_status("j", api_status)
        seen.append(job.status())
    assert seen == ["QUEUED", "RUNNING", "DONE"]


@pytest.mark.parametrize("wiring", WIRINGS)
async def test_pending_listing_agrees(fake_ibm: FakeIBMFixture, wiring: str) -> None:
    key = fake_ibm.key()
    for job_id, api_status, code, _ in CASES:
        fake_ibm.add_job(job_id, api_status, reason_code=code)
    fake_ibm.add_job("elsewhere", "Running", instance=fake_ibm.crn(1))
    svc = fake_ibm.service(key, wiring=wiring)
    pending = {j.job_id() for j in svc.jobs(pending=True, limit=None)}
    finished = {j.job_id() for j in svc.jobs(pending=False, limit=None)}
    raw = svc._active_api_client.jobs_get(limit=200, pending=True)  # one call for many statuses (service.jobs() re-fetches each)
    ours = our_client(fake_ibm)
    try:
        mine = await ours.pending_jobs(key, fake_ibm.default_crn)
    finally:
        await ours.aclose()
    assert pending == set(mine) == {"job-q", "job-r"}
    assert {j["id"]: j["state"]["status"] for j in raw["jobs"]} == {"job-q": "Queued", "job-r": "Running"}
    assert finished == {"job-d", "job-f", "job-c", "job-t"}


@pytest.mark.parametrize("wiring", WIRINGS)
async def test_paging_filters_and_order(fake_ibm: FakeIBMFixture, wiring: str) -> None:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i in range(45):
        fake_ibm.add_job(f"j{i:02d}", "Queued", created=start + timedelta(minutes=i), tags=["even"] if i % 2 == 0 else ["odd"])
    svc = fake_ibm.service(fake_ibm.key(), wiring=wiring)
    everything = svc.jobs(limit=None)  # pages of 20 until `count` is reached
    assert [j.job_id() for j in everything] == [f"j{i:02d}" for i in reversed(range(45))]
    assert len(svc.jobs(limit=23)) == 23
    assert [j.job_id() for j in svc.jobs(limit=3, skip=2)] == ["j42", "j41", "j40"]
    assert [j.job_id() for j in svc.jobs(limit=2, descending=False)] == ["j00", "j01"]
    assert {j.job_id() for j in svc.jobs(limit=None, job_tags=["even"])} == {f"j{i:02d}" for i in range(0, 45, 2)}
    after = svc.jobs(limit=None, created_after=(start + timedelta(minutes=40)).astimezone())
    assert {j.job_id() for j in after} == {f"j{i}" for i in range(40, 45)}
    listings = [c for c in fake_ibm.calls if c.path == "/api/v1/jobs"]
    assert any(c.query.get("offset") == ["40"] for c in listings)


@pytest.mark.parametrize("wiring", WIRINGS)
async def test_unknown_job_is_runtime_job_not_found(fake_ibm: FakeIBMFixture, wiring: str) -> None:
    fake_ibm.add_job("other-instance", "Queued", instance=fake_ibm.crn(1))
    svc = fake_ibm.service(fake_ibm.key(), wiring=wiring)
    with pytest.raises(RuntimeJobNotFound):
        svc.job("missing")
    with pytest.raises(RuntimeJobNotFound):
        svc.job("other-instance")


@pytest.mark.parametrize("wiring", WIRINGS)
async def test_failure_details_reach_the_real_client(fake_ibm: FakeIBMFixture, wiring: str) -> None:
    fake_ibm.add_job("failed", "Failed", reason="Error in transpilation", reason_code=1517)
    fake_ibm.add_job("too-long", "Cancelled", reason_code=1305)
    svc = fake_ibm.service(fake_ibm.key(), wiring=wiring)
    failed = svc.job("failed")
    assert failed.status() == "ERROR"
    assert "transpilation" in (failed.error_message() or "")
    too_long = svc.job("too-long")
    assert too_long.status() == "ERROR"
    with pytest.raises(RuntimeJobMaxTimeoutError):
        too_long.result()


# Only the proxy wiring: with QISKIT_FUNCTIONS_EXPERIMENTAL a bad key is not checked at construction and
# the next call stalls ~60 s in ibm-cloud-sdk-core (its token manager does not reset its request
# time after a failed IAM call), too slow for a unit test.
async def test_bad_key_fails_at_construction(fake_ibm: FakeIBMFixture) -> None:
    with pytest.raises(InvalidAccountError):
        QiskitRuntimeService(token=ibm_key(), **fake_ibm.service_kwargs)
    ours = our_client(fake_ibm)
    try:
        with pytest.raises(Exception) as info:
            await ours.pending_jobs(ibm_key(), fake_ibm.default_crn)
        assert getattr(info.value, "kind", None) == "auth_invalid"
    finally:
        await ours.aclose()


async def test_instance_outside_the_keys_account_is_refused(fake_ibm: FakeIBMFixture) -> None:
    mine, theirs = fake_ibm.crn(1), fake_ibm.crn(2)
    key = fake_ibm.key(instances=[mine])
    with pytest.raises(IBMInputValueError):
        fake_ibm.service(key, instance=theirs)
    assert fake_ibm.service(key, instance=mine).jobs(limit=1) == []


async def test_full_constructor_path_is_served(fake_ibm: FakeIBMFixture) -> None:
    fake_ibm.service(fake_ibm.key(), wiring="proxy")
    hosts = {(c.host, c.path) for c in fake_ibm.calls}
    assert ("api.global-search-tagging.cloud.fake", "/v3/resources/search") in hosts
    assert ("globalcatalog.cloud.fake", "/api/v1/plan-open") in hosts
    assert ("quantum.cloud.fake", "/api/v1/backends") in hosts
    runtime_calls = [c for c in fake_ibm.calls if c.host == "quantum.cloud.fake"]
    assert all(c.crn == fake_ibm.default_crn and c.headers.get("IBM-API-Version") for c in runtime_calls)


async def test_runtime_job_helper_gives_a_real_job(fake_ibm: FakeIBMFixture) -> None:
    fake_ibm.add_job("k1", "Running", backend="ibm_kernel", instance=fake_ibm.crn(3))
    job: Any = fake_ibm.runtime_job("k1")
    assert isinstance(job, RuntimeJobV2)
    assert (job.job_id(), job.status()) == ("k1", "RUNNING")
    assert job.backend().name == "ibm_kernel"
    assert job.instance == fake_ibm.crn(3)


@pytest.mark.parametrize("wiring", WIRINGS)
async def test_metrics_timestamps_and_usage_agree(fake_ibm: FakeIBMFixture, wiring: str) -> None:
    """IBM's own times (`job.metrics()`) and billed usage (`job.usage()`) read the same through
    qiskit and through our client, pending usage counting as none, as qiskit counts it."""
    key = fake_ibm.key()
    created = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    fake_ibm.add_job("m1", "Queued", created=created)
    svc = fake_ibm.service(key, wiring=wiring)
    ours = our_client(fake_ibm)
    try:
        job = svc.job("m1")
        queued = await ours.job_metrics(key, fake_ibm.default_crn, "m1")
        assert job.metrics()["timestamps"]["running"] is None and queued.running is None
        assert job.usage() == 0 and queued.usage_seconds is None
        fake_ibm.set_status("m1", "Running", at=created + timedelta(minutes=3))
        fake_ibm.set_status("m1", "Completed", at=created + timedelta(minutes=3, seconds=48), usage_seconds=7.25)
        mine = await ours.job_metrics(key, fake_ibm.default_crn, "m1")
        stamps = job.metrics()["timestamps"]
        assert job.usage() == 7.25 == mine.usage_seconds
        for name, value in (("created", mine.created), ("running", mine.running), ("finished", mine.finished)):
            theirs = datetime.fromisoformat(stamps[name].replace("Z", "+00:00"))
            assert int(theirs.timestamp() * 1000) == value, name
        assert (mine.finished - mine.running, mine.running - mine.created) == (48_000, 180_000)
    finally:
        await ours.aclose()


@pytest.mark.parametrize("wiring", WIRINGS)
async def test_cancel_agrees_with_qiskit(fake_ibm: FakeIBMFixture, wiring: str) -> None:
    """`job.cancel()` and our cancel_job send the same request; both see a final job refuse (409)."""
    from qiskit_ibm_runtime.exceptions import RuntimeInvalidStateError

    key = fake_ibm.key()
    fake_ibm.add_job("c-theirs", "Queued")
    fake_ibm.add_job("c-ours", "Running")
    svc = fake_ibm.service(key, wiring=wiring)
    ours = our_client(fake_ibm)
    try:
        job = svc.job("c-theirs")
        job.cancel()
        await ours.cancel_job(key, fake_ibm.default_crn, "c-ours")
        assert svc.job("c-theirs").status() == "CANCELLED" == svc.job("c-ours").status()
        assert (await ours.get_job(key, fake_ibm.default_crn, "c-ours")).status == "CANCELLED"
        theirs_call = [c for c in fake_ibm.calls if c.path == "/api/v1/jobs/c-theirs/cancel"]
        mine_call = [c for c in fake_ibm.calls if c.path == "/api/v1/jobs/c-ours/cancel"]
        assert [c.method for c in theirs_call] == ["POST"] == [c.method for c in mine_call]
        with pytest.raises(RuntimeInvalidStateError):
            job.cancel()
        with pytest.raises(Exception) as info:
            await ours.cancel_job(key, fake_ibm.default_crn, "c-ours")
        assert getattr(info.value, "kind", None) == "conflict"
    finally:
        await ours.aclose()
