"""Cancel from where the notification is seen: the real server, the fake IBM API (IBM jobs),
a real JobManagerClient + local watcher running a real Aer job (local jobs), aiosmtpd."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.watcher.test_e2e_mail import _true, job_mail, start, until


@pytest.fixture
def qjm_config(qjm_config: dict[str, Any], fake_ibm: Any, smtp_server: Any) -> dict[str, Any]:
    qjm_config.update(smtp_server.settings())
    qjm_config.update(ibm_iam_url=fake_ibm.base, ibm_api_url=fake_ibm.api_url, poll_interval=0.2)
    return qjm_config


async def test_cancel_an_ibm_job_with_the_users_key(
    qjm_services: Any, api: httpx.AsyncClient, make_user: Any, fake_ibm: Any, smtp_server: Any
) -> None:
    await start(qjm_services)
    key = fake_ibm.key()
    user = await make_user(ibm_quantum_token=key, default_instance=fake_ibm.default_crn)
    fake_ibm.add_job("to-cancel", "Queued")
    r = await api.post("jobs", headers=user.headers, json={"job_id": "to-cancel"})  # default statuses include CANCELLED
    assert r.status_code == 201, r.text
    other = await make_user()
    assert (await api.post("jobs/to-cancel/cancel", headers=other.headers)).status_code == 404
    assert (await api.post("jobs/to-cancel/cancel")).status_code == 401

    r = await api.post("jobs/to-cancel/cancel", headers=user.headers)
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["state"], body["job"]["status"], body["job"]["watch_state"]) == ("cancelled", "CANCELLED", "final")
    [call] = [c for c in fake_ibm.calls if c.path == "/api/v1/jobs/to-cancel/cancel"]
    assert (call.method, call.key, call.crn) == ("POST", key, fake_ibm.default_crn)  # the user's own key
    await until(lambda: _true(len(job_mail(smtp_server.messages, user.email)) >= 1), "the CANCELLED mail")
    assert "CANCELLED" in job_mail(smtp_server.messages, user.email)[0]["Subject"]

    r = await api.post("jobs/to-cancel/cancel", headers=user.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_final"
    # Final on IBM's side but not yet seen by us: IBM's 409 becomes ours.
    fake_ibm.add_job("done-there", "Completed")
    assert (await api.post("jobs", headers=user.headers, json={"job_id": "done-there"})).status_code == 201
    await qjm_services.store.update_job((await qjm_services.store.get_job_by_ibm_id(user.id, "done-there")).id, None, {"status": "QUEUED"})
    r = await api.post("jobs/done-there/cancel", headers=user.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_final", r.text


async def test_a_local_job_is_cancelled_by_its_live_kernel_and_refused_when_gone(
    qjm_services: Any, api: httpx.AsyncClient, make_user: Any, qjm_base: str
) -> None:
    aer = pytest.importorskip("qiskit_aer")
    qiskit = pytest.importorskip("qiskit")
    from qjm_jupyter.client import JobManagerClient
    from qjm_jupyter.session import SESSION

    user = await make_user()
    # Nobody runs "orphan" any more: registered, then its kernel went away.
    r = await api.post("jobs", headers=user.headers, json={"job_id": "orphan", "source": "local"})
    assert r.status_code == 201
    r = await api.post("jobs/orphan/cancel", headers=user.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "kernel_gone"
    assert "the kernel that runs this job is gone" in r.json()["error"]["message"]

    # A real Aer job waiting in a busy one-worker executor (AerJob takes one, as AerBackend.run
    # builds it): not started yet, so it can still be cancelled.
    from qiskit_aer.jobs import AerJob

    executor = ThreadPoolExecutor(max_workers=1)
    gate = threading.Event()
    executor.submit(gate.wait, 60)
    qc = qiskit.QuantumCircuit(1)
    qc.h(0)
    qc.measure_all()
    backend = aer.AerSimulator()
    job = AerJob(backend, "aer-waiting", backend._execute_circuits_job, circuits=[qc], parameter_binds=None,
                 run_options={}, executor=executor)
    job.submit()
    assert str(job.status().name) == "INITIALIZING"

    client = JobManagerClient(url=qjm_base.removesuffix("qjm/api/"), token=user.token, timeout=20)
    try:
        # Registering a local job starts the kernel's own watcher on it (reports and check-ins).
        await asyncio.to_thread(client.register_job, job, ["CANCELLED"])
        watcher = SESSION.watcher()
        assert job.job_id() in watcher.watched_ids()

        async def reported(status: str) -> bool:
            return (await api.get(f"jobs/{job.job_id()}", headers=user.headers)).json()["status"] == status

        async def checked_in() -> bool:
            return (await api.get(f"jobs/{job.job_id()}", headers=user.headers)).json()["last_poll_at"] is not None

        await until(checked_in, "the kernel's first check-in")
        out = await asyncio.to_thread(client.cancel_job, job)  # the client, as a notebook would
        assert out["state"] == "requested" and out["job"]["cancel_requested_at"]
        await until(lambda: reported("CANCELLED"), "the kernel to cancel and report")
        assert job.job_id() in watcher.cancelled and str(job.status().name) == "CANCELLED"
    finally:
        gate.set()
        SESSION.forget_local(None)
        client.close()
        executor.shutdown(wait=False, cancel_futures=True)
