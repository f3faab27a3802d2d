"""The installed distribution is what users get: both extensions enabled and OK, the
console script present, the kernel package light."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest


def _jupyter(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "jupyter", *args], capture_output=True, text=True, timeout=120)
    return out.stdout + out.stderr


def test_server_extension_enabled_and_ok() -> None:
    text = _jupyter("server", "extension", "list")
    lines = [line for line in text.splitlines() if "qjm_jupyter_server" in line]
    assert any("enabled" in line for line in lines), text
    assert any("OK" in line for line in lines), text


def test_labextension_enabled_and_ok() -> None:
    text = _jupyter("labextension", "list")
    if "qjm-jupyter" not in text and os.environ.get("QJM_REQUIRE_UI") != "1":
        pytest.skip("labextension not built in this (editable, no-node) install")
    line = next((line for line in text.splitlines() if "qjm-jupyter" in line), "")
    assert "enabled" in line and "OK" in line, text


def test_console_script_installed() -> None:
    exe = shutil.which("jupyter-qjm", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    assert exe, "jupyter-qjm console script missing"
    out = subprocess.run([exe, "--help-all"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for trait in ("db_url", "jwt_secret", "token_keys", "smtp_security", "poll_interval", "admin_emails"):
        assert f"--QJMServerApp.{trait}" in out.stdout, trait
