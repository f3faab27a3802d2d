"""Our IBM Quantum REST client against the fake IBM API over a real 127.0.0.1 socket."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from qjm_jupyter_server.settings import Settings
from qjm_jupyter_server.watcher.ibm import IBMClient, IBMError, parse_retry_after, runtime_url
from tests.fakes.ibm_api import make_crn
from tests.fixtures.ibm import FakeIBMFixture
from tests.fixtures.server import IBM_KEY_MARKER, ibm_key


class ManualClock:
    """The client's monotonic clock, advanced by hand so token expiry needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ibm_settings(fake_ibm: FakeIBMFixture) -> Settings:
    return Settings(ibm_iam_url=fake_ibm.base, ibm_api_url=fake_ibm.api_url, ibm_connect_timeout=2.0, ibm_read_timeout=1.0, ibm_concurrency=4)


@pytest.fixture
def make_client(ibm_settings: Settings, clock: ManualClock, jp_asyncio_loop: asyncio.AbstractEventLoop) -> Iterator[Callable[..., IBMClient]]:
    made: list[IBMClient] = []

    def make(**kw: Any) -> IBMClient:
        settings = replace(ibm_settings, **{k: v for k, v in kw.items() if hasattr(ibm_settings, k)})
        extra = {k: v for k, v in kw.items() if not hasattr(ibm_settings, k)}
        client = IBMClient(settings, clock=clock, **extra)
        made.append(client)
        return client

    yield make
    for client in made:  # sync fixture: pytest-jupyter runs async tests but not async fixtures
        jp_asyncio_loop.run_until_complete(client.aclose())


@pytest.fixture
def client(make_client: Callable[..., IBMClient]) -> IBMClient:
    return make_client()


async def expect_error(kind: str, call: Any) -> IBMError:
    with pytest.raises(IBMError) as info:
        await call
    assert info.value.kind == kind, f"{info.value.kind}: {info.value}"
    assert IBM_KEY_MARKER not in str(info.value)
    return info.value


# -- listing and status mapping --------------------------------------------------------------


