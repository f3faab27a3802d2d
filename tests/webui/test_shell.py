"""The web UI's shell and bundle as a browser gets them: every page address answers the
same small HTML with a strict, per-response nonce CSP; assets are plain static files;
nothing needs a Jupyter token (the qjm JWT is the credential)."""

from __future__ import annotations

import re

import httpx
import pytest

PAGES = {
    "qjm/": "jobs",
    "qjm": "jobs",
    "qjm/jobs/j_0123": "job",
    "qjm/account": "account",
    "qjm/notifications": "notifications",
    "qjm/admin": "admin",
    "qjm/admin/users": "admin",
    "qjm/admin/jobs": "admin",
    "qjm/sign-in": "sign-in",
    "qjm/sign-up": "sign-up",
    "qjm/forgot": "forgot",
}


@pytest.fixture
def site(qjm_base: str, jp_asyncio_loop) -> httpx.AsyncClient:  # noqa: ANN001
    client = httpx.AsyncClient(base_url=qjm_base.removesuffix("qjm/api/"), timeout=20)
    yield client
    jp_asyncio_loop.run_until_complete(client.aclose())


async def test_every_page_address_serves_the_shell_under_a_strict_csp(site: httpx.AsyncClient) -> None:
    nonces = set()
    for path, page in PAGES.items():
        r = await site.get(path)  # no Jupyter token, no cookie
        assert r.status_code == 200, (path, r.status_code)
        assert r.headers["content-type"].startswith("text/html")
        assert f'data-qjm-page="{page}"' in r.text, path
        csp = r.headers["content-security-policy"]
        nonce = re.search(r"script-src 'nonce-([^']+)'", csp).group(1)  # type: ignore[union-attr]
        nonces.add(nonce)
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe" not in csp and "http" not in csp  # no inline without nonce, no other origin
        assert f"style-src 'nonce-{nonce}'" in csp
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cache-control"] == "no-store"
        # The one script and the one stylesheet carry this response's nonce; nothing inline.
        assert re.findall(r"<script[^>]*>", r.text) == [re.search(r'<script defer nonce="[^"]+" src="[^"]+">', r.text).group(0)]  # type: ignore[union-attr]
        assert re.search(f'nonce="{nonce}" src="[^"]*/qjm/static/webui\\.js\\?v=\\w+"', r.text), r.text
        assert re.search(f'nonce="{nonce}" href="[^"]*/qjm/static/webui\\.css\\?v=\\w+"', r.text), r.text
    assert len(nonces) == len(PAGES), "a nonce must never repeat"


async def test_bundle_assets_are_static_files(site: httpx.AsyncClient) -> None:
    shell = (await site.get("qjm/")).text
    src = re.search(r'src="[^"]*/(qjm/static/webui\.js\?v=\w+)"', shell).group(1)  # type: ignore[union-attr]
    r = await site.get(src)
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert len(r.content) > 1000
    css = await site.get("qjm/static/webui.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for bad in ("qjm/static/../handlers/webui.py", "qjm/static/%2e%2e/__init__.py", "qjm/static/nope.js"):
        assert (await site.get(bad)).status_code in (403, 404), bad


async def test_unknown_pages_and_api_routes_still_404(site: httpx.AsyncClient) -> None:
    assert (await site.get("qjm/nope")).status_code == 404
    assert (await site.get("qjm/jobs/a/b")).status_code == 404
    r = await site.get("qjm/api/nope")
    assert r.status_code == 404 and r.json()["error"]["code"]


async def test_a_page_the_host_signed_in_carries_the_host_session(site: httpx.AsyncClient, jp_serverapp) -> None:  # noqa: ANN001
    """Personal mode: a page request Jupyter authenticated tells the bundle so (no qjm sign-in),
    with the XSRF token its cookie-borne API calls must send; an anonymous one does not."""
    anonymous = await site.get("qjm/jobs/j_0123")
    assert "data-qjm-identity" not in anonymous.text and "data-qjm-xsrf" not in anonymous.text
    token = jp_serverapp.identity_provider.token
    r = await site.get("qjm/jobs/j_0123", headers={"Authorization": f"token {token}"})
    assert r.status_code == 200
    assert 'data-qjm-identity="jupyter"' in r.text
    xsrf = re.search(r'data-qjm-xsrf="([^"]+)"', r.text)
    assert xsrf and r.cookies.get("_xsrf"), r.text  # the token, and the cookie it is checked against
    assert f'data-qjm-sign-out="{jp_serverapp.base_url}logout"' in r.text
