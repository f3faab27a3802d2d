"""What an outside attack on `jupyter qjm` found, replayed over real sockets on SQLite and
on the MongoDB wire server: admin by registration, throttles that race, login bursts,
mail floods, credential changes that leave links alive, timing and look-alike addresses.

Many requests are really in flight at once (one asyncio.gather over one httpx pool);
"another client" is another source address on the loopback network (127.0.0.x).
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.fixtures.server import ibm_key
from tests.server.test_accounts import TOKEN_RE, bearer, login, mailed_token, mails

CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/abc123:inst-{n:04d}::"


@pytest.fixture(params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def qjm_config(request: pytest.FixtureRequest, qjm_config: dict[str, Any]) -> dict[str, Any]:
    """The server's store: a SQLite file, or a database on the MongoDB wire server."""
    if request.param == "mongo":
        url, database = request.getfixturevalue("mongo_url"), request.getfixturevalue("mongo_database")
        base, _, query = url.partition("/?")
        qjm_config["db_url"] = f"{base}/{database}?{query}"
    return qjm_config


def client_from(qjm_base: str, ip: str, connections: int = 250) -> httpx.AsyncClient:
    """An HTTP client whose requests come from `ip` (any 127.0.0.x reaches the server)."""
    return httpx.AsyncClient(
        base_url=qjm_base,
        timeout=120,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        transport=httpx.AsyncHTTPTransport(local_address=ip, limits=httpx.Limits(max_connections=connections)),
    )


def tune(services: Any, **changes: Any) -> None:
    """Change settings of the running server's account service (as a restart with them would)."""
    services.accounts.settings = dataclasses.replace(services.accounts.settings, **changes)


# -- 1. admin by registration ------------------------------------------------------------------
class TestConfiguredAdminNeedsAVerifiedAddress:
    @pytest.fixture
    def qjm_config(self, qjm_config):
        qjm_config["admin_emails"] = ["boss@example.org"]
        return qjm_config

    async def test_registering_the_address_is_not_enough(self, api, qjm_services):
        r = await api.post("auth/register", json={"email": "boss@example.org", "password": "stranger's password"})
        assert r.status_code == 202
        token = await login(api, "boss@example.org", "stranger's password")
        assert (await api.get("me", headers=bearer(token))).json()["is_admin"] is False
        assert (await api.get("admin/users", headers=bearer(token))).status_code == 403
        # a restart promotes configured addresses: still not an unverified one
        await qjm_services.accounts.promote_configured_admins()
        assert (await api.get("me", headers=bearer(token))).json()["is_admin"] is False
        # whoever reads the mailbox verifies it, and only then is admin
        link = await mailed_token(qjm_services, "boss@example.org", "verify")
        r = await api.post("auth/verify/confirm", json={"token": link})
        assert r.status_code == 200 and r.json()["is_admin"] is True


# -- 2. throttles are one atomic check-and-count -------------------------------------------------
async def test_concurrent_wrong_logins_count_like_sequential_ones(qjm_base, make_user, qjm_services):
    user = await make_user()
    tune(qjm_services, login_fail_limit=10)
    async with client_from(qjm_base, "127.0.0.2") as attacker:
        answers = await asyncio.gather(
            *(attacker.post("auth/login", json={"email": user.email, "password": f"wrong {i}"}) for i in range(200))
        )
        codes = Counter(r.status_code for r in answers)
        print(f"200 concurrent wrong passwords: {dict(codes)}")
        assert set(codes) <= {401, 429, 503}, codes
        assert codes[401] <= 10, codes
        assert all("Retry-After" in r.headers for r in answers if r.status_code in (429, 503))
        # the right password from the same client is refused while the client is throttled
        r = await attacker.post("auth/login", json={"email": user.email, "password": user.password})
        assert r.status_code == 429, r.text


# -- 3. bounded login work ---------------------------------------------------------------------------
async def test_a_login_burst_from_one_client_is_refused_at_once(qjm_base, qjm_services):
    tune(qjm_services, login_fail_limit=10_000)  # the per-client cap, not the failure throttle
    async with client_from(qjm_base, "127.0.0.3") as burst:
        answers = await asyncio.gather(
            *(burst.post("auth/login", json={"email": f"ghost{i}@example.org", "password": "guess"}) for i in range(60))
        )
    codes = Counter(r.status_code for r in answers)
    assert codes[429] > 0, codes
    assert codes[401] + codes[429] == 60, codes
    refused = [r for r in answers if r.status_code == 429]
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)


