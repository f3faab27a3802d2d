"""The jobs API over a real server, a real port and a real SQLite file.

The watcher is not started here (pytest-jupyter never runs the start hook), so job
rows only change when a test changes them; status changes are written straight into
the store, the way the watcher would.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from qjm_jupyter_server.api.jobs import SUMMARY_FIELDS, JobList, JobOut, JobSummary
from qjm_jupyter_server.clock import ManualClock
from qjm_jupyter_server.domain import StatusEvent

CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/0123456789abcdef:inst-1::"
CRN2 = "crn:v1:bluemix:public:quantum-computing:eu-de:a/0123456789abcdef:inst-2::"
ISO_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")




@pytest.fixture
def clock(qjm_services) -> ManualClock:
    """Jobs get deterministic registered_at/updated_at (accounts keep real time for JWTs)."""
    manual = ManualClock(1_767_225_600_000)
    qjm_services.jobs.clock = manual
    return manual


async def register(api, user, *jobs: dict[str, Any], status: int = 201) -> dict[str, Any]:
    r = await api.post("jobs", json={"jobs": list(jobs)}, headers=user.headers)
    assert r.status_code == status, r.text
    return r.json()


async def set_status(services, job_id: str, status: str, watch_state: str, at: int) -> None:
    """What the watcher does when it observes a new status."""
    job = await services.store.get_job(job_id)
    assert job is not None
    assert await services.store.update_job(job_id, None, {"status": status, "watch_state": watch_state, "updated_at": at})


def error_of(response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


# -- register ---------------------------------------------------------------------------------------


async def test_register_one_bare_object(api, make_user, qjm_services) -> None:
    user = await make_user()
    r = await api.post("jobs", json={"job_id": "d1abc", "instance": CRN, "backend": "ibm_torino"}, headers=user.headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["created"], body["merged"]) == (1, 0)
    (job,) = body["jobs"]
    assert job["job_id"] == "d1abc"
    assert job["id"].startswith("j_") and job["id"] != "d1abc"
    assert job["instance"] == CRN and job["backend"] == "ibm_torino"
    assert job["source"] == "ibm" and job["channel"] == "ibm_quantum_platform"
    assert job["notify_status"] == ["CANCELLED", "DONE", "ERROR"]  # the account's default, vocabulary order
    assert job["status"] == "INITIALIZING" and job["watch_state"] == "active"
    assert job["ibm_url"] == "https://quantum.cloud.ibm.com/workloads/d1abc"
    assert ISO_MS_Z.match(job["registered_at"]) and ISO_MS_Z.match(job["updated_at"])
    assert job["created"] is None and job["history"] == []
    # The watcher is told: the (user, instance) unit is due.
    unit = await qjm_services.store.get_poll_unit(f"{user.id}|{CRN}")
    assert unit is not None and unit.instance == CRN


async def test_register_many_merges_duplicates_and_earlier_registrations(api, make_user, qjm_services) -> None:
    user = await make_user()
    body = await register(
        api,
        user,
        {"job_id": "a1", "instance": CRN, "notify_status": ["RUNNING"]},
        {"job_id": "b1", "instance": CRN2, "label": "vqe"},
        {"job_id": "a1", "instance": CRN, "notify_status": ["QUEUED"], "label": "first label wins? no: unset fills"},
    )
    assert (body["created"], body["merged"]) == (2, 1)
    a, b, a_again = body["jobs"]
    assert a["id"] == a_again["id"] and a["id"] != b["id"]
    assert a["notify_status"] == ["QUEUED", "RUNNING"]
    assert a["label"] == "first label wins? no: unset fills"
    for crn in (CRN, CRN2):
        assert await qjm_services.store.get_poll_unit(f"{user.id}|{crn}") is not None

    # A later registration of a watched job adds statuses; it never removes any.
    body = await register(api, user, {"job_id": "a1", "instance": CRN, "notify_status": ["done"], "label": "other"})
    assert (body["created"], body["merged"]) == (0, 1)
    (merged,) = body["jobs"]
    assert merged["id"] == a["id"]
    assert merged["notify_status"] == ["QUEUED", "RUNNING", "DONE"]
    assert merged["label"] == "first label wins? no: unset fills"
    listing = (await api.get("jobs", headers=user.headers)).json()
    assert listing["total"] == 2


async def test_statuses_are_case_insensitive_with_aliases(api, make_user) -> None:
    user = await make_user()
    body = await register(api, user, {"job_id": "x1", "instance": CRN, "notify_status": ["completed", "Failed", "canceled", " running "]})
    assert body["jobs"][0]["notify_status"] == ["RUNNING", "CANCELLED", "DONE", "ERROR"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"jobs": [{"job_id": "x", "instance": CRN, "notify_status": ["DONE", "FINISHED"]}]}, "jobs.0.notify_status.1"),
        ({"job_id": "x", "instance": CRN, "notify_status": ["nope"]}, "jobs.0.notify_status.0"),
        ({"jobs": [{"job_id": "ok", "instance": CRN}, {"job_id": "x", "instance": CRN, "colour": "red"}]}, "jobs.1.colour"),
        ({"jobs": [{"job_id": "has space", "instance": CRN}]}, "jobs.0.job_id"),
        ({"jobs": [{"job_id": "x", "instance": CRN, "label": "l" * 201}]}, "jobs.0.label"),
        ({"jobs": [{"job_id": "x", "instance": CRN, "created": "yesterday"}]}, "jobs.0.created"),
        # Parses, but is before year 1 in UTC: could never be shown back (was a 500).
        ({"jobs": [{"job_id": "x", "instance": CRN, "created": "0001-01-01T00:00:00+01:00"}]}, "jobs.0.created"),
        ({"jobs": [{"job_id": "x", "instance": CRN, "source": "aer"}]}, "jobs.0.source"),
        ({"jobs": []}, "jobs"),
    ],
)
async def test_invalid_registrations_name_the_field(api, make_user, payload, field) -> None:
    user = await make_user()
    r = await api.post("jobs", json=payload, headers=user.headers)
    assert r.status_code == 422, r.text
    assert error_of(r)["field"] == field
    assert (await api.get("jobs", headers=user.headers)).json()["total"] == 0  # all or nothing


async def test_instance_defaults_to_the_account_and_local_jobs_need_none(api, make_user, qjm_services) -> None:
    bare = await make_user()
    r = await api.post("jobs", json={"jobs": [{"job_id": "l1", "source": "local"}, {"job_id": "x"}]}, headers=bare.headers)
    assert r.status_code == 422 and error_of(r)["field"] == "jobs.1.instance"

    user = await make_user(default_instance=CRN2)
    body = await register(api, user, {"job_id": "x", "created": "2026-03-01T10:00:00.123456+02:00"}, {"job_id": "l1", "source": "local"})
    ibm, local = body["jobs"]
    assert ibm["instance"] == CRN2
    assert ibm["created"] == "2026-03-01T08:00:00.123Z"
    assert local["instance"] is None and local["channel"] == "local" and local["ibm_url"] is None
    assert await qjm_services.store.get_poll_unit(f"{user.id}|{CRN2}") is not None


async def test_notify_default_comes_from_the_account(api, make_user, qjm_services) -> None:
    user = await make_user()
    await qjm_services.store.update_user(user.id, {"notify_default": ["RUNNING", "DONE"]})
    body = await register(api, user, {"job_id": "x", "instance": CRN})
    assert body["jobs"][0]["notify_status"] == ["RUNNING", "DONE"]


async def test_too_many_jobs_and_too_large_bodies(api, make_user, qjm_services) -> None:
    user = await make_user()
    qjm_services.jobs.settings = replace(qjm_services.jobs.settings, max_jobs_per_request=3)
    r = await api.post("jobs", json={"jobs": [{"job_id": f"j{i}", "instance": CRN} for i in range(4)]}, headers=user.headers)
    assert r.status_code == 422 and error_of(r)["field"] == "jobs"

    big = {"jobs": [{"job_id": "x", "instance": CRN, "label": "y" * 200}] * 6000}  # ~1.4 MB
    r = await api.post("jobs", json=big, headers=user.headers)
    assert r.status_code == 413, r.text
    assert error_of(r)["code"] == "too_large"


async def test_jobs_need_a_token(api) -> None:
    for method, path in (("GET", "jobs"), ("POST", "jobs"), ("DELETE", "jobs"), ("GET", "jobs/x"), ("PATCH", "jobs/x"), ("DELETE", "jobs/x")):
        r = await api.request(method, path, json={"job_id": "x"} if method != "GET" else None)
        assert r.status_code == 401, (method, path, r.text)
        assert error_of(r)["code"] == "unauthorized"


# -- list -------------------------------------------------------------------------------------------


async def test_filters_and_pagination(api, make_user, qjm_services, clock) -> None:
    user = await make_user()
    other = await make_user()
    await register(api, other, {"job_id": "theirs", "instance": CRN, "label": "vqe"})
    ids = {}
    for name, label, group in (("q1", "vqe", "g1"), ("q2", "qaoa", "g1"), ("q3", "vqe", None), ("q4", None, "g2")):
        clock.advance(1000)
        ids[name] = (await register(api, user, {"job_id": name, "instance": CRN, "label": label, "group": group}))["jobs"][0]["id"]
    await set_status(qjm_services, ids["q1"], "DONE", "final", clock.now_ms())
    await set_status(qjm_services, ids["q2"], "ERROR", "final", clock.now_ms())
    await set_status(qjm_services, ids["q3"], "RUNNING", "active", clock.now_ms())
    await set_status(qjm_services, ids["q4"], "QUEUED", "paused", clock.now_ms())

    async def names(**params: Any) -> list[str]:
        r = await api.get("jobs", params=params, headers=user.headers)
        assert r.status_code == 200, r.text
        return [j["job_id"] for j in r.json()["jobs"]]

    assert await names() == ["q4", "q3", "q2", "q1"]  # newest registration first
    assert await names(status=["DONE", "error"]) == ["q2", "q1"]
    assert await names(status="done,Failed") == ["q2", "q1"]
    assert await names(status="completed") == ["q1"]
    assert await names(active="true") == ["q4", "q3"]
    assert await names(active="false") == ["q2", "q1"]
    assert await names(label="vqe") == ["q3", "q1"]
    assert await names(group="g1") == ["q2", "q1"]
    assert await names(group="g1", status="ERROR") == ["q2"]
    assert await names(label="none-such") == []

    r = await api.get("jobs", params={"limit": 2, "offset": 1}, headers=user.headers)
    page = r.json()
    assert [j["job_id"] for j in page["jobs"]] == ["q3", "q2"]
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert ISO_MS_Z.match(page["server_time"])
    page = (await api.get("jobs", params={"status": "DONE", "limit": 1, "offset": 5}, headers=user.headers)).json()
    assert page["jobs"] == [] and page["total"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "SOMETIMES"}, "status.0"),
        ({"status": ["DONE", "bad"]}, "status.1"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"view": "tiny"}, "view"),
        ({"offset": "-1"}, "offset"),
        ({"active": "maybe"}, "active"),
        ({"updated_after": "not-a-time"}, "updated_after"),
        ({"updated_after": "9999-12-31T23:59:59-01:00"}, "updated_after"),
        ({"colour": "red"}, "colour"),
        ({"fields": "label,stauts"}, "fields.1"),
        ({"fields": ["status", "password_hash"]}, "fields.1"),
        ({"fields": ""}, "fields"),
        ({"fields": "label", "view": "summary"}, "fields"),
        ({"total": "some"}, "total"),
    ],
)
async def test_bad_filters_name_the_parameter(api, make_user, params, field) -> None:
    user = await make_user()
    r = await api.get("jobs", params=params, headers=user.headers)
    assert r.status_code == 422, r.text
    assert error_of(r)["field"] == field


async def test_updated_after_is_a_changes_feed(api, make_user, qjm_services, clock) -> None:
    user = await make_user()
    ids = {}
    for name in ("f1", "f2", "f3"):
        clock.advance(10)
        ids[name] = (await register(api, user, {"job_id": name, "instance": CRN}))["jobs"][0]["id"]
    clock.advance(1000)
    first = (await api.get("jobs", headers=user.headers)).json()
    cursor = first["server_time"]

    clock.advance(1000)
    await set_status(qjm_services, ids["f3"], "RUNNING", "active", clock.now_ms())
    clock.advance(1000)
    r = await api.patch(f"jobs/{ids['f1']}", json={"label": "renamed"}, headers=user.headers)
    assert r.status_code == 200, r.text
    clock.advance(1000)
    await set_status(qjm_services, ids["f3"], "DONE", "final", clock.now_ms())

    feed = (await api.get("jobs", params={"updated_after": cursor}, headers=user.headers)).json()
    # Oldest change first; f3 changed twice but appears once, at its latest change.
    assert [j["job_id"] for j in feed["jobs"]] == ["f1", "f3"]
    assert feed["jobs"][1]["status"] == "DONE"
    assert feed["total"] == 2
    # f3's last change and this read share a millisecond, so the cursor stays before it:
    # the change is delivered again (at least once, never lost) ...
    again = (await api.get("jobs", params={"updated_after": feed["server_time"]}, headers=user.headers)).json()
    assert [j["job_id"] for j in again["jobs"]] == ["f3"]
    # ... until time has moved past it.
    clock.advance(1)
    cursor = (await api.get("jobs", params={"updated_after": again["server_time"]}, headers=user.headers)).json()["server_time"]
    again = (await api.get("jobs", params={"updated_after": cursor}, headers=user.headers)).json()
    assert again["jobs"] == []
    # An offset is accepted too (`+01:00` must be percent-encoded in a URL; httpx does it).
    assert (await api.get("jobs", params={"updated_after": "1970-01-01T01:00:00+01:00"}, headers=user.headers)).json()["total"] == 3


async def test_feed_reports_jobs_deleted_elsewhere(api, make_user, qjm_services, clock) -> None:
    user, other, admin = await make_user(), await make_user(), await make_user()
    await qjm_services.store.update_user(admin.id, {"is_admin": True})
    ids = {}
    for name in ("d1", "d2", "d3"):
        clock.advance(10)
        ids[name] = (await register(api, user, {"job_id": name, "instance": CRN}))["jobs"][0]["id"]
    theirs = (await register(api, other, {"job_id": "o1", "instance": CRN}))["jobs"][0]["id"]
    clock.advance(1000)
    snapshot = (await api.get("jobs", headers=user.headers)).json()
    assert snapshot["deleted"] == []  # no updated_after: no deletions
    cursor = snapshot["server_time"]
    admin_cursor = cursor

    clock.advance(1000)
    assert (await api.delete(f"jobs/{ids['d1']}", headers=user.headers)).status_code == 204
    assert (await api.delete(f"jobs/{theirs}", headers=other.headers)).status_code == 204
    feed = (await api.get("jobs", params={"updated_after": cursor, "status": "DONE"}, headers=user.headers)).json()
    assert feed["deleted"] == [ids["d1"]]  # whatever the other filters: a tombstone has no status
    assert feed["jobs"] == []
    # The deletion shares a millisecond with this read, so it comes once more (at least once) ...
    again = (await api.get("jobs", params={"updated_after": feed["server_time"]}, headers=user.headers)).json()
    assert again["deleted"] == [ids["d1"]]
    # ... and not after time has moved on.
    clock.advance(1)
    cursor = (await api.get("jobs", params={"updated_after": again["server_time"]}, headers=user.headers)).json()["server_time"]
    assert (await api.get("jobs", params={"updated_after": cursor}, headers=user.headers)).json()["deleted"] == []

    clock.advance(1000)
    assert (await api.delete("jobs", headers=user.headers)).json() == {"deleted": 2}
    feed = (await api.get("jobs", params={"updated_after": cursor, "offset": 5}, headers=user.headers)).json()
    assert sorted(feed["deleted"]) == sorted([ids["d2"], ids["d3"]])  # paging does not apply to deletions
    # Another user never hears of them; an admin's all-users feed hears of everything.
    other_feed = (await api.get("jobs", params={"updated_after": admin_cursor}, headers=other.headers)).json()
    assert other_feed["deleted"] == [theirs]
    admin_feed = (await api.get("admin/jobs", params={"updated_after": admin_cursor}, headers=admin.headers)).json()
    assert set(admin_feed["deleted"]) == {*ids.values(), theirs}
    mine = (await api.get("jobs", params={"updated_after": admin_cursor}, headers=admin.headers)).json()
    assert mine["deleted"] == []


async def test_many_deletions_come_over_several_answers(api, make_user, qjm_services, clock, monkeypatch) -> None:
    import qjm_jupyter_server.jobs as jobs_module

    monkeypatch.setattr(jobs_module, "DELETED_PER_PAGE", 2)
    user = await make_user()
    ids = [(await register(api, user, {"job_id": f"m{i}", "instance": CRN}))["jobs"][0]["id"] for i in range(5)]
    clock.advance(1000)
    cursor = (await api.get("jobs", headers=user.headers)).json()["server_time"]
    for job_id in ids:
        clock.advance(10)
        assert (await api.delete(f"jobs/{job_id}", headers=user.headers)).status_code == 204
    clock.advance(1000)
    seen: list[str] = []
    for _ in range(10):
        page = (await api.get("jobs", params={"updated_after": cursor}, headers=user.headers)).json()
        assert len(page["deleted"]) <= 2
        seen += page["deleted"]
        if not page["deleted"]:
            break
        cursor = page["server_time"]
    assert set(seen) == set(ids)  # none lost (some twice: at least once)


# -- one job ------------------------------------------------------------------------------------------


async def test_get_by_our_id_or_the_ibm_id(api, make_user) -> None:
    user = await make_user()
    job = (await register(api, user, {"job_id": "cx9", "instance": CRN}))["jobs"][0]
    by_ours = await api.get(f"jobs/{job['id']}", headers=user.headers)
    by_ibm = await api.get("jobs/cx9", headers=user.headers)
    assert by_ours.status_code == by_ibm.status_code == 200
    assert by_ours.json() == by_ibm.json() == job
    r = await api.get("jobs/nope", headers=user.headers)
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"


async def test_patch_notify_status_and_label(api, make_user, clock) -> None:
    user = await make_user()
    job = (await register(api, user, {"job_id": "p1", "instance": CRN, "label": "old"}))["jobs"][0]
    clock.advance(5000)
    r = await api.patch("jobs/p1", json={"notify_status": ["running", "COMPLETED"]}, headers=user.headers)
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["notify_status"] == ["RUNNING", "DONE"]  # replaced, not merged
    assert patched["label"] == "old"
    assert patched["updated_at"] > job["updated_at"]

    r = await api.patch(f"jobs/{job['id']}", json={"label": None}, headers=user.headers)
    assert r.status_code == 200 and r.json()["label"] is None and r.json()["notify_status"] == ["RUNNING", "DONE"]
    r = await api.patch(f"jobs/{job['id']}", json={"notify_status": []}, headers=user.headers)
    assert r.status_code == 200 and r.json()["notify_status"] == []

    for body, field in (
        ({"notify_status": ["DONE", "LATER"]}, "notify_status.1"),
        ({"notify_status": None}, "notify_status"),
        ({"group": "g"}, "group"),
        ({"label": "x" * 201}, "label"),
    ):
        r = await api.patch("jobs/p1", json=body, headers=user.headers)
        assert r.status_code == 422, (body, r.text)
        assert error_of(r)["field"] == field
    r = await api.patch("jobs/p1", content=b"{not json", headers=user.headers)
    assert r.status_code == 422 and error_of(r)["field"] == "body"
    r = await api.patch("jobs/nope", json={"label": "x"}, headers=user.headers)
    assert r.status_code == 404


async def test_delete_one_and_all(api, make_user) -> None:
    user = await make_user()
    jobs = (await register(api, user, *({"job_id": f"d{i}", "instance": CRN} for i in range(3))))["jobs"]
    r = await api.delete(f"jobs/{jobs[0]['id']}", headers=user.headers)
    assert r.status_code == 204 and r.content == b""
    assert (await api.get(f"jobs/{jobs[0]['id']}", headers=user.headers)).status_code == 404
    assert (await api.delete(f"jobs/{jobs[0]['id']}", headers=user.headers)).status_code == 404
    assert (await api.delete("jobs/d1", headers=user.headers)).status_code == 204  # by the IBM id
    r = await api.delete("jobs", headers=user.headers)
    assert r.status_code == 200 and r.json() == {"deleted": 1}
    assert (await api.get("jobs", headers=user.headers)).json()["total"] == 0


# -- isolation and admin -------------------------------------------------------------------------------


async def test_users_cannot_see_or_touch_each_others_jobs(api, make_user) -> None:
    alice = await make_user()
    bob = await make_user()
    job = (await register(api, alice, {"job_id": "alice-job", "instance": CRN}))["jobs"][0]
    await register(api, bob, {"job_id": "bob-job", "instance": CRN})

    for ref in (job["id"], "alice-job"):
        for method, kwargs in (("GET", {}), ("PATCH", {"json": {"label": "mine now"}}), ("DELETE", {})):
            r = await api.request(method, f"jobs/{ref}", headers=bob.headers, **kwargs)
            assert r.status_code == 404, (method, ref, r.text)  # not 403: existence is not leaked
    bob_list = (await api.get("jobs", headers=bob.headers)).json()
    assert [j["job_id"] for j in bob_list["jobs"]] == ["bob-job"]
    assert (await api.delete("jobs", headers=bob.headers)).json() == {"deleted": 1}

    still = await api.get(f"jobs/{job['id']}", headers=alice.headers)
    assert still.status_code == 200 and still.json()["label"] is None

    # Two users may watch the same IBM job id independently.
    body = await register(api, bob, {"job_id": "alice-job", "instance": CRN})
    assert body["created"] == 1 and body["jobs"][0]["id"] != job["id"]


async def test_admin_sees_every_users_jobs(api, make_user, qjm_services) -> None:
    alice = await make_user()
    bob = await make_user()
    admin = await make_user()
    await qjm_services.store.update_user(admin.id, {"is_admin": True})
    a = (await register(api, alice, {"job_id": "a-job", "instance": CRN, "label": "shared"}))["jobs"][0]
    await register(api, bob, {"job_id": "b-job", "instance": CRN, "label": "shared"})
    await register(api, bob, {"job_id": "b-other", "instance": CRN})

    r = await api.get("admin/jobs", headers=alice.headers)
    assert r.status_code == 403 and error_of(r)["code"] == "forbidden"

    r = await api.get("admin/jobs", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert sorted(j["job_id"] for j in r.json()["jobs"]) == ["a-job", "b-job", "b-other"]
    r = await api.get("admin/jobs", params={"label": "shared", "limit": 1}, headers=admin.headers)
    assert r.json()["total"] == 2 and len(r.json()["jobs"]) == 1
    # Admin reads by our id across users; their own list stays their own.
    assert (await api.get(f"jobs/{a['id']}", headers=admin.headers)).json()["job_id"] == "a-job"
    assert (await api.get("jobs", headers=admin.headers)).json()["total"] == 0


async def test_deeply_nested_json_is_a_4xx(api, make_user) -> None:
    user = await make_user()
    r = await api.post("jobs", content=b"[" * 100_000 + b"]" * 100_000, headers={**user.headers, "Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text


async def test_ibm_url_quotes_the_job_id_in_the_api_and_in_email(api, make_user, qjm_services) -> None:
    """One `Job.ibm_url`: the API and the emails give the same, quoted, link."""
    user = await make_user()
    (job,) = (await register(api, user, {"job_id": "d1:a@b+c=", "instance": CRN}))["jobs"]
    assert job["ibm_url"] == "https://quantum.cloud.ibm.com/workloads/d1%3Aa%40b%2Bc%3D"
    stored = await qjm_services.store.get_job(job["id"], user.id)
    note = qjm_services.messages.job_status(await qjm_services.store.get_user(user.id), stored, ["DONE"], 0)
    assert job["ibm_url"] in note.text


async def test_every_admin_route_refuses_with_one_message(api, make_user) -> None:
    user = await make_user()
    answers = [
        await api.get("admin/jobs", headers=user.headers),
        await api.get("admin/users", headers=user.headers),
        await api.patch(f"admin/users/{user.id}", json={"is_admin": True}, headers=user.headers),
    ]
    assert [r.status_code for r in answers] == [403, 403, 403]
    assert {(error_of(r)["code"], error_of(r)["message"]) for r in answers} == {("forbidden", "administrators only")}


# -- listing views ------------------------------------------------------------------------------------


async def test_list_items_are_the_models_field_for_field(api, make_user, qjm_services, clock) -> None:
    """The listing renders jobs without building models (api.jobs.job_out_json); each item
    must still be exactly what the JobOut model gives for the same job (`GET jobs/{id}`)."""
    user = await make_user()
    body = await register(
        api, user,
        {"job_id": "m1", "instance": CRN, "backend": "ibm_torino", "label": "ünïcode ✓", "group": "g",
         "created": "1969-12-31T23:59:59.999Z", "notify_status": ["RUNNING", "DONE"]},
        {"job_id": "m2", "source": "local"},
        {"job_id": "m3", "instance": CRN2},
    )
    first = body["jobs"][0]["id"]
    job = await qjm_services.store.get_job(first)
    history = [StatusEvent("QUEUED", 1_000), StatusEvent("RUNNING", 2_001, None), StatusEvent("ERROR", 3_999, "boom")]
    await qjm_services.store.update_job(first, None, {"history": history, "status": "ERROR", "watch_state": "final",
                                                       "error_reason": "boom", "last_poll_at": 5, "last_error": "x"})
    assert job is not None
    for view in ("full", "summary"):
        page = (await api.get("jobs", params={"view": view}, headers=user.headers)).json()
        jsonschema.validate(page, JobList.model_json_schema(mode="serialization"))
        assert len(page["jobs"]) == 3
        for item in page["jobs"]:
            one = (await api.get(f"jobs/{item['id']}", headers=user.headers)).json()
            if view == "full":
                assert item == one and tuple(item) == tuple(JobOut.model_fields)
            else:
                assert tuple(item) == SUMMARY_FIELDS == tuple(JobSummary.model_fields)
                assert item == {k: one[k] for k in SUMMARY_FIELDS}
    full = (await api.get("jobs", headers=user.headers)).json()
    errored = next(j for j in full["jobs"] if j["id"] == first)
    assert [e["at"] for e in errored["history"]] == ["1970-01-01T00:00:01.000Z", "1970-01-01T00:00:02.001Z", "1970-01-01T00:00:03.999Z"]
    assert errored["created"] == "1969-12-31T23:59:59.999Z"
    # POST answers render the same way
    again = await register(api, user, {"job_id": "m1", "instance": CRN})
    assert again["jobs"][0] == (await api.get(f"jobs/{first}", headers=user.headers)).json()
    assert again["jobs"][0]["history"] == errored["history"]


async def test_fields_selection_is_the_models_fields(api, make_user, qjm_services) -> None:
    """`fields=` gives each job exactly those JobOut fields, `id` first and always, with the
    values `GET jobs/{id}` gives; the page validates against the generated schema."""
    user = await make_user()
    body = await register(api, user, {"job_id": "s1", "instance": CRN, "label": "a", "notify_status": ["RUNNING"]},
                          {"job_id": "s2", "source": "local"})
    first = body["jobs"][0]["id"]
    await qjm_services.store.update_job(first, None, {"history": [StatusEvent("QUEUED", 1_000, "q")], "status": "QUEUED"})
    schema = JobList.model_json_schema(mode="serialization")
    for fields, expected in [
        ("status,label", ["id", "status", "label"]),
        (["history", "id", "notify_status", "history"], ["id", "history", "notify_status"]),
        (",".join(JobOut.model_fields), list(JobOut.model_fields)),
    ]:
        r = await api.get("jobs", params={"fields": fields}, headers=user.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        jsonschema.validate(page, schema)
        assert len(page["jobs"]) == 2
        for item in page["jobs"]:
            one = (await api.get(f"jobs/{item['id']}", headers=user.headers)).json()
            assert list(item) == expected and item == {k: one[k] for k in expected}
    feed = (await api.get("jobs", params={"fields": "status", "updated_after": "1970-01-01T00:00:00Z"},
                          headers=user.headers)).json()
    assert [set(j) for j in feed["jobs"]] == [{"id", "status"}] * 2


def panel_list_fields() -> list[str]:
    """`LIST_FIELDS` of labextension/src/model.ts: what the panel's and web UI's feed asks for."""
    text = (Path(__file__).resolve().parents[2] / "labextension" / "src" / "model.ts").read_text()
    block = re.search(r"LIST_FIELDS = \[(.*?)\]", text, re.S)
    assert block, "LIST_FIELDS not found in model.ts"
    return re.findall(r"'([a-z_]+)'", block.group(1))


async def test_the_clients_list_views_are_jobout_fields(api, make_user) -> None:
    """The panel's feed and the kernel's JobTable list with `fields=`: each name must be one
    the server knows (a typo would be a 422, and the feed would fall back to whole records)."""
    from qjm_jupyter.formatting import JOB_COLUMNS
    from qjm_jupyter.widget import FIELDS

    user = await make_user()
    await register(api, user, {"job_id": "v1", "instance": CRN})
    panel = panel_list_fields()
    assert {"id", "status", "history", "notify_status", "updated_at"} <= set(panel)
    for fields in (panel, list(FIELDS), [name for name, _ in JOB_COLUMNS]):
        assert set(fields) <= set(JobOut.model_fields), fields
        r = await api.get("jobs", params={"fields": ",".join(fields)}, headers=user.headers)
        assert r.status_code == 200, r.text
        assert set(r.json()["jobs"][0]) == {"id", *fields}


async def test_total_counts_a_thousand_past_the_page_unless_asked(api, make_user) -> None:
    """The first page's `total` stops counting 1,000 jobs past the page (total_exact false):
    a lower bound that still says more pages follow, so a listing followed to its end is
    whole; `total=exact` counts them all."""
    user = await make_user()
    for start in (0, 800):
        await register(api, user, *[{"job_id": f"t{i:05d}", "source": "local"} for i in range(start, start + 800)])

    async def page(**params: Any) -> dict[str, Any]:
        r = await api.get("jobs", params=params, headers=user.headers)
        assert r.status_code == 200, r.text
        return r.json()

    first = await page(limit=50, fields="status")
    assert (first["total"], first["total_exact"]) == (50 + 1000 + 1, False)
    assert ((await page(limit=50, total="exact"))["total"], (await page(limit=50, total="exact"))["total_exact"]) == (1600, True)
    assert ((await page(limit=50, offset=600))["total"], (await page(limit=50, offset=600))["total_exact"]) == (1600, True)
    assert ((await page(limit=10, status="DONE"))["total"], (await page(limit=10, status="DONE"))["total_exact"]) == (0, True)
    # Following pages while `offset < total` lists every job exactly once.
    seen: list[str] = []
    while True:
        got = await page(limit=500, offset=len(seen), fields="id")
        seen += [j["id"] for j in got["jobs"]]
        if not got["jobs"] or len(seen) >= got["total"]:
            break
    assert len(seen) == len(set(seen)) == 1600


async def test_a_thousand_jobs_in_one_summary_page(api, make_user, qjm_services) -> None:
    """One request lists 1,000 jobs, and the summary view stays under 300 bytes a job."""
    user = await make_user()
    jobs = [{"job_id": f"d{i:019d}", "instance": CRN, "backend": "ibm_brisbane", "label": f"sweep point {i}"} for i in range(1000)]
    await register(api, user, *jobs)
    r = await api.get("jobs", params={"limit": 1000, "view": "summary"}, headers=user.headers)
    assert r.status_code == 200, r.text
    page = r.json()
    assert len(page["jobs"]) == page["total"] == 1000 and page["limit"] == 1000
    assert len(r.content) / 1000 <= 300, len(r.content) / 1000
    full = await api.get("jobs", params={"limit": 1000}, headers=user.headers)
    assert len(full.json()["jobs"]) == 1000
    assert len(r.content) * 2 < len(full.content)
    assert {j["id"] for j in page["jobs"]} == {j["id"] for j in full.json()["jobs"]}
