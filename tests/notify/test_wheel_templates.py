"""The email templates are package data: the installed package (in CI, built from the
wheel) and the wheel file list must carry every one of them."""

from __future__ import annotations

from importlib.resources import files

import pytest

from qjm_jupyter_server.notify.render import BUILTIN_DIR

EXPECTED_AT_LEAST = 20


def test_installed_package_carries_the_templates() -> None:
    installed = files("qjm_jupyter_server.notify") / "templates"
    names = sorted(p.name for p in installed.iterdir() if p.name.endswith(".j2"))
    assert len(names) >= EXPECTED_AT_LEAST, names
    assert {"job_status.txt.j2", "job_status.html.j2", "verify_email.txt.j2"} <= set(names)


def test_wheel_file_list_includes_every_template() -> None:
    wheel = pytest.importorskip("hatchling.builders.wheel", reason="hatchling is a build tool, not a test dependency")
    root = BUILTIN_DIR.parents[3]  # the project root (pyproject.toml)
    if not (root / "pyproject.toml").is_file():
        pytest.skip("running from an installed wheel: the test above covered it")
    shipped = {f.distribution_path for f in wheel.WheelBuilder(str(root)).recurse_included_files()}
    templates = sorted(p.name for p in BUILTIN_DIR.glob("*.j2"))
    assert len(templates) >= EXPECTED_AT_LEAST
    missing = [t for t in templates if f"qjm_jupyter_server/notify/templates/{t}" not in shipped]
    assert missing == []
