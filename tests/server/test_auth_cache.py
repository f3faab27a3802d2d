"""The login cache (authcache.py) never outlives a revocation: real requests on a real server.

Each test first makes the token's user cached (a successful request), then revokes in
one of the ways an account can be, then checks the very next request with the old
token is refused.
"""

from __future__ import annotations

import asyncio
from typing import Any

from qjm_jupyter_server.authcache import AuthCache
from qjm_jupyter_server.domain import User


async def _cached(api: Any, user: Any) -> None:
    for _ in range(2):  # the second answer comes from the cache
        r = await api.get("me", headers=user.headers)
        assert r.status_code == 200, r.text


async def test_logout_all_revokes_a_cached_token(api, make_user) -> None:
    user = await make_user()
    await _cached(api, user)
    assert (await api.post("auth/logout-all", headers=user.headers)).status_code == 204
    r = await api.get("me", headers=user.headers)
    assert r.status_code == 401, r.text


async def test_password_change_revokes_a_cached_token(api, make_user) -> None:
    user = await make_user()
    await _cached(api, user)
    r = await api.patch("me", headers=user.headers, json={"password": "a brand new password", "current_password": user.password})
    assert r.status_code == 200, r.text
    fresh = r.json().get("access_token")
    assert (await api.get("jobs", headers=user.headers)).status_code == 401
    if fresh:  # the change hands back a token for this session
        assert (await api.get("jobs", headers={"Authorization": f"Bearer {fresh}"})).status_code == 200


async def test_deactivation_by_an_admin_revokes_a_cached_token(api, make_user, qjm_services) -> None:
    admin = await make_user()
    await qjm_services.store.update_user(admin.id, {"is_admin": True})
    user = await make_user()
    await _cached(api, user)
    r = await api.patch(f"admin/users/{user.id}", headers=admin.headers, json={"is_active": False})
    assert r.status_code == 200, r.text
    assert (await api.get("me", headers=user.headers)).status_code == 401


async def test_a_store_write_is_seen_by_the_next_request(api, make_user, qjm_services) -> None:
    """Privileges change with the record: demotion and deletion show at once."""
    admin = await make_user()
    await qjm_services.store.update_user(admin.id, {"is_admin": True})
    assert (await api.get("admin/users", headers=admin.headers)).status_code == 200
    await qjm_services.store.update_user(admin.id, {"is_admin": False})
    assert (await api.get("admin/users", headers=admin.headers)).status_code == 403
    await qjm_services.store.delete_user(admin.id)
    assert (await api.get("me", headers=admin.headers)).status_code == 401


async def test_concurrent_requests_during_logout_all(api, make_user) -> None:
    """Requests in flight while the revocation lands may pass; none after it does."""
    user = await make_user()
    await _cached(api, user)
    burst = [api.get("me", headers=user.headers) for _ in range(20)]
    revoke = api.post("auth/logout-all", headers=user.headers)
    answers = await asyncio.gather(*burst, revoke)
    assert answers[-1].status_code == 204
    after = await asyncio.gather(*(api.get("me", headers=user.headers) for _ in range(20)))
    assert {r.status_code for r in after} == {401}


def _user(tv: int = 0) -> User:
    return User(id="u1", email="a@b.c", password_hash="x", created_at=0, updated_at=0, token_version=tv)


def test_a_read_older_than_a_write_is_not_cached() -> None:
    """The race the generation closes: read, revoke, then the old read tries to land."""
    cache = AuthCache(ttl_s=60)
    generation = cache.generation("u1")  # a request starts reading the user
    cache.forget("u1")  # a revocation lands meanwhile
    cache.remember_user(_user(), generation)  # the old read arrives
    assert cache.user("u1") is None
    cache.remember_user(_user(1), cache.generation("u1"))
    assert cache.user("u1") is not None and cache.user("u1").token_version == 1


def test_users_expire_after_the_ttl() -> None:
    now = [100.0]
    cache = AuthCache(ttl_s=1.0, monotonic=lambda: now[0])
    cache.remember_user(_user(), cache.generation("u1"))
    assert cache.user("u1") is not None
    now[0] += 1.0
    assert cache.user("u1") is None


async def test_status_names_the_database_not_the_tap(api) -> None:
    """The store behind the auth tap is what `GET status` reports (SQLiteStore here)."""
    r = await api.get("status")
    assert r.status_code == 200 and r.json()["store"] == "SQLiteStore", r.text
