"""Attacks on the account layer, over the real server: forged and revoked tokens, one
user reaching another's data, admin routes, Jupyter's own auth, keys at rest."""

from __future__ import annotations

import base64
import json
import time
import warnings
from pathlib import Path
from typing import Any

import jwt
import jwt.warnings
import pytest
from jupyter_server.serverapp import JupyterServerAuthWarning, ServerApp
from traitlets.config import Config

from qjm_jupyter_server.handlers import HANDLERS
from qjm_jupyter_server.handlers.base import VERBS
from tests.fixtures.server import JWT_SECRET, fernet_key, ibm_key
from tests.server.test_accounts import bearer


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(user_id: str, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + 600, "iss": "qjm-jupyter", "aud": "qjm", "tv": 0}
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"sig") -> str:
    return ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature)])


def _bad_tokens(user_id: str) -> dict[str, str]:
    good = jwt.encode(_claims(user_id), JWT_SECRET, algorithm="HS256")
    head, body, sig = good.split(".")
    tampered_claims = _b64(json.dumps(_claims(user_id, tv=1)).encode())
    now = int(time.time())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)  # short for HS512 on purpose
        hs512 = jwt.encode(_claims(user_id), JWT_SECRET, algorithm="HS512")
    out = {
        "tampered payload": f"{head}.{tampered_claims}.{sig}",
        "tampered signature": f"{head}.{body}.{sig[:-2]}{'AA' if not sig.endswith('AA') else 'BB'}",
        "other secret": jwt.encode(_claims(user_id), "another-secret-" + "y" * 40, algorithm="HS256"),
        "expired": jwt.encode(_claims(user_id, iat=now - 7200, exp=now - 3600), JWT_SECRET, algorithm="HS256"),
        "HS512": hs512,
        "RS256-looking": _forge({"alg": "RS256", "typ": "JWT"}, _claims(user_id), b"\x00" * 256),
        "alg none": _forge({"alg": "none", "typ": "JWT"}, _claims(user_id), b""),
        "wrong audience": jwt.encode(_claims(user_id, aud="jupyter"), JWT_SECRET, algorithm="HS256"),
        "wrong issuer": jwt.encode(_claims(user_id, iss="someone-else"), JWT_SECRET, algorithm="HS256"),
        "future iat": jwt.encode(_claims(user_id, iat=now + 3600, exp=now + 7200), JWT_SECRET, algorithm="HS256"),
        "string tv": jwt.encode(_claims(user_id, tv="0"), JWT_SECRET, algorithm="HS256"),
        "unknown user": jwt.encode(_claims("u-nobody"), JWT_SECRET, algorithm="HS256"),
        "garbage": "not.a.jwt",
        "huge": "a" * 5000,
    }
    for claim in ("sub", "iat", "exp", "iss", "aud", "tv"):
        claims = _claims(user_id)
        del claims[claim]
        out[f"missing {claim}"] = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    return out


