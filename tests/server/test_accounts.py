"""Accounts over the real server: the whole life of an account, form login, enumeration
safety and login throttling. Tokens are read out of the real outbox rows (the emails)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from qjm_jupyter_server.accounts import AccountService
from qjm_jupyter_server.errors import TooManyRequests
from qjm_jupyter_server.notify.sealing import unseal
from qjm_jupyter_server.store import open_store
from tests.fixtures.server import ibm_key

CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/abc123:inst-0001::"
# secrets.token_urlsafe(32) is 43 url-safe characters
TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")


async def mails(services: Any, to_addr: str, kind: str | None = None) -> list[Any]:
    """Outbox rows to this address, once the mail work of answered requests is done
    (forgot-password and verify-request answer first, then look the address up)."""
    await services.accounts.settle()
    rows = await services.store.list_notifications(None, 500, 0)
    return [n for n in rows if n.to_addr == to_addr and (kind is None or n.kind == kind)]


async def mailed_token(services: Any, to_addr: str, kind: str) -> str:
    """The token in the newest email of this kind to this address (as a user would click it;
    the row is sealed at rest, the sender opens it with the key ring)."""
    rows = await mails(services, to_addr, kind)
    assert rows, f"no {kind} email to {to_addr}"
    found = TOKEN_RE.findall(unseal(services.keyring, rows[0]).text)
    assert found, f"no token in the {kind} email: {rows[0].text!r}"
    return found[0]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(api: Any, email: str, password: str) -> str:
    r = await api.post("auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


async def test_account_lifecycle(api, qjm_services):
    email, pw, key = "Alice@Example.org", "correct horse battery", ibm_key()
    r = await api.post(
        "auth/register", json={"email": email, "password": pw, "ibm_quantum_token": key, "default_instance": CRN}
    )
    assert r.status_code == 202, r.text
    assert set(r.json()) == {"message"}
    email = email.lower()
    stored = await qjm_services.store.get_user_by_email(email)
    assert stored is not None and not stored.is_verified
    assert stored.password_hash.startswith("$2") and pw not in stored.password_hash
    assert stored.ibm_key_cipher and key not in stored.ibm_key_cipher
    assert qjm_services.keyring.decrypt(stored.id, stored.ibm_key_cipher) == key

    # verification
    token = await mailed_token(qjm_services, email, "verify")
    r = await api.post("auth/verify/confirm", json={"token": token})
    assert r.status_code == 200, r.text
    assert r.json()["is_verified"] is True
    r = await api.post("auth/verify/confirm", json={"token": token})
    assert r.status_code == 400 and r.json()["error"]["field"] == "token"  # single use

    # login + me
    r = await api.post("auth/login", json={"email": email.upper(), "password": pw})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    access = body["access_token"]
    r = await api.get("me", headers=bearer(access))
    assert r.status_code == 200
    me = r.json()
    assert set(me) == {"id", "email", "is_verified", "is_admin", "is_active", "created_at", "default_instance", "notify_default", "ibm_key"}
    assert me["email"] == email and me["default_instance"] == CRN and me["is_admin"] is False
    assert me["ibm_key"]["set"] is True and me["ibm_key"]["last4"] == key[-4:] and me["ibm_key"]["state"] == "ok"
    assert me["created_at"].endswith("Z") and me["ibm_key"]["updated_at"].endswith("Z")
    assert me["notify_default"] == ["CANCELLED", "DONE", "ERROR"]

    # profile updates that need no password
    key2 = ibm_key()
    r = await api.patch(
        "me", headers=bearer(access), json={"notify_default": ["failed", "Done", "running"], "ibm_quantum_token": key2}
    )
    assert r.status_code == 200, r.text
    assert r.json()["notify_default"] == ["RUNNING", "DONE", "ERROR"]
    assert r.json()["ibm_key"]["last4"] == key2[-4:]
    r = await api.patch("me", headers=bearer(access), json={"ibm_quantum_token": None, "default_instance": None})
    assert r.status_code == 200, r.text
    assert r.json()["ibm_key"] == {**r.json()["ibm_key"], "set": False, "last4": None, "state": "none"}
    assert r.json()["default_instance"] is None
    assert (await qjm_services.store.get_user(me["id"])).ibm_key_cipher is None
    r = await api.patch("me", headers=bearer(access), json={"default_instance": "crn:v1:nope"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "default_instance"

    # email change: needs the current password, then re-verification of the new address
    new_email = "alice.new@example.org"
    r = await api.patch("me", headers=bearer(access), json={"email": new_email})
    assert r.status_code == 422 and r.json()["error"]["field"] == "current_password"
    r = await api.patch("me", headers=bearer(access), json={"email": new_email, "current_password": "wrong password"})
    assert r.status_code == 403 and r.json()["error"]["field"] == "current_password"
    r = await api.patch("me", headers=bearer(access), json={"email": new_email, "current_password": pw})
    assert r.status_code == 200 and r.json()["email"] == email  # unchanged until confirmed
    token = await mailed_token(qjm_services, new_email, "verify")
    r = await api.post("auth/verify/confirm", json={"token": token})
    assert r.status_code == 200 and r.json()["email"] == new_email
    assert await mails(qjm_services, email, "notice"), "the old address is told about the change"
    email = new_email
    r = await api.post("auth/login", json={"email": "alice@example.org", "password": pw})
    assert r.status_code == 401
    # the address is a credential: its change ended every session
    assert (await api.get("me", headers=bearer(access))).status_code == 401
    access = await login(api, email, pw)

    # password change: needs the current password, revokes older tokens
    r = await api.patch("me", headers=bearer(access), json={"password": "a brand new password"})
    assert r.status_code == 422
    r = await api.patch(
        "me", headers=bearer(access), json={"password": "a brand new password", "current_password": pw}
    )
    assert r.status_code == 200, r.text
    assert (await api.get("me", headers=bearer(access))).status_code == 401
    pw = "a brand new password"
    access = await login(api, email, pw)

    # forgot / reset: revokes tokens, old password dead, new one works
    r = await api.post("auth/password/forgot", json={"email": email})
    assert r.status_code == 202
    token = await mailed_token(qjm_services, email, "reset")
    r = await api.post("auth/password/reset", json={"token": token, "password": "short"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "password"
    r = await api.post("auth/password/reset", json={"token": token, "password": "reset password 123"})
    assert r.status_code == 200, r.text
    r = await api.post("auth/password/reset", json={"token": token, "password": "reset password 456"})
    assert r.status_code == 400  # single use
    assert (await api.get("me", headers=bearer(access))).status_code == 401
    assert (await api.post("auth/login", json={"email": email, "password": pw})).status_code == 401
    pw = "reset password 123"
    access = await login(api, email, pw)

    # logout everywhere
    other = await login(api, email, pw)
    r = await api.post("auth/logout-all", headers=bearer(access))
    assert r.status_code == 204
    for tok in (access, other):
        assert (await api.get("me", headers=bearer(tok))).status_code == 401
    access = await login(api, email, pw)

    # delete: needs the password
    r = await api.request("DELETE", "me", headers=bearer(access), json={"password": "not it"})
    assert r.status_code == 403
    r = await api.request("DELETE", "me", headers=bearer(access), json={"password": pw})
    assert r.status_code == 204
    assert await qjm_services.store.get_user_by_email(email) is None
    assert (await api.get("me", headers=bearer(access))).status_code == 401
    assert (await api.post("auth/login", json={"email": email, "password": pw})).status_code == 401


async def test_form_login_and_long_passwords(api, make_user):
    # 100 four-byte characters: far past bcrypt's 72 bytes; the pre-hash keeps every one significant
    long_pw = "\U0001f600" * 100
    user = await make_user(password=long_pw)
    r = await api.post("auth/login", data={"username": user.email, "password": long_pw, "grant_type": "password"})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email"] == user.email
    r = await api.post("auth/login", data={"username": user.email, "password": "\U0001f600" * 99 + "\U0001f601"})
    assert r.status_code == 401
    r = await api.post("auth/login", data={"username": user.email, "password": long_pw, "bogus": "1"})
    assert r.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": "long enough"},
        {"email": "a@example.org", "password": "short"},
        {"email": "a@example.org", "password": "x" * 1025},
        {"email": "a@example.org", "password": "long enough", "admin": True},
        {"email": "a@example.org", "password": "long enough", "default_instance": "my-instance"},
        {"email": "a@example.org", "password": "long enough", "ibm_quantum_token": "k" * 2000},
        {"email": "a@example.org\r\nBcc: x@evil.org", "password": "long enough"},
    ],
)
async def test_register_validation(api, body):
    r = await api.post("auth/register", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid"


async def test_no_enumeration(api, make_user, qjm_services):
    known = await make_user()
    for path, extra in (
        ("auth/register", {"password": "some password here"}),
        ("auth/password/forgot", {}),
        ("auth/verify/request", {}),
    ):
        r1 = await api.post(path, json={"email": known.email, **extra})
        r2 = await api.post(path, json={"email": "nobody-here@example.org", **extra})
        assert (r1.status_code, r1.content) == (r2.status_code, r2.content), path
        assert r1.status_code == 202
    # the existing owner is told, not re-registered; their password still works
    assert await mails(qjm_services, known.email, "notice")
    await login(api, known.email, known.password)
    # login: same answer for an unknown account and a wrong password
    r1 = await api.post("auth/login", json={"email": known.email, "password": "wrong password"})
    r2 = await api.post("auth/login", json={"email": "nobody-here@example.org", "password": "wrong password"})
    assert (r1.status_code, r1.json()) == (r2.status_code, r2.json()) == (401, r1.json())


async def test_login_throttle_per_account_survives_a_new_store(api, make_user, qjm_services, qjm_config):
    accounts = qjm_services.accounts
    accounts.settings = dataclasses.replace(accounts.settings, login_fail_limit=3)
    user = await make_user()
    for _ in range(3):
        r = await api.post("auth/login", json={"email": user.email, "password": "wrong password"})
        assert r.status_code == 401
    r = await api.post("auth/login", json={"email": user.email, "password": user.password})
    assert r.status_code == 429, r.text
    retry = int(r.headers["Retry-After"])
    assert 0 < retry <= accounts.settings.login_fail_window
    assert r.json()["error"]["code"] == "rate_limited"

    # a fresh store on the same database file (a restart, another process) still refuses that client
    store = open_store(qjm_config["db_url"])
    await store.open()
    try:
        fresh = AccountService(store, qjm_services.keyring, qjm_services.messages, accounts.settings, qjm_services.clock)
        with pytest.raises(TooManyRequests):
            await fresh.login(user.email, user.password, "127.0.0.1")
    finally:
        await store.close()


async def test_login_throttle_per_address_and_success_clears_account(api, make_user, qjm_services):
    accounts = qjm_services.accounts
    accounts.settings = dataclasses.replace(accounts.settings, login_fail_limit=4)
    a = await make_user()
    # two failures then a success: the account counter is cleared...
    for _ in range(2):
        assert (await api.post("auth/login", json={"email": a.email, "password": "nope nope"})).status_code == 401
    await login(api, a.email, a.password)
    assert (await qjm_services.store.throttle_get(_pair_key(a.email, "127.0.0.1"))) is None
    # ...but the address keeps its count: two more failures on other accounts spend it
    for i in range(2):
        r = await api.post("auth/login", json={"email": f"ghost{i}@example.org", "password": "nope nope"})
        assert r.status_code == 401
    r = await api.post("auth/login", json={"email": a.email, "password": a.password})
    assert r.status_code == 429 and "Retry-After" in r.headers


def _pair_key(email: str, client: str) -> str:
    from qjm_jupyter_server.throttle import throttle_key

    return throttle_key("login-pair", email, client)


async def test_forgot_is_throttled_per_address(api, qjm_services):
    accounts = qjm_services.accounts
    accounts.settings = dataclasses.replace(accounts.settings, login_fail_limit=2)
    for _ in range(2):
        assert (await api.post("auth/password/forgot", json={"email": "x@example.org"})).status_code == 202
    r = await api.post("auth/password/forgot", json={"email": "y@example.org"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


async def test_verify_request_resends_for_unverified_only(api, qjm_services, make_user):
    r = await api.post("auth/register", json={"email": "bob@example.org", "password": "bob password"})
    assert r.status_code == 202
    first = await mailed_token(qjm_services, "bob@example.org", "verify")
    r = await api.post("auth/verify/request", json={"email": "bob@example.org"})
    assert r.status_code == 202
    second = await mailed_token(qjm_services, "bob@example.org", "verify")
    assert first != second
    r = await api.post("auth/verify/confirm", json={"token": second})
    assert r.status_code == 200
    # consuming one removed the user's other verification tokens
    r = await api.post("auth/verify/confirm", json={"token": first})
    assert r.status_code == 400
    before = len(await mails(qjm_services, "bob@example.org", "verify"))
    await api.post("auth/verify/request", json={"email": "bob@example.org"})
    assert len(await mails(qjm_services, "bob@example.org", "verify")) == before  # already verified


class TestConfiguredAdmins:
    @pytest.fixture
    def qjm_config(self, qjm_config):
        qjm_config["admin_emails"] = ["Boss@Example.org"]
        return qjm_config

    async def test_admin_once_verified(self, api, qjm_services):
        # registered through the API, NOT verified: not an admin (whoever registers first is not the owner)
        r = await api.post("auth/register", json={"email": "boss@example.org", "password": "boss password"})
        assert r.status_code == 202
        token = await login(api, "boss@example.org", "boss password")
        assert (await api.get("me", headers=bearer(token))).json()["is_admin"] is False
        # verified (the mailbox's owner clicked the link): admin
        link = await mailed_token(qjm_services, "boss@example.org", "verify")
        assert (await api.post("auth/verify/confirm", json={"token": link})).json()["is_admin"] is True
        assert (await api.get("me", headers=bearer(token))).json()["is_admin"] is True
        r = await api.post("auth/register", json={"email": "pleb@example.org", "password": "pleb password"})
        link = await mailed_token(qjm_services, "pleb@example.org", "verify")
        assert (await api.post("auth/verify/confirm", json={"token": link})).json()["is_admin"] is False

    async def test_promoted_at_open_only_when_verified(self, api, qjm_services, qjm_config):
        # an account that existed before the address was configured is promoted when the store
        # opens, but only once its address is verified
        r = await api.post("auth/register", json={"email": "boss@example.org", "password": "boss password"})
        assert r.status_code == 202
        store = open_store(qjm_config["db_url"])
        await store.open()
        try:
            fresh = AccountService(store, qjm_services.keyring, qjm_services.messages, qjm_services.settings, qjm_services.clock)
            await fresh.promote_configured_admins()
            assert (await store.get_user_by_email("boss@example.org")).is_admin is False
            link = await mailed_token(qjm_services, "boss@example.org", "verify")
            assert (await api.post("auth/verify/confirm", json={"token": link})).status_code == 200
            boss = await store.get_user_by_email("boss@example.org")
            await store.update_user(boss.id, {"is_admin": False})  # as before the address was configured
            await fresh.promote_configured_admins()
            assert (await store.get_user_by_email("boss@example.org")).is_admin is True
        finally:
            await store.close()
