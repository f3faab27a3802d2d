"""The qjm web UI: the standalone bundle built from `labextension/src/webui/` into `static/`.

The bundle is build output (`jlpm build` / `pip install .`), not source: it is git-ignored
and shipped in the wheel. `handlers/webui.py` serves it.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
SCRIPT = "webui.js"
STYLE = "webui.css"