async def test_a_distributed_login_burst_is_refused_past_the_hash_queue(qjm_base, qjm_services):
    # a real bcrypt cost, so checks take long enough for the queue to fill on any backend
    tune(qjm_services, login_fail_limit=10_000, login_queue=2, bcrypt_rounds=12)
    clients = [client_from(qjm_base, f"127.0.1.{n}", connections=4) for n in range(1, 61)]
    try:
        answers = await asyncio.gather(
            *(c.post("auth/login", json={"email": f"ghost{n}@example.org", "password": "guess"}) for n, c in enumerate(clients))
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    codes = Counter(r.status_code for r in answers)
    assert codes[503] > 0, codes
    assert all(int(r.headers["Retry-After"]) >= 1 for r in answers if r.status_code == 503)


# -- 4. mail is limited per recipient and per account ---------------------------------------------
async def test_email_change_cannot_flood_a_mailbox(api, make_user, qjm_services):
    user = await make_user()
    for _ in range(12):
        r = await api.patch("me", headers=user.headers, json={"email": "victim@example.org", "current_password": user.password})
        assert r.status_code in (200, 429), r.text
    assert len(await mails(qjm_services, "victim@example.org")) <= 5


async def test_email_change_cannot_mail_many_addresses(api, make_user, qjm_services):
    user = await make_user()
    sent = 0
    for n in range(12):
        r = await api.patch("me", headers=user.headers, json={"email": f"target{n}@example.org", "current_password": user.password})
        assert r.status_code in (200, 429), r.text
        sent += len(await mails(qjm_services, f"target{n}@example.org"))
    assert sent <= 5


# -- 5. job instances are CRNs, and few ---------------------------------------------------------------
async def test_job_instance_must_be_a_crn(api, make_user):
    user = await make_user()
    r = await api.post("jobs", headers=user.headers, json={"job_id": "j1", "instance": "made-up instance 1"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "jobs.0.instance"


async def test_distinct_instances_per_user_are_capped(api, make_user, qjm_services):
    user = await make_user()
    cap = qjm_services.settings.max_instances_per_user
    jobs = [{"job_id": f"j{n}", "instance": CRN.format(n=n)} for n in range(cap + 1)]
    r = await api.post("jobs", headers=user.headers, json={"jobs": jobs})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "jobs"
    r = await api.post("jobs", headers=user.headers, json={"jobs": jobs[:cap]})
    assert r.status_code in (200, 201), r.text
    r = await api.post("jobs", headers=user.headers, json={"jobs": jobs[cap:]})
    assert r.status_code == 422, r.text


# -- 6. credential changes revoke everything issued before --------------------------------------------
async def test_a_pending_email_change_dies_with_a_password_reset(api, make_user, qjm_services):
    owner = await make_user()
    # the attacker knows the password and starts moving the account to their address
    r = await api.patch("me", headers=owner.headers, json={"email": "attacker@evil.example", "current_password": owner.password})
    assert r.status_code == 200
    hijack = await mailed_token(qjm_services, "attacker@evil.example", "verify")
    # the owner resets the password
    assert (await api.post("auth/password/forgot", json={"email": owner.email})).status_code == 202
    reset = await mailed_token(qjm_services, owner.email, "reset")
    r = await api.post("auth/password/reset", json={"token": reset, "password": "the owner's new password"})
    assert r.status_code == 200
    r = await api.post("auth/verify/confirm", json={"token": hijack})
    assert r.status_code == 400, r.text
    assert (await qjm_services.store.get_user(owner.id)).email == owner.email


@pytest.mark.parametrize("change", ["password", "logout-all", "email"])
async def test_credential_changes_kill_reset_links_and_sessions(api, make_user, qjm_services, change):
    user = await make_user()
    other_session = await login(api, user.email, user.password)
    assert (await api.post("auth/password/forgot", json={"email": user.email})).status_code == 202
    reset = await mailed_token(qjm_services, user.email, "reset")
    if change == "password":
        r = await api.patch("me", headers=user.headers, json={"password": "another long password", "current_password": user.password})
        assert r.status_code == 200
    elif change == "logout-all":
        assert (await api.post("auth/logout-all", headers=user.headers)).status_code == 204
    else:
        r = await api.patch("me", headers=user.headers, json={"email": "moved@example.org", "current_password": user.password})
        assert r.status_code == 200
        link = await mailed_token(qjm_services, "moved@example.org", "verify")
        assert (await api.post("auth/verify/confirm", json={"token": link})).status_code == 200
    r = await api.post("auth/password/reset", json={"token": reset, "password": "taken over password"})
    assert r.status_code == 400, (change, r.text)
    assert (await api.get("me", headers=bearer(other_session))).status_code == 401, change


# -- 8. low ------------------------------------------------------------------------------------------------
async def test_wrong_passwords_from_one_client_do_not_lock_the_owner_out(qjm_base, api, make_user, qjm_services):
    user = await make_user()
    tune(qjm_services, login_fail_limit=10)
    async with client_from(qjm_base, "127.0.0.4", connections=4) as stranger:
        for _ in range(15):
            r = await stranger.post("auth/login", json={"email": user.email, "password": "not the password"})
            assert r.status_code in (401, 429)
        assert r.status_code == 429  # that client is slowed down...
    # ...the owner, elsewhere, is not
    async with client_from(qjm_base, "127.0.0.5", connections=4) as owner:
        r = await owner.post("auth/login", json={"email": user.email, "password": user.password})
        assert r.status_code == 200, r.text


async def test_emailed_tokens_are_not_in_clear_in_the_outbox(api, make_user, qjm_services):
    user = await make_user()
    assert (await api.post("auth/password/forgot", json={"email": user.email})).status_code == 202
    token = await mailed_token(qjm_services, user.email, "reset")
    [row] = await mails(qjm_services, user.email, "reset")
    assert token not in row.text and token not in row.html
    assert not TOKEN_RE.search(row.text) and not TOKEN_RE.search(row.html)


async def test_unsent_mail_with_expired_links_is_purged(api, make_user, qjm_services):
    user = await make_user()
    assert (await api.post("auth/password/forgot", json={"email": user.email})).status_code == 202
    assert await mails(qjm_services, user.email, "reset")
    later = qjm_services.clock.now_ms() + (qjm_services.settings.reset_token_ttl + 1) * 1000
    await qjm_services.store.purge_outbox_links("reset", later - qjm_services.settings.reset_token_ttl * 1000)
    assert await mails(qjm_services, user.email, "reset") == []


@pytest.mark.parametrize("lookalike", ["ＢＯＳＳ@example.org", "boss@EXAMPLE.org", "boss@ｅxample.org"])
async def test_lookalike_addresses_are_the_same_account(api, make_user, qjm_services, lookalike):
    boss = await make_user(email="boss@example.org")
    r = await api.post("auth/register", json={"email": lookalike, "password": "impostor password"})
    assert r.status_code in (202, 422), r.text
    assert await qjm_services.store.count_users() == 1
    assert (await qjm_services.store.get_user(boss.id)).email == "boss@example.org"


async def test_delete_me_removes_outbox_rows(api, make_user, qjm_services):
    user = await make_user()
    assert (await api.post("auth/password/forgot", json={"email": user.email})).status_code == 202
    assert await mails(qjm_services, user.email)
    r = await api.request("DELETE", "me", headers=user.headers, json={"password": user.password})
    assert r.status_code == 204
    assert await mails(qjm_services, user.email) == []
    assert await qjm_services.store.count_outbox(user_id=user.id) == 0


def _mann_whitney_z(a: list[float], b: list[float]) -> float:
    """|z| of the Mann-Whitney U statistic (normal approximation, ties averaged)."""
    pooled = sorted((v, i) for i, v in enumerate(a + b))
    ranks = [0.0] * len(pooled)
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[pooled[k][1]] = (i + j) / 2 + 1
        i = j + 1
    n1, n2 = len(a), len(b)
    u = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    mean, sd = n1 * n2 / 2, (n1 * n2 * (n1 + n2 + 1) / 12) ** 0.5
    return abs(u - mean) / sd


@pytest.mark.parametrize("path", ["auth/password/forgot", "auth/verify/request"])
async def test_known_and_unknown_addresses_take_the_same_time(api, qjm_services, path, monkeypatch):
    import qjm_jupyter_server.accounts

    tune(qjm_services, login_fail_limit=100_000)
    # every request for the known address really mails (the per-recipient budget would
    # otherwise stop the mail after a few, hiding the difference this test looks for)
    monkeypatch.setattr(qjm_jupyter_server.accounts, "MAILS_PER_RECIPIENT", 100_000)
    r = await api.post("auth/register", json={"email": "known@example.org", "password": "known password"})
    assert r.status_code == 202
    known: list[float] = []
    unknown: list[float] = []
    pair = [("known@example.org", known), ("nobody@example.org", unknown)]
    for n in range(200):  # interleaved, in alternating order, so noise falls on both alike
        for email, sample in pair if n % 2 else pair[::-1]:
            t0 = time.perf_counter()
            r = await api.post(path, json={"email": email})
            sample.append(time.perf_counter() - t0)
            assert r.status_code == 202
            await qjm_services.accounts.settle()  # mail work after the answer is not this request's time
    z = _mann_whitney_z(known, unknown)
    ratio = statistics.median(known) / statistics.median(unknown)
    print(f"{path}: median known {statistics.median(known) * 1000:.2f} ms, unknown "
          f"{statistics.median(unknown) * 1000:.2f} ms, ratio {ratio:.3f}, Mann-Whitney |z| {z:.2f}")
    assert z < 3.3, (ratio, z)  # p > 0.001: no difference the samples can show
