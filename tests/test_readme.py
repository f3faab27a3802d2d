"""The README's commands work as written on a fresh machine, also as root.

A fresh machine has `python3` and whatever the set-up command put in `.venv/bin/`, and
nothing activated: a bare `jupyter`, `python` or `pip` is not there. Each server command
the README gives (`jupyter lab`, `jupyter qjm`) is started for real, as written; only
the address is pinned to 127.0.0.1 on a free port and Jupyter's directories are a
temporary place, so the test neither listens on the network nor touches the user's
Jupyter set-up.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.process import free_port, qjm_env

README = Path(__file__).resolve().parent.parent / "README.md"
BIN = Path(sys.executable).parent
# What a fresh machine offers once the README's set-up command has run.
FRESH_PROGRAMS = {"python3", "export", "cd", "."}


def shell_lines() -> list[str]:
    """Every command line of the README's bash blocks (continuation lines joined)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    lines = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):  # a comment line runs nothing
                lines.append(line)
    return lines


def programs(line: str) -> list[str]:
    """The programs a line runs: the first word of the line, of each `&&` part and of each
    `$(...)`, after leading VAR=value assignments."""
    pattern = r"""(?:^|&&|\$\()\s*(?:[A-Z_]+=(?:"[^"]*"|\S+)\s+)*([^\s"')]+)"""
    return re.findall(pattern, line)


def server_commands() -> list[str]:
    return [line for line in shell_lines() if re.search(r"jupyter (lab|qjm)(\s+-|\s*$)", line)]


def test_the_readme_has_server_commands() -> None:
    commands = server_commands()
    assert any("jupyter lab" in c for c in commands) and any("jupyter qjm" in c for c in commands), commands


@pytest.mark.parametrize("line", shell_lines())
def test_every_program_exists_on_a_fresh_machine(line: str) -> None:
    activated = False
    for program in programs(line.strip("()")):
        if activated and program not in FRESH_PROGRAMS:  # after `. .venv/bin/activate`: the venv's programs
            assert (BIN / program).exists(), (program, line)
            continue
        assert program in FRESH_PROGRAMS or program.startswith((".venv/bin/", "../.venv/bin/")), (program, line)
        activated = activated or (program == "." and ". .venv/bin/activate" in line)


@pytest.mark.parametrize("line", server_commands())
def test_every_server_command_starts_as_root_too(line: str) -> None:
    """Jupyter refuses root without --allow-root; every server command the README gives carries it."""
    assert "--allow-root" in shlex.split(line), line


@pytest.mark.slow
@pytest.mark.parametrize("line", server_commands())
def test_every_server_command_starts(tmp_path: Path, line: str) -> None:
    """Run as written (so as root here, when the machine runs tests as root)."""
    words = shlex.split(line.split("&&")[-1])
    env = qjm_env(tmp_path)
    while re.match(r"^[A-Z_]+=", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    program, app, *args = words
    assert program == ".venv/bin/jupyter", line
    port = free_port()
    # As written, except the address: loopback, a free port, no browser, and a known token.
    args = [a for a in args if not a.startswith(("--ip=", "--port="))]
    args += ["--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0", "--no-browser",
             f"--ServerApp.root_dir={tmp_path}"]
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(BIN / "jupyter"), app, *args], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/qjm/api/status", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert proc.poll() is None, log_path.read_text()
        assert httpx.get(f"http://127.0.0.1:{port}/qjm/api/status", timeout=5).json()["name"] == "qjm-jupyter"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
