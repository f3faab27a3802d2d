"""`jupyter qjm rotate-keys` and `jupyter qjm create-admin`, run as real commands on the
database of a real server (configured through QJM_* variables, as an operator would)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from qjm_jupyter_server.secrets import KeyRing, UndecryptableKey
from tests.fixtures.server import JWT_SECRET, fernet_key, ibm_key

pytestmark = pytest.mark.slow  # each command is a fresh Python importing jupyter_server

BIN = Path(sys.executable).parent
OLD_KEY = fernet_key()


@pytest.fixture
def qjm_config(qjm_config):
    qjm_config["token_keys"] = OLD_KEY
    return qjm_config


async def jupyter_qjm(qjm_config: dict[str, Any], token_keys: str, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "QJM_DATA_DIR": qjm_config["data_dir"],
        "QJM_DB_URL": qjm_config["db_url"],
        "QJM_JWT_SECRET": JWT_SECRET,
        "QJM_TOKEN_KEYS": token_keys,
    }
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "jupyter"), "qjm", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_rotate_keys(make_user, qjm_services, qjm_config, qjm_data_dir):
    with_key = [await make_user(ibm_quantum_token=ibm_key()) for _ in range(2)]
    await make_user()  # no key: nothing to rotate
    new_key = fernet_key()
    code, out, err = await jupyter_qjm(qjm_config, f"{new_key};{OLD_KEY}", "rotate-keys")
    assert code == 0, err
    assert "rotated 2 " in out
    new_only = KeyRing.load_or_create(qjm_data_dir, JWT_SECRET, new_key)
    old_only = KeyRing.load_or_create(qjm_data_dir, JWT_SECRET, OLD_KEY)
    for user in with_key:
        cipher = (await qjm_services.store.get_user(user.id)).ibm_key_cipher
        assert new_only.decrypt(user.id, cipher).startswith("qjmtestkey-")
        with pytest.raises(UndecryptableKey):
            old_only.decrypt(user.id, cipher)

    # with a key list that cannot open the rows, nothing is touched and the exit code says so
    code, out, err = await jupyter_qjm(qjm_config, fernet_key(), "rotate-keys")
    assert code == 1 and "could not be decrypted" in err
    for user in with_key:
        cipher = (await qjm_services.store.get_user(user.id)).ibm_key_cipher
        assert new_only.decrypt(user.id, cipher).startswith("qjmtestkey-")


async def test_create_admin(api, make_user, qjm_services, qjm_config):
    user = await make_user()
    r = await api.get("admin/users", headers=user.headers)
    assert r.status_code == 403
    code, out, err = await jupyter_qjm(qjm_config, OLD_KEY, "create-admin", user.email.upper())
    assert code == 0, err
    assert user.email in out
    assert (await qjm_services.store.get_user(user.id)).is_admin is True
    r = await api.get("admin/users", headers=user.headers)
    assert r.status_code == 200

    code, out, err = await jupyter_qjm(qjm_config, OLD_KEY, "create-admin", "ghost@example.org")
    assert code == 2
    assert "no account with the email 'ghost@example.org'" in err
    assert "Traceback" not in err
