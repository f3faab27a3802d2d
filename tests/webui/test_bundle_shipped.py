"""The web UI bundle is build output, not source: the installed package (built from the
wheel in CI) and the wheel file list must carry it, or `qjm/` answers 503."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

import qjm_jupyter_server

BUNDLE = ("webui.js", "webui.css")


def test_installed_package_carries_the_web_ui_bundle() -> None:
    static = files("qjm_jupyter_server.webui") / "static"
    for name in BUNDLE:
        assert (static / name).is_file(), f"{name} missing: build with `jlpm build` in labextension/"
        assert len((static / name).read_bytes()) > 1000


def test_wheel_file_list_includes_the_bundle() -> None:
    wheel = pytest.importorskip("hatchling.builders.wheel", reason="hatchling is a build tool, not a test dependency")
    root = Path(qjm_jupyter_server.__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        pytest.skip("running from an installed wheel: the test above covered it")
    shipped = {f.distribution_path for f in wheel.WheelBuilder(str(root)).recurse_included_files()}
    assert {f"qjm_jupyter_server/webui/static/{n}" for n in BUNDLE} <= shipped
