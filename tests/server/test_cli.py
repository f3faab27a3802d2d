"""`jupyter qjm rotate-keys` and `jupyter qjm create-admin`, run as real commands on the
database of a real server (configured through QJM_* variables, as an operator would)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qjm_jupyter_server.secrets import KeyRing, UndecryptableKey
from tests.fixtures.process import qjm_env
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


async def test_rotate_keys_re_encrypts_channel_urls(api, make_user, qjm_services, qjm_config, qjm_data_dir):
    """Channel URLs are encrypted with the key ring like IBM keys, so rotate-keys carries them
    to the new key too: after the old key is dropped, channels still deliver."""
    users = [await make_user(), await make_user(ibm_quantum_token=ibm_key())]
    ids = []
    for n, user in enumerate(users):
        r = await api.post("channels", headers=user.headers, json={"url": f"json://8.8.8.8/hook{n}?+X-Token=t{n}"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    new_key = fernet_key()
    code, out, err = await jupyter_qjm(qjm_config, f"{new_key};{OLD_KEY}", "rotate-keys")
    assert code == 0, err
    assert "rotated 1 stored IBM API key(s) and 2 channel URL(s)" in out, out
    new_only = KeyRing.load_or_create(qjm_data_dir, JWT_SECRET, new_key)
    old_only = KeyRing.load_or_create(qjm_data_dir, JWT_SECRET, OLD_KEY)
    for n, (user, channel_id) in enumerate(zip(users, ids)):
        channel = await qjm_services.store.get_channel(channel_id, user.id)
        assert new_only.decrypt(user.id, channel.url_cipher) == f"json://8.8.8.8/hook{n}?+X-Token=t{n}"
        with pytest.raises(UndecryptableKey):
            old_only.decrypt(user.id, channel.url_cipher)

    # a channel no configured key opens is reported and left as it is
    code, out, err = await jupyter_qjm(qjm_config, fernet_key(), "rotate-keys")
    assert code == 1 and "could not be decrypted" in err and "channel" in err, err


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


# -- `jupyter qjm` as an operator meets it -----------------------------------------------------------


def run_jupyter_qjm(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`jupyter qjm ARGS` in a fresh process with its own Jupyter dirs, as an operator types it."""
    return subprocess.run(
        [str(BIN / "jupyter"), "qjm", *args], env=qjm_env(tmp_path), cwd=tmp_path,
        capture_output=True, text=True, timeout=timeout,
    )


def test_help_lists_the_subcommands(tmp_path) -> None:
    done = run_jupyter_qjm(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    assert "Subcommands" in done.stdout
    for command in ("rotate-keys", "create-admin"):
        assert command in done.stdout


def test_subcommand_help(tmp_path) -> None:
    done = run_jupyter_qjm(tmp_path, "create-admin", "--help")
    assert done.returncode == 0, done.stderr
    assert "EMAIL" in done.stdout and "administrator" in done.stdout


@pytest.mark.parametrize("args", [("rotate-kyes",), ("create-admin",), ("create-admin", "a@example.org", "b@example.org")])
def test_a_mistyped_command_is_one_line(tmp_path, args) -> None:
    done = run_jupyter_qjm(tmp_path, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and "jupyter qjm" in lines[0]
    if args == ("rotate-kyes",):
        assert "'rotate-kyes'" in lines[0] and "rotate-keys" in lines[0] and "create-admin" in lines[0]


def test_the_server_log_speaks_of_qjm_not_notebooks(start_qjm) -> None:
    server = start_qjm()
    server.stop()
    log = server.log()
    assert "qjm" in log
    assert "notebook" not in log.lower(), log
    assert "qjm: storage sqlite:///" in log


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only meaningful as root")
def test_as_root_the_flag_is_named_and_works(tmp_path, start_qjm) -> None:
    """Jupyter refuses root; the refusal names the documented flag, and the flag works."""
    done = run_jupyter_qjm(tmp_path, "--ip=127.0.0.1", "--port=0", "--no-browser")
    assert done.returncode != 0
    assert "--allow-root" in done.stdout + done.stderr
    start_qjm()  # starts with --allow-root (tests/fixtures/process.py), as README says
