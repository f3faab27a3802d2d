"""A bare tornado JSON handler loaded into the same server as qjm: the ceiling for bench/api.py.

It answers with a pre-rendered body of the same size as qjm's 50-job list, so the
difference between the two is what auth, the store and serialization cost.
"""

from __future__ import annotations

from typing import Any

from tornado import web

BODY: dict[str, bytes] = {"payload": b"{}"}


class BareHandler(web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(BODY["payload"])

    def put(self) -> None:
        BODY["payload"] = self.request.body
        self.set_status(204)
        self.finish()

    def check_xsrf_cookie(self) -> None:
        return None


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "bench.bare_ext"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    base = serverapp.web_app.settings.get("base_url", "/")
    serverapp.web_app.add_handlers(".*$", [(f"{base}bench/bare", BareHandler)])
