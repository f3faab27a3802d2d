"""The email templates are package data: the wheel must carry every one of them."""

from __future__ import annotations

from hatchling.builders.wheel import WheelBuilder

from qjm_jupyter_server.notify.render import BUILTIN_DIR


def test_wheel_includes_every_template() -> None:
    root = BUILTIN_DIR.parents[3]  # the project root (pyproject.toml)
    assert (root / "pyproject.toml").is_file()
    shipped = {f.distribution_path for f in WheelBuilder(str(root)).recurse_included_files()}
    templates = sorted(p.name for p in BUILTIN_DIR.glob("*.j2"))
    assert len(templates) >= 20
    missing = [t for t in templates if f"qjm_jupyter_server/notify/templates/{t}" not in shipped]
    assert missing == []
