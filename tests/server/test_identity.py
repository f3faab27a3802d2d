"""Personal mode over a real server: the user Jupyter's own auth accepted is the qjm user.

Jupyter's token (header) and its login cookie (with `_xsrf` for unsafe verbs, exactly as
Jupyter requires) both reach qjm; qjm JWTs keep working beside them; an existing JWT
account is linked, jobs and all, when the Jupyter user confirms its address.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from qjm_jupyter_server.handlers.host_identity import server_owner
from tests.fixtures.server import ibm_key
from tests.server.test_accounts import mailed_token

CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/abc123:inst-0001::"


@pytest.fixture
def jupyter_token(jp_serverapp) -> str:
    token = jp_serverapp.identity_provider.token
    assert token, "the test server must have a Jupyter token"
    return str(token)


def token_auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


async def test_status_says_the_identity_source(api) -> None:
    r = await api.get("status")
    assert r.status_code == 200 and r.json()["identity_source"] == "jupyter"
    assert r.json()["mode"] == "personal"


async def test_jupyter_token_is_the_owner_created_on_first_use(api, jupyter_token, qjm_services) -> None:
    assert await qjm_services.store.count_users() == 0
    first = await api.get("me", headers=token_auth(jupyter_token))
    assert first.status_code == 200, first.text
    me = first.json()
    assert me["email"] == "" and me["is_verified"] is False  # only the address is left to set up
    # Jupyter makes a new random "Anonymous" user for every token request; qjm's user stays one
    again = await api.get("me", headers={"Authorization": f"bearer {jupyter_token}"})
    assert again.status_code == 200 and again.json()["id"] == me["id"]
    assert await qjm_services.store.count_users() == 1
    assert await qjm_services.store.list_identities(me["id"]) == [f"jupyter:{server_owner()}"]
    # it can use the API like any account
    r = await api.post("jobs", json={"job_id": "pm-1", "instance": CRN}, headers=token_auth(jupyter_token))
    assert r.status_code == 201, r.text
    listing = (await api.get("jobs", headers=token_auth(jupyter_token))).json()
    assert [j["job_id"] for j in listing["jobs"]] == ["pm-1"]


async def test_first_requests_at_once_make_one_account(api, jupyter_token, qjm_services) -> None:
    import asyncio

    answers = await asyncio.gather(*(api.get("me", headers=token_auth(jupyter_token)) for _ in range(8)))
    assert {r.status_code for r in answers} == {200}
    assert len({r.json()["id"] for r in answers}) == 1
    assert await qjm_services.store.count_users() == 1


@pytest.mark.parametrize("headers", [{}, {"Authorization": "token wrong-token"}, {"Authorization": "Bearer not-a-jwt"}])
async def test_no_jupyter_identity_is_refused(api, headers: dict[str, str], qjm_services) -> None:
    r = await api.get("me", headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthorized"
    r = await api.post("jobs", json={"job_id": "x", "instance": CRN}, headers=headers)
    assert r.status_code == 401, r.text  # not acted on, and a JSON error, not Jupyter's XSRF page
    assert await qjm_services.store.count_users() == 0


class _Counting:
    """Counts the store's identity reads (the one a host-authenticated request makes)."""

    def __init__(self, store: Any) -> None:
        self.store, self.reads = store, 0
        self._read = store.get_user_by_identity

    async def __call__(self, identity: str) -> Any:
        self.reads += 1
        return await self._read(identity)


async def test_a_host_identity_is_read_once_then_served_from_the_auth_cache(api, jupyter_token, qjm_services,
                                                                             monkeypatch) -> None:
    """Like a JWT's user, the host identity's account comes from authcache.py for its TTL."""
    # a TTL no loaded machine outruns: the count below is then about the cache, not the clock
    monkeypatch.setattr(qjm_services.store.cache, "ttl_s", 60.0)
    assert (await api.get("me", headers=token_auth(jupyter_token))).status_code == 200  # created
    counting = _Counting(qjm_services.store.wrapped)
    monkeypatch.setattr(qjm_services.store.wrapped, "get_user_by_identity", counting)
    for _ in range(6):
        r = await api.get("jobs", headers=token_auth(jupyter_token))
        assert r.status_code == 200, r.text
    assert counting.reads <= 1, f"{counting.reads} identity reads for 6 requests within the cache's TTL"


