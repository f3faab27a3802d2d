"""The delivery log, the test email and the emailed-link pages, over the real server."""

from __future__ import annotations

import hashlib
import re

from qjm_jupyter_server.domain import ActionToken
from qjm_jupyter_server.notify.outcomes import GIVE_UP_MS  # noqa: F401 - documents the policy under test


async def drain(qjm_services) -> None:
    """Run the server's own sender once. (Under pytest-jupyter the extension's background
    tasks may not be started; if they are, leases keep the two apart.)"""
    await qjm_services.sender.drain_once()


async def settled(api, user, n: int, deadline: float = 20.0) -> list[dict]:
    """The user's test mails once n of them left 'pending' (a deadline, not a speed check)."""
    import asyncio

    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        r = await api.get("notifications", headers=user.headers)
        assert r.status_code == 200, r.text
        tests = [x for x in r.json()["notifications"] if x["kind"] == "test"]
        if len([x for x in tests if x["state"] != "pending"]) >= n or loop.time() > end:
            return tests
        await asyncio.sleep(0.05)


async def test_delivery_log_shows_sent_and_550(qjm_mail, api, make_user, qjm_services):
    user = await make_user()
    await drain(qjm_services)  # the registration's verification email goes first
    assert len(await qjm_mail.wait_for(1)) == 1
    qjm_mail.permfail_next(1)
    r = await api.post("notifications/test", headers=user.headers)
    assert r.status_code == 202, r.text
    assert r.json()["mail_enabled"] is True
    await drain(qjm_services)
    [first] = await settled(api, user, 1)
    assert first["state"] == "failed"
    assert first["last_error"].startswith("550") and "no such user" in first["last_error"]
    assert first["sent_at"] is None
    assert (await api.post("notifications/test", headers=user.headers)).status_code == 202
    await drain(qjm_services)
    tests = await settled(api, user, 2)
    sent = next(n for n in tests if n["state"] == "sent")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", sent["sent_at"])
    assert sent["to"] == user.email and sent["subject"].startswith("[qjm]") and sent["attempts"] == 1
    body = (await api.get("notifications", headers=user.headers)).json()
    assert body["total"] == len(body["notifications"])
    test_mails = [m for m in qjm_mail.messages if m["To"] == user.email and m["X-QJM-Kind"] == "test"]
    assert len(test_mails) == 1


async def test_delivery_log_is_per_user_and_paged(api, make_user, qjm_services):
    alice, bob = await make_user(), await make_user()
    for _ in range(3):
        assert (await api.post("notifications/test", headers=alice.headers)).status_code == 202
    r = await api.get("notifications", params={"limit": 2}, headers=alice.headers)
    page = r.json()
    assert r.status_code == 200 and len(page["notifications"]) == 2 and page["total"] >= 3
    assert all(n["to"] == alice.email for n in page["notifications"])
    r = await api.get("notifications", headers=bob.headers)
    assert all(n["to"] == bob.email for n in r.json()["notifications"])
    assert not [n for n in r.json()["notifications"] if n["kind"] == "test"]


async def test_notifications_need_auth_and_valid_paging(api, make_user):
    assert (await api.get("notifications")).status_code == 401
    assert (await api.post("notifications/test")).status_code == 401
    user = await make_user()
    for params in ({"limit": 0}, {"limit": "x"}, {"offset": -1}, {"bogus": 1}):
        r = await api.get("notifications", params=params, headers=user.headers)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["code"] == "invalid"


async def test_test_email_is_throttled(api, make_user):
    user = await make_user()
    codes = [(await api.post("notifications/test", headers=user.headers)).status_code for _ in range(6)]
    assert codes[:5] == [202] * 5 and codes[5] == 429


async def test_pages_render_and_never_consume_a_token(api, qjm_base, qjm_services, make_user):
    user = await make_user()
    store = qjm_services.store
    now = qjm_services.clock.now_ms()
    tokens = {}
    for purpose in ("verify", "reset"):
        token = f"{purpose}-token-" + "A" * 30
        tokens[purpose] = token
        await store.put_action_token(ActionToken(
            token_hash=hashlib.sha256(token.encode()).hexdigest(), user_id=user.id, purpose=purpose,
            expires_at=now + 3_600_000, created_at=now,
        ))
    page_base = qjm_base.removesuffix("api/")
    for purpose, needle in (("verify", "verify/confirm"), ("reset", "password/reset")):
        for _ in range(2):  # a scanner, then the user
            r = await api.get(f"{page_base}{purpose}", params={"token": tokens[purpose]})
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/html")
            assert r.headers["referrer-policy"] == "no-referrer"
            assert "script-src 'nonce-" in r.headers["content-security-policy"]
            assert needle in r.text
            assert tokens[purpose] not in r.text  # never echoed
    # both tokens are still there: consuming them works exactly once
    for purpose in ("verify", "reset"):
        digest = hashlib.sha256(tokens[purpose].encode()).hexdigest()
        assert await store.consume_action_token(digest, purpose, now) is not None
        assert await store.consume_action_token(digest, purpose, now) is None


async def test_pages_escape_hostile_query(api, qjm_base):
    page_base = qjm_base.removesuffix("api/")
    r = await api.get(f"{page_base}verify", params={"token": "<script>alert(1)</script>"})
    assert r.status_code == 200 and "<script>alert(1)" not in r.text