async def test_forged_tokens_are_refused(api, make_user):
    user = await make_user()
    # the harness itself: a correctly made token for this user is accepted
    good = jwt.encode(_claims(user.id), JWT_SECRET, algorithm="HS256")
    assert (await api.get("me", headers=bearer(good))).status_code == 200
    for name, token in _bad_tokens(user.id).items():
        r = await api.get("me", headers=bearer(token))
        assert r.status_code == 401, f"{name}: {r.status_code} {r.text}"
        assert r.json()["error"]["code"] == "unauthorized", name
        assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), name
    for headers in ({}, {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer"}, {"Authorization": f"token {user.token}"}):
        assert (await api.get("me", headers=headers)).status_code == 401, headers


async def test_users_cannot_reach_each_other(api, make_user, qjm_services):
    a = await make_user(ibm_quantum_token=ibm_key())
    b = await make_user(password="b's own password")
    # `me` is always the token's user
    assert (await api.get("me", headers=b.headers)).json()["id"] == b.id
    r = await api.patch("me", headers=b.headers, json={"notify_default": ["RUNNING"]})
    assert r.status_code == 200 and r.json()["id"] == b.id
    assert (await qjm_services.store.get_user(a.id)).notify_default == ["CANCELLED", "DONE", "ERROR"]
    # no id can be smuggled into the body
    r = await api.patch("me", headers=b.headers, json={"id": a.id, "is_admin": True})
    assert r.status_code == 422
    # B cannot delete A, even knowing A's password: deletion applies to the caller
    r = await api.request("DELETE", "me", headers=b.headers, json={"password": a.password})
    assert r.status_code == 403
    assert await qjm_services.store.get_user(a.id) is not None
    # admin routes are for admins
    assert (await api.get("admin/users", headers=b.headers)).status_code == 403
    r = await api.patch(f"admin/users/{a.id}", headers=b.headers, json={"is_active": False})
    assert r.status_code == 403
    r = await api.patch(f"admin/users/{b.id}", headers=b.headers, json={"is_admin": True})
    assert r.status_code == 403
    assert (await qjm_services.store.get_user(a.id)).is_active is True
    assert (await qjm_services.store.get_user(b.id)).is_admin is False
    assert (await api.get("admin/users")).status_code == 401


class TestAdmin:
    @pytest.fixture
    def qjm_config(self, qjm_config):
        qjm_config["admin_emails"] = ["root@example.org"]
        return qjm_config

    async def test_admin_routes(self, api, make_user):
        root = await make_user(email="root@example.org")
        b = await make_user()
        r = await api.get("admin/users", headers=root.headers, params={"limit": 1})
        assert r.status_code == 200, r.text
        assert r.json()["total"] == 2 and [u["email"] for u in r.json()["users"]] == ["root@example.org"]
        r = await api.get("admin/users", headers=root.headers, params={"limit": 1, "offset": 1})
        assert [u["id"] for u in r.json()["users"]] == [b.id]
        assert (await api.get("admin/users", headers=root.headers, params={"limit": 0})).status_code == 422

        # deactivation revokes B's tokens and blocks login; reactivation lets B log in again
        r = await api.patch(f"admin/users/{b.id}", headers=root.headers, json={"is_active": False})
        assert r.status_code == 200 and r.json()["is_active"] is False
        assert (await api.get("me", headers=b.headers)).status_code == 401
        r = await api.post("auth/login", json={"email": b.email, "password": b.password})
        assert r.status_code == 403
        r = await api.patch(f"admin/users/{b.id}", headers=root.headers, json={"is_active": True, "is_admin": True})
        assert r.status_code == 200 and r.json()["is_admin"] is True
        r = await api.post("auth/login", json={"email": b.email, "password": b.password})
        assert r.status_code == 200
        assert (await api.get("admin/users", headers=bearer(r.json()["access_token"]))).status_code == 200

        # no self-lockout; unknown ids are 404
        r = await api.patch(f"admin/users/{root.id}", headers=root.headers, json={"is_admin": False})
        assert r.status_code == 422
        r = await api.patch("admin/users/u-missing", headers=root.headers, json={"is_active": False})
        assert r.status_code == 404
        r = await api.patch(f"admin/users/{b.id}", headers=root.headers, json={"is_active": False, "email": "x@y.org"})
        assert r.status_code == 422


async def test_ibm_key_never_leaves_nor_rests_in_clear(api, make_user, qjm_services, qjm_config):
    key = ibm_key()
    user = await make_user(ibm_quantum_token=key)  # every response is scanned by the api hook
    key2 = ibm_key()
    r = await api.patch("me", headers=user.headers, json={"ibm_quantum_token": key2})
    assert r.status_code == 200
    assert (await api.get("me", headers=user.headers)).json()["ibm_key"]["last4"] == key2[-4:]
    assert (await api.get("openapi.json")).status_code in (200, 404)
    stored = await qjm_services.store.get_user(user.id)
    assert qjm_services.keyring.decrypt(user.id, stored.ibm_key_cipher) == key2
    db = Path(qjm_config["db_url"][len("sqlite:///"):])
    files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
    assert files
    for path in files:
        data = path.read_bytes()
        for secret in (key, key2, user.password):
            assert secret.encode() not in data, f"{secret[:6]}… in clear in {path.name}"


def test_every_qjm_verb_opts_out_of_jupyter_auth():
    # the base class must have marked every verb a handler defines (they check the JWT themselves)
    seen = 0
    for handler in HANDLERS:
        for verb in VERBS:
            if verb in handler.__dict__:
                seen += 1
                assert getattr(handler.__dict__[verb], "__allow_unauthenticated", False), f"{handler.__name__}.{verb}"
    assert seen >= 10


def test_locked_server_emits_no_auth_warning(tmp_path, jp_environ):
    """The extension template's check_auth idea: with Jupyter's auth locked, building the
    server warns about every extension verb that opted out of nothing."""
    data = tmp_path / "qjm"
    config = Config(
        {
            "ServerApp": {
                "allow_unauthenticated_access": False,
                "jpserver_extensions": {"qjm_jupyter_server": True, "jupyter_server_terminals": False},
                "reraise_server_extension_failures": True,
                "root_dir": str(tmp_path),
            },
            "QJMServerApp": {"data_dir": str(data), "jwt_secret": JWT_SECRET, "token_keys": fernet_key()},
        }
    )
    app = ServerApp(config=config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app.initialize(argv=[], find_extensions=False, new_httpserver=False)
    try:
        assert app.extension_manager.extension_apps.get("qjm_jupyter_server"), "the extension did not load"
        auth_warnings = [w for w in caught if issubclass(w.category, JupyterServerAuthWarning)]
        assert not auth_warnings, [str(w.message) for w in auth_warnings]
    finally:
        ServerApp.clear_instance()


class TestLockedJupyter:
    """With Jupyter's own auth locked down, a qjm JWT opens qjm routes and nothing else."""

    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        jp_server_config["ServerApp"]["allow_unauthenticated_access"] = False
        return jp_server_config

    async def test_qjm_token_is_no_jupyter_token(self, api, make_user, http_server, jp_http_port, jp_base_url, jp_serverapp):
        assert jp_serverapp.allow_unauthenticated_access is False
        user = await make_user()  # public qjm routes work without a Jupyter token
        assert (await api.get("me", headers=user.headers)).status_code == 200
        contents = f"http://127.0.0.1:{jp_http_port}{jp_base_url}api/contents"
        r = await api.get(contents, headers=user.headers)
        assert r.status_code == 403, r.text
        r = await api.get(contents, headers={"Authorization": f"token {jp_serverapp.identity_provider.token}"})
        assert r.status_code == 200  # the harness: the real Jupyter token does open it


ODD_BODIES: list[bytes] = [
    b"",
    b"   ",
    b"not json",
    b"[]",
    b"null",
    b"42",
    b'"text"',
    b'{"email": null, "password": null}',
    b'{"email": 1e999, "password": ["x"]}',
    b'{"email": "a@b.org", "password": "\\ud800\\udfff\\ud800 abcdefgh"}',
    b'{"email": "a@b.org", "password": "\\ud800 abcdefgh"}',
    b'{"token": "' + b"A" * 43 + b'", "password": "long enough pw"}',
    b'{"token": {"$ne": null}}',
    b"\xff\xfe\x00garbage",
    b'{"email": "a@b.org", "password": "x", "email": "c@d.org"}',
    b'{"notify_default": "DONE"}',
    b'{"notify_default": [1, 2]}',
    b'{"ibm_quantum_token": 12345678}',
    b'{"is_active": "maybe"}',
]


async def test_odd_input_never_5xx(api, make_user):
    user = await make_user()
    routes = [
        ("POST", "auth/register"), ("POST", "auth/login"), ("POST", "auth/verify/request"),
        ("POST", "auth/verify/confirm"), ("POST", "auth/password/forgot"), ("POST", "auth/password/reset"),
        ("PATCH", "me"), ("DELETE", "me"), ("PATCH", f"admin/users/{user.id}"),
    ]
    for method, path in routes:
        for body in ODD_BODIES:
            for ctype in ("application/json", "application/x-www-form-urlencoded"):
                r = await api.request(method, path, content=body, headers={**user.headers, "Content-Type": ctype})
                assert r.status_code < 500, f"{method} {path} {body!r} {ctype}: {r.status_code} {r.text}"
                assert r.status_code != 200 or path == "me", f"{method} {path} {body!r} accepted"
                assert "error" in r.json() or r.status_code < 300
    r = await api.get("admin/users", params={"limit": "lots", "offset": "-1"}, headers=user.headers)
    assert r.status_code in (403, 422)
    assert (await api.get("me", headers=user.headers)).status_code == 200  # still alive and logged in
