"""KeyRing: generated secrets (0600 files, reused), configured ones (strength checked),
IBM keys bound to their owner, rotation; and the server using generated secrets."""

from __future__ import annotations

import logging
import os
import stat

import jwt
import pytest
from cryptography.fernet import Fernet

from qjm_jupyter_server.app import QJMServerApp
from qjm_jupyter_server.secrets import BadTokenKeys, KeyRing, UndecryptableKey, WeakSecret
from tests.fixtures.server import JWT_SECRET, fernet_key, ibm_key
from tests.server.test_accounts import bearer

log = logging.getLogger("test-qjm-secrets")


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_generated_once_private_and_reused(tmp_path):
    data = tmp_path / "deep" / "qjm"
    ring = KeyRing.load_or_create(data, None, None, log)
    assert mode(data) == 0o700
    assert mode(data / "jwt_secret") == 0o600 and mode(data / "token_keys") == 0o600
    assert len(ring.jwt_secret) >= 48
    Fernet((data / "token_keys").read_text().strip())  # a valid Fernet key
    cipher = ring.encrypt("u1", "the-key")

    again = KeyRing.load_or_create(data, None, None, log)  # a restart
    assert again.jwt_secret == ring.jwt_secret
    assert again.decrypt("u1", cipher) == "the-key"
    other = KeyRing.load_or_create(tmp_path / "elsewhere", None, None, log)
    assert other.jwt_secret != ring.jwt_secret
    with pytest.raises(UndecryptableKey):
        other.decrypt("u1", cipher)


def test_configured_values_win_and_write_nothing(tmp_path):
    keys = fernet_key()
    ring = KeyRing.load_or_create(tmp_path / "qjm", JWT_SECRET, keys, log)
    assert ring.jwt_secret == JWT_SECRET.encode()
    assert not (tmp_path / "qjm").exists()
    assert KeyRing.load_or_create(tmp_path / "x", JWT_SECRET, keys, log).decrypt("u", ring.encrypt("u", "k" * 10)) == "k" * 10


def test_loose_permissions_are_fixed_with_a_warning(tmp_path, caplog):
    data = tmp_path / "qjm"
    KeyRing.load_or_create(data, None, None, log)
    os.chmod(data / "jwt_secret", 0o644)
    with caplog.at_level(logging.WARNING, logger=log.name):
        KeyRing.load_or_create(data, None, None, log)
    assert mode(data / "jwt_secret") == 0o600
    assert any("readable by group/others" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("secret", ["hunter2", "x" * 31, "ü" * 15])
def test_weak_configured_secret_is_refused(tmp_path, secret):
    with pytest.raises(WeakSecret) as info:
        KeyRing.load_or_create(tmp_path, secret, fernet_key(), log)
    assert "c.QJMServerApp.jwt_secret" in str(info.value) and "QJM_JWT_SECRET" in str(info.value)
    assert secret not in str(info.value)


def test_weak_secret_stops_the_app(tmp_path):
    app = QJMServerApp(data_dir=str(tmp_path), jwt_secret="short", token_keys=fernet_key())
    with pytest.raises(WeakSecret):
        app.build_services()


def test_bad_token_keys_are_refused_without_echo(tmp_path):
    bad = "definitely-not-a-fernet-key"
    with pytest.raises(BadTokenKeys) as info:
        KeyRing.load_or_create(tmp_path, JWT_SECRET, f"{fernet_key()};{bad}", log)
    assert bad not in str(info.value) and "#2" in str(info.value)
    with pytest.raises(BadTokenKeys):
        KeyRing.load_or_create(tmp_path, JWT_SECRET, " ; ", log)


def test_ciphertext_is_bound_to_its_owner(tmp_path):
    ring = KeyRing.load_or_create(tmp_path, JWT_SECRET, fernet_key(), log)
    a, b = ring.encrypt("user-a", "key-of-a"), ring.encrypt("user-b", "key-of-b")
    assert "key-of-a" not in a
    assert ring.decrypt("user-a", a) == "key-of-a"
    with pytest.raises(UndecryptableKey):
        ring.decrypt("user-b", a)  # a row copied onto another account
    with pytest.raises(UndecryptableKey):
        ring.rotate("user-a", b)
    with pytest.raises(UndecryptableKey):
        ring.decrypt("user-a", a[:-4] + "AAAA")


def test_rotation_moves_to_the_newest_key(tmp_path):
    old, new = fernet_key(), fernet_key()
    old_ring = KeyRing.load_or_create(tmp_path, JWT_SECRET, old, log)
    cipher = old_ring.encrypt("u", "the-ibm-key")
    both = KeyRing.load_or_create(tmp_path, JWT_SECRET, f"{new};{old}", log)
    assert both.decrypt("u", cipher) == "the-ibm-key"  # old rows still readable before rotation
    rotated = both.rotate("u", cipher)
    new_only = KeyRing.load_or_create(tmp_path, JWT_SECRET, new, log)
    assert new_only.decrypt("u", rotated) == "the-ibm-key"
    with pytest.raises(UndecryptableKey):
        new_only.decrypt("u", cipher)
    with pytest.raises(UndecryptableKey):
        old_ring.decrypt("u", rotated)


class TestGeneratedSecretsOnTheServer:
    @pytest.fixture
    def qjm_config(self, qjm_config):
        qjm_config["jwt_secret"] = ""
        qjm_config["token_keys"] = ""
        return qjm_config

    async def test_server_generates_and_a_restart_reuses(self, api, make_user, qjm_services, qjm_data_dir):
        user = await make_user(ibm_quantum_token=ibm_key())
        for name in ("jwt_secret", "token_keys"):
            assert mode(qjm_data_dir / name) == 0o600, name
        # a restarted server loads the same files: the token and the stored key stay valid
        restarted = KeyRing.load_or_create(qjm_data_dir, None, None, log)
        assert restarted.jwt_secret == qjm_services.keyring.jwt_secret
        claims = jwt.decode(user.token, restarted.jwt_secret, algorithms=["HS256"], audience="qjm")
        assert claims["sub"] == user.id
        stored = await qjm_services.store.get_user(user.id)
        assert restarted.decrypt(user.id, stored.ibm_key_cipher).startswith("qjmtestkey-")
        # and the fixture secret is not what signs here
        forged = jwt.encode({**claims}, JWT_SECRET, algorithm="HS256")
        assert (await api.get("me", headers=bearer(forged))).status_code == 401
        assert (await api.get("me", headers=user.headers)).status_code == 200
