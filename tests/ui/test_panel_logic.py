"""The panel's pure logic (labextension/src/model.ts, feed.ts) under vitest, from pytest.

`pip install .` builds the labextension in the source tree, so after the README's test
set-up command `labextension/node_modules` exists and `jlpm` (from jupyterlab) runs the
tests offline; elsewhere this is skipped (and CI fails on that skip, QJM_REQUIRE_UI=1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LABEXT = Path(__file__).resolve().parents[2] / "labextension"

pytestmark = pytest.mark.ui


def _jlpm() -> str | None:
    here = Path(sys.executable).parent / "jlpm"
    return str(here) if here.exists() else shutil.which("jlpm")


def test_panel_logic_unit_tests_pass() -> None:
    jlpm = _jlpm()
    if jlpm is None or not (LABEXT / "node_modules" / ".bin" / "vitest").exists():
        pytest.skip("labextension dependencies not installed (pip install . or jlpm install in labextension/)")
    out = subprocess.run([jlpm, "test"], cwd=LABEXT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "CI": "true"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert " passed" in out.stdout, out.stdout[-2000:]