async def test_pending_jobs_lists_only_pending_jobs_of_the_instance(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    key = fake_ibm.key()
    other = fake_ibm.crn(1)
    fake_ibm.add_job("q", "Queued", backend="ibm_a", created="2026-01-02T03:04:05.000000Z")
    fake_ibm.add_job("r", "Running", backend="ibm_b")
    fake_ibm.add_job("d", "Completed")
    fake_ibm.add_job("elsewhere", "Running", instance=other)

    jobs = await client.pending_jobs(key, fake_ibm.default_crn)

    assert {j: s.status for j, s in jobs.items()} == {"q": "QUEUED", "r": "RUNNING"}
    assert jobs["q"].raw_status == "Queued"
    assert jobs["q"].backend == "ibm_a"
    assert jobs["q"].created == int(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp() * 1000)
    assert set(await client.pending_jobs(key, other)) == {"elsewhere"}
    listing = [c for c in fake_ibm.calls if c.path == "/api/v1/jobs"][0]
    assert listing.query["pending"] == ["true"] and listing.query["exclude_params"] == ["true"]
    assert listing.query["limit"] == ["200"] and listing.query["offset"] == ["0"]
    assert listing.headers["Service-CRN"] == fake_ibm.default_crn
    assert listing.headers["IBM-API-Version"] == Settings().ibm_api_version
    assert listing.headers["Authorization"].startswith("Bearer ")
    assert listing.headers["Accept"] == "application/json"


@pytest.mark.parametrize(
    ("api_status", "reason_code", "expected"),
    [
        ("Queued", None, "QUEUED"),
        ("Running", None, "RUNNING"),
        ("Completed", None, "DONE"),
        ("Failed", 1517, "ERROR"),
        ("Cancelled", None, "CANCELLED"),
        ("Cancelled", 1305, "ERROR"),  # ran too long: a failure, as qiskit reports it
        ("Cancelled", 1300, "CANCELLED"),
    ],
)
async def test_get_job_maps_statuses(fake_ibm: FakeIBMFixture, client: IBMClient, api_status: str, reason_code: int | None, expected: str) -> None:
    fake_ibm.add_job("j", api_status, reason_code=reason_code)
    state = await client.get_job(fake_ibm.key(), fake_ibm.default_crn, "j")
    assert (state.id, state.status, state.raw_status, state.reason_code) == ("j", expected, api_status, reason_code)
    if reason_code:
        assert state.reason


async def test_camel_case_reason_code_and_string_code(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    body = {"id": "j", "backend": "b", "state": {"status": "Cancelled", "reason": "too long", "reasonCode": "1305"}, "created": "2026-01-01T00:00:00Z"}
    fake_ibm.fail_next.append((200, {}, body))
    state = await client.get_job(fake_ibm.key(), fake_ibm.default_crn, "j")
    assert (state.status, state.reason_code) == ("ERROR", 1305)


async def test_unknown_status_is_kept_raw_with_empty_status(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    fake_ibm.fail_next.append((200, {}, {"id": "j", "state": {"status": "Paused"}}))
    state = await client.get_job(fake_ibm.key(), fake_ibm.default_crn, "j")
    assert (state.status, state.raw_status) == ("", "Paused")


# -- IAM token cache ---------------------------------------------------------------------------


async def test_one_iam_exchange_serves_many_calls(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    key = fake_ibm.key()
    fake_ibm.add_job("j")
    for _ in range(5):
        await client.get_job(key, fake_ibm.default_crn, "j")
        await client.pending_jobs(key, fake_ibm.default_crn)
    assert client.calls == {"iam": 1, "get": 5, "list": 5}
    assert fake_ibm.count_calls("/identity/token") == 1


async def test_token_is_renewed_at_80_percent_of_its_lifetime(fake_ibm: FakeIBMFixture, client: IBMClient, clock: ManualClock) -> None:
    key = fake_ibm.key()
    fake_ibm.add_job("j")
    await client.get_job(key, fake_ibm.default_crn, "j")
    clock.now += 0.79 * fake_ibm.token_ttl
    await client.get_job(key, fake_ibm.default_crn, "j")
    assert client.calls["iam"] == 1
    clock.now += 0.02 * fake_ibm.token_ttl
    await client.get_job(key, fake_ibm.default_crn, "j")
    assert client.calls["iam"] == 2


async def test_concurrent_callers_share_one_exchange(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    key = fake_ibm.key()
    fake_ibm.add_job("j")
    fake_ibm.latency = 0.05  # keeps the exchange in flight while the others arrive
    states = await asyncio.gather(*(client.get_job(key, fake_ibm.default_crn, "j") for _ in range(12)))
    assert {s.status for s in states} == {"QUEUED"}
    assert client.calls["iam"] == 1
    assert fake_ibm.count_calls("/identity/token") == 1


async def test_concurrent_callers_all_see_a_failed_exchange(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    fake_ibm.latency = 0.05
    results = await asyncio.gather(*(client.get_job(ibm_key(), fake_ibm.default_crn, "j") for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, IBMError) and r.kind == "auth_invalid" for r in results)
    bad = ibm_key()
    results = await asyncio.gather(*(client.get_job(bad, fake_ibm.default_crn, "j") for _ in range(6)), return_exceptions=True)
    assert all(isinstance(r, IBMError) and r.kind == "auth_invalid" for r in results)
    assert fake_ibm.count_calls("/identity/token") == 4  # 3 distinct keys, then one shared exchange


async def test_token_cache_is_lru_capped(fake_ibm: FakeIBMFixture, make_client: Callable[..., IBMClient]) -> None:
    client = make_client(token_cache_size=2)
    keys = [fake_ibm.key() for _ in range(3)]
    fake_ibm.add_job("j")
    for key in keys:
        await client.get_job(key, fake_ibm.default_crn, "j")
    await client.get_job(keys[2], fake_ibm.default_crn, "j")  # still cached
    assert client.calls["iam"] == 3
    await client.get_job(keys[0], fake_ibm.default_crn, "j")  # evicted as least recently used
    assert client.calls["iam"] == 4


async def test_forget_key_forces_a_new_exchange(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    key = fake_ibm.key()
    fake_ibm.add_job("j")
    await client.get_job(key, fake_ibm.default_crn, "j")
    client.forget_key(key)
    await client.get_job(key, fake_ibm.default_crn, "j")
    assert client.calls["iam"] == 2


async def test_token_rejected_early_is_exchanged_again_once(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    key = fake_ibm.key()
    fake_ibm.add_job("j")
    await client.get_job(key, fake_ibm.default_crn, "j")
    fake_ibm.expire_tokens()  # the server considers our cached token dead before we do
    assert (await client.get_job(key, fake_ibm.default_crn, "j")).status == "QUEUED"
    assert client.calls["iam"] == 2


async def test_revoked_key_is_auth_invalid_and_token_forgotten(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    key = fake_ibm.key()
    fake_ibm.add_job("j")
    await client.get_job(key, fake_ibm.default_crn, "j")
    fake_ibm.revoke_key(key)
    err = await expect_error("auth_invalid", client.get_job(key, fake_ibm.default_crn, "j"))
    assert err.status == 400  # the fresh exchange after the API's 401 is refused by IAM
    fake_ibm.add_key(key)
    await client.get_job(key, fake_ibm.default_crn, "j")
    assert client.calls["iam"] == 3


async def test_api_401_with_a_fresh_token_is_auth_invalid(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    key = fake_ibm.key()
    fake_ibm.fail_next.append((401, {}, None))
    err = await expect_error("auth_invalid", client.get_job(key, fake_ibm.default_crn, "j"))
    assert err.status == 401
    fake_ibm.add_job("j")
    await client.get_job(key, fake_ibm.default_crn, "j")
    assert client.calls["iam"] == 2  # the rejected token was not kept


async def test_unknown_key_is_auth_invalid(fake_ibm: FakeIBMFixture, client: IBMClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    err = await expect_error("auth_invalid", client.pending_jobs(ibm_key(), fake_ibm.default_crn))
    assert err.status == 400 and "BXNIM0415E" in str(err)
    assert IBM_KEY_MARKER not in caplog.text
    assert client.calls["list"] == 0


async def test_logs_never_show_keys_or_tokens(fake_ibm: FakeIBMFixture, client: IBMClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = fake_ibm.key()
    fake_ibm.add_job("j")
    await client.get_job(key, fake_ibm.default_crn, "j")
    tokens = list(fake_ibm.tokens)
    assert tokens and not any(t in caplog.text for t in tokens)
    assert key not in caplog.text


# -- paging ------------------------------------------------------------------------------------


async def test_paging_collects_every_pending_job(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    for i in range(450):
        fake_ibm.add_job(f"j{i}", "Running" if i % 2 else "Queued")
    fake_ibm.add_job("done", "Completed")
    jobs = await client.pending_jobs(fake_ibm.key(), fake_ibm.default_crn)
    assert len(jobs) == 450 and "done" not in jobs
    assert client.calls["list"] == 3
    offsets = [c.query["offset"][0] for c in fake_ibm.calls if c.path == "/api/v1/jobs"]
    assert offsets == ["0", "200", "400"]


@pytest.mark.timeout(30)
async def test_paging_ignores_a_lying_count(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    fake_ibm.count_bias = 10_000
    for i in range(200):  # exactly one full page, then an empty one
        fake_ibm.add_job(f"j{i}")
    jobs = await client.pending_jobs(fake_ibm.key(), fake_ibm.default_crn)
    assert len(jobs) == 200 and client.calls["list"] == 2


@pytest.mark.timeout(30)
async def test_paging_stops_after_max_pages_on_a_server_that_never_ends(fake_ibm: FakeIBMFixture, make_client: Callable[..., IBMClient]) -> None:
    client = make_client(max_pages=3)
    page = {"jobs": [{"id": f"j{i}", "state": {"status": "Queued"}} for i in range(200)], "count": 10**9}
    fake_ibm.fail_next.extend([(200, {}, page)] * 10)
    jobs = await client.pending_jobs(fake_ibm.key(), fake_ibm.default_crn)
    assert len(jobs) == 200 and client.calls["list"] == 3


# -- error kinds -----------------------------------------------------------------------------------


async def test_instance_the_key_cannot_use_is_forbidden(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    mine, theirs = fake_ibm.crn(1), fake_ibm.crn(2)
    key = fake_ibm.key(instances=[mine])
    fake_ibm.add_job("j", instance=theirs)
    assert await client.pending_jobs(key, mine) == {}
    err = await expect_error("forbidden", client.get_job(key, theirs, "j"))
    assert err.status == 403
    await expect_error("forbidden", client.pending_jobs(key, theirs))


async def test_unknown_job_and_job_of_another_instance_are_not_found(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    key = fake_ibm.key()
    fake_ibm.add_job("j", instance=fake_ibm.crn(1))
    err = await expect_error("not_found", client.get_job(key, fake_ibm.default_crn, "missing"))
    assert err.status == 404
    await expect_error("not_found", client.get_job(key, fake_ibm.default_crn, "j"))
    await expect_error("not_found", client.get_job(key, fake_ibm.default_crn, "../backends"))


@pytest.mark.parametrize(
    ("header", "expected"),
    [({"Retry-After": "7"}, 7.0), ({"Retry-After": "1.5"}, 1.5), ({}, None), ({"Retry-After": "soon"}, None)],
)
async def test_rate_limited_carries_retry_after(fake_ibm: FakeIBMFixture, client: IBMClient, header: dict[str, str], expected: float | None) -> None:
    fake_ibm.fail_next.append((429, header, None))
    err = await expect_error("rate_limited", client.pending_jobs(fake_ibm.key(), fake_ibm.default_crn))
    assert (err.status, err.retry_after) == (429, expected)


async def test_rate_limited_with_an_http_date(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=120)
    fake_ibm.fail_next.append((429, {"Retry-After": format_datetime(when, usegmt=True)}, None))
    err = await expect_error("rate_limited", client.get_job(fake_ibm.key(), fake_ibm.default_crn, "j"))
    assert err.retry_after is not None and 60 < err.retry_after <= 121


def test_parse_retry_after() -> None:
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=datetime(2015, 10, 21, 7, 27, tzinfo=timezone.utc).timestamp()) == 60.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after(None) is None and parse_retry_after("") is None


@pytest.mark.parametrize("status", [500, 502, 503, 504, 520])
async def test_server_errors_are_transient(fake_ibm: FakeIBMFixture, client: IBMClient, status: int) -> None:
    fake_ibm.fail_next.append((status, {}, "<html>maintenance</html>"))
    err = await expect_error("transient", client.pending_jobs(fake_ibm.key(), fake_ibm.default_crn))
    assert err.status == status


async def test_iam_errors(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    key = fake_ibm.key()
    fake_ibm.fail_iam_next.append((503, {}, None))
    await expect_error("transient", client.get_job(key, fake_ibm.default_crn, "j"))
    fake_ibm.fail_iam_next.append((429, {"Retry-After": "3"}, None))
    assert (await expect_error("rate_limited", client.get_job(key, fake_ibm.default_crn, "j"))).retry_after == 3.0
    fake_ibm.fail_iam_next.append((200, {}, {"token_type": "Bearer"}))
    await expect_error("protocol", client.get_job(key, fake_ibm.default_crn, "j"))
    fake_ibm.fail_iam_next.append((401, {}, {"errorCode": "BXNIM0418E"}))
    await expect_error("auth_invalid", client.get_job(key, fake_ibm.default_crn, "j"))


@pytest.mark.parametrize(
    "body",
    ["this is not json", {"count": 0}, {"jobs": "nope"}, {"jobs": [{"state": {"status": "Queued"}}]}, {"jobs": [{"id": "x"}]}, [1, 2]],
)
async def test_malformed_bodies_are_protocol_errors(fake_ibm: FakeIBMFixture, client: IBMClient, body: Any) -> None:
    fake_ibm.fail_next.append((200, {"Content-Type": "application/json"}, body))
    await expect_error("protocol", client.pending_jobs(fake_ibm.key(), fake_ibm.default_crn))


async def test_get_job_answering_another_job_is_a_protocol_error(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    fake_ibm.fail_next.append((200, {}, {"id": "other", "state": {"status": "Queued"}}))
    await expect_error("protocol", client.get_job(fake_ibm.key(), fake_ibm.default_crn, "j"))


async def test_unexpected_client_error_is_protocol(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    fake_ibm.fail_next.append((400, {}, None))
    assert (await expect_error("protocol", client.pending_jobs(fake_ibm.key(), fake_ibm.default_crn))).status == 400


@pytest.mark.timeout(20)  # a client without a read timeout blocks on the 60 s hang and fails here
async def test_a_hung_server_is_transient_after_the_read_timeout(fake_ibm: FakeIBMFixture, client: IBMClient) -> None:
    key = fake_ibm.key()
    fake_ibm.add_job("j")
    await client.get_job(key, fake_ibm.default_crn, "j")
    fake_ibm.hang_next.append(60)
    err = await expect_error("transient", client.get_job(key, fake_ibm.default_crn, "j"))
    assert "in time" in str(err)
    assert (await client.get_job(key, fake_ibm.default_crn, "j")).status == "QUEUED"  # the client recovers


async def test_nothing_listening_is_transient(fake_ibm: FakeIBMFixture, make_client: Callable[..., IBMClient]) -> None:
    client = make_client(ibm_iam_url="http://127.0.0.1:9")
    await expect_error("transient", client.pending_jobs(fake_ibm.key(), fake_ibm.default_crn))


# -- instances and URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "crn",
    [
        "",
        "not-a-crn",
        "crn:v1:bluemix:public:quantum-computing",
        "crn:v1:bluemix:public:quantum-computing:evil.example/x:a/1:i::",
        "crn:v1:bluemix:public:quantum-computing::a/1:i::",
        "crn:v1:bluemix:public:quantum-computing:us-east:a/1:i::\r\nX-Injected: 1",
        "crn:v1:bluemix:public:quantum computing:us-east:a/1:i::",
    ],
)
async def test_malformed_instance_is_a_protocol_error_without_a_request(fake_ibm: FakeIBMFixture, client: IBMClient, crn: str) -> None:
    await expect_error("protocol", client.pending_jobs(fake_ibm.key(), crn))
    assert fake_ibm.count_calls("/api/v1") == 0


def test_runtime_url_follows_the_crn_region() -> None:
    assert runtime_url(make_crn(1)) == "https://quantum.cloud.ibm.com/api/v1"
    assert runtime_url(make_crn(1, region="eu-de")) == "https://eu-de.quantum.cloud.ibm.com/api/v1"
    assert runtime_url(make_crn(1, region="eu-de"), "http://127.0.0.1:5/api/v1/") == "http://127.0.0.1:5/api/v1"


async def test_requests_in_flight_are_capped(fake_ibm: FakeIBMFixture, make_client: Callable[..., IBMClient]) -> None:
    client = make_client(ibm_concurrency=2)
    key = fake_ibm.key()
    fake_ibm.add_job("j")
    await client.get_job(key, fake_ibm.default_crn, "j")
    fake_ibm.latency = 0.05
    await asyncio.gather(*(client.get_job(key, fake_ibm.default_crn, "j") for _ in range(8)))
    assert fake_ibm.max_inflight <= 2