async def test_a_cached_host_identity_never_outlives_a_user_write(api, jupyter_token, make_user, qjm_services) -> None:
    """Deactivation, deletion and identity linking show on the very next request (no TTL wait)."""

    async def me() -> httpx.Response:
        return await api.get("me", headers=token_auth(jupyter_token))

    owner = (await me()).json()
    assert (await me()).status_code == 200  # now cached
    store = qjm_services.store
    admin = await make_user()
    await store.update_user(admin.id, {"is_admin": True})
    r = await api.patch(f"admin/users/{owner['id']}", json={"is_active": False}, headers=admin.headers)
    assert r.status_code == 200, r.text
    r = await me()
    assert r.status_code == 403 and r.json()["error"]["code"] == "deactivated", r.text
    r = await api.patch(f"admin/users/{owner['id']}", json={"is_active": True}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert (await me()).json()["id"] == owner["id"]

    # deletion: the deleted account is never acted as again (the identity starts afresh)
    await store.delete_user(owner["id"], now=2)
    r = await me()
    assert r.status_code == 200 and r.json()["id"] != owner["id"], r.text

    # linking (a confirmed address of another account) moves the identity: the next request is that account
    other = await make_user()
    assert (await me()).status_code == 200  # cached again
    await store.bind_identity(f"jupyter:{server_owner()}", other.id, 3, replace=True)
    r = await me()
    assert r.status_code == 200 and r.json()["id"] == other.id, r.text


async def test_an_invalid_qjm_jwt_is_not_excused_by_a_cookie(api, jupyter_token) -> None:
    r = await api.get("me", headers=token_auth(jupyter_token))  # sets Jupyter's login cookie
    assert r.status_code == 200 and api.cookies
    forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    r = await api.get("me", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


async def test_qjm_jwts_keep_working(api, make_user, jupyter_token) -> None:
    user = await make_user()
    r = await api.get("me", headers=user.headers)
    assert r.status_code == 200 and r.json()["id"] == user.id and r.json()["email"] == user.email
    owner = (await api.get("me", headers=token_auth(jupyter_token))).json()
    assert owner["id"] != user.id
    # a JWT needs no XSRF (it is a header, never ambient)
    r = await api.post("jobs", json={"job_id": "jwt-1", "instance": CRN}, headers=user.headers)
    assert r.status_code == 201, r.text


async def test_cookie_requests_need_xsrf_as_jupyter_requires(api, qjm_base, jupyter_token, jp_base_url) -> None:
    root = qjm_base.split(jp_base_url + "qjm/api/")[0] + jp_base_url
    async with httpx.AsyncClient(base_url=qjm_base, timeout=20) as browser:
        # sign in to Jupyter as a browser does: the token once, then Jupyter's cookie
        r = await browser.get(root + "api/status", headers=token_auth(jupyter_token))
        assert r.status_code == 200
        r = await browser.get("me")
        assert r.status_code == 200, r.text
        owner_id = r.json()["id"]
        r = await browser.patch("me", json={"notify_default": ["DONE"]})
        assert r.status_code == 403, r.text  # cookie without the XSRF token
        assert "xsrf" in r.text.lower()
        # Jupyter sets `_xsrf` on the pages it renders (Lab's page; here its login page)
        async with httpx.AsyncClient(timeout=20) as page:
            await page.get(root + "login")
            xsrf = page.cookies.get("_xsrf")
        assert xsrf, "Jupyter set no _xsrf cookie"
        browser.cookies.set("_xsrf", xsrf)
        r = await browser.patch("me", json={"notify_default": ["DONE"]}, headers={"X-XSRFToken": xsrf})
        assert r.status_code == 200, r.text
        assert r.json()["id"] == owner_id and r.json()["notify_default"] == ["DONE"]


async def test_email_is_set_without_a_password_and_confirmed_by_link(api, jupyter_token, qjm_services) -> None:
    me = (await api.get("me", headers=token_auth(jupyter_token))).json()
    r = await api.patch("me", json={"email": "Owner@Example.org"}, headers=token_auth(jupyter_token))
    assert r.status_code == 200, r.text
    assert r.json()["email"] == ""  # unchanged until confirmed
    token = await mailed_token(qjm_services, "owner@example.org", "verify")
    r = await api.post("auth/verify/confirm", json={"token": token})
    assert r.status_code == 200, r.text
    after = (await api.get("me", headers=token_auth(jupyter_token))).json()
    assert after["id"] == me["id"] and after["email"] == "owner@example.org" and after["is_verified"] is True


async def test_an_existing_jwt_account_is_linked_by_confirmed_email(api, make_user, jupyter_token, qjm_services) -> None:
    """Migration: a personal database whose account used a password keeps its jobs."""
    old = await make_user("researcher@example.org")
    r = await api.post("jobs", json={"jobs": [{"job_id": "old-1", "instance": CRN}, {"job_id": "both", "instance": CRN}]},
                       headers=old.headers)
    assert r.status_code == 201, r.text
    # the server now runs with Jupyter identity: the Jupyter user starts out separate ...
    fresh = (await api.get("me", headers=token_auth(jupyter_token))).json()
    assert fresh["id"] != old.id
    r = await api.post("jobs", json={"jobs": [{"job_id": "new-1", "instance": CRN}, {"job_id": "both", "instance": CRN,
                                                                                       "notify_status": ["RUNNING"]}]},
                       headers=token_auth(jupyter_token))
    assert r.status_code == 201, r.text
    # ... claiming the address does nothing until the link in the mail is followed
    key = ibm_key("9f8e7d6c5b4a1234")  # the panel sends the address and the key together
    r = await api.patch("me", json={"email": old.email, "ibm_quantum_token": key}, headers=token_auth(jupyter_token))
    assert r.status_code == 200
    assert (await api.get("me", headers=token_auth(jupyter_token))).json()["id"] == fresh["id"]
    token = await mailed_token(qjm_services, old.email, "verify")
    r = await api.post("auth/verify/confirm", json={"token": token})
    assert r.status_code == 200, r.text
    linked = (await api.get("me", headers=token_auth(jupyter_token))).json()
    assert linked["id"] == old.id and linked["email"] == old.email
    assert linked["ibm_key"]["set"] is True and linked["ibm_key"]["last4"] == "1234"  # not lost with the folded account
    stored = await qjm_services.store.get_user(old.id)
    assert qjm_services.keyring.decrypt(old.id, stored.ibm_key_cipher) == key
    jobs = {j["job_id"]: j for j in (await api.get("jobs", headers=token_auth(jupyter_token))).json()["jobs"]}
    assert sorted(jobs) == ["both", "new-1", "old-1"]
    assert "RUNNING" in jobs["both"]["notify_status"] and "DONE" in jobs["both"]["notify_status"]
    # one account left; the old password and JWTs still work for scripts
    assert await qjm_services.store.count_users() == 1
    assert await qjm_services.store.get_user(fresh["id"]) is None
    r = await api.get("me", headers=old.headers)
    assert r.status_code == 200 and r.json()["id"] == old.id


async def test_two_password_accounts_are_never_merged(api, make_user, qjm_services) -> None:
    a, b = await make_user(), await make_user()
    r = await api.patch("me", json={"email": b.email, "current_password": a.password}, headers=a.headers)
    assert r.status_code == 200
    token = await mailed_token(qjm_services, b.email, "verify")
    r = await api.post("auth/verify/confirm", json={"token": token})
    assert r.status_code == 409, r.text
    assert await qjm_services.store.get_user(a.id) is not None and await qjm_services.store.count_users() == 2


class TestAccountsMode:
    @pytest.fixture
    def qjm_config(self, qjm_config: dict[str, Any]) -> dict[str, Any]:
        return {**qjm_config, "identity_source": "accounts"}

    async def test_jupyter_token_is_not_a_qjm_identity(self, api, jupyter_token, make_user) -> None:
        assert (await api.get("status")).json()["identity_source"] == "accounts"
        r = await api.get("me", headers=token_auth(jupyter_token))
        assert r.status_code == 401 and "bearer" in r.json()["error"]["message"]
        user = await make_user()
        assert (await api.get("me", headers=user.headers)).status_code == 200
