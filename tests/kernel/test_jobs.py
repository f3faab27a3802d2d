"""Turning jobs into registrations: types by MRO name, nested shapes, no network."""

from __future__ import annotations

import pytest

from qjm_jupyter.errors import UnsupportedJobError
from qjm_jupyter.jobs import describe, flatten, job_kind, registrations

from .fakejobs import FakeAerJob, FakeProviderJob, FakeRuntimeJobV2

CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/acct:inst::"


def test_runtime_job_fields_without_network() -> None:
    job = FakeRuntimeJobV2("j1", backend="ibm_torino", instance=CRN, created="2026-01-02T03:04:05.123Z")
    assert describe(job) == {
        "job_id": "j1", "source": "ibm", "backend": "ibm_torino", "instance": CRN,
        "channel": "ibm_quantum_platform", "created": "2026-01-02T03:04:05.123Z",
    }
    assert job.network_calls == 0


def test_runtime_job_without_backend_or_date_still_registers() -> None:
    job = FakeRuntimeJobV2("j2", backend=None, instance=None, created=None)
    assert describe(job) == {"job_id": "j2", "source": "ibm", "channel": "ibm_quantum_platform"}
    assert job.network_calls == 0


def test_id_string_and_local_job() -> None:
    assert describe(" abc ") == {"job_id": "abc", "source": "ibm"}
    assert describe(FakeAerJob("aer-1")) == {"job_id": "aer-1", "source": "local", "channel": "local", "backend": "aer_simulator"}
    with pytest.raises(ValueError):
        describe("  ")


def test_provider_jobs_are_refused_with_the_shutdown_date() -> None:
    with pytest.raises(UnsupportedJobError, match="2025-07-01.*qiskit-ibm-runtime"):
        describe(FakeProviderJob())
    assert job_kind(FakeProviderJob()) == "legacy"


def test_unknown_objects_name_their_type_and_position() -> None:
    leaves = flatten(["a", [object()]])
    with pytest.raises(UnsupportedJobError, match=r"job\[1\]\[0\].*builtins.object"):
        registrations(leaves)


def test_nested_jobs_with_matching_notify_shape() -> None:
    jobs = [["a", "b"], ["c"], "d"]
    notify = [[["DONE"], ["running", "completed"]], [["failed"]], "CANCELED"]
    leaves = flatten(jobs, notify)
    assert [(leaf.where, leaf.job, leaf.notify) for leaf in leaves] == [
        ("[0][0]", "a", ["DONE"]),
        ("[0][1]", "b", ["RUNNING", "DONE"]),
        ("[1][0]", "c", ["ERROR"]),
        ("[2]", "d", ["CANCELLED"]),
    ]


def test_flat_status_list_applies_to_every_job() -> None:
    leaves = flatten([["a"], ["b", "c"]], ["RUNNING", "DONE"])
    assert [leaf.notify for leaf in leaves] == [["RUNNING", "DONE"]] * 3
    assert [leaf.notify for leaf in flatten("a", ["DONE"])] == [["DONE"]]
    assert [leaf.notify for leaf in flatten(["a", "b"])] == [None, None]


def test_shape_mismatch_names_the_position() -> None:
    with pytest.raises(ValueError, match=r"notify_status\[1\] has 1 entries but job\[1\] has 2"):
        flatten(["a", ["b", "c"]], [["DONE"], [["DONE"]]])
    with pytest.raises(ValueError, match=r"notify_status\[1\]\[0\] must be a list of statuses"):
        flatten(["a", ["b"]], [["DONE"], [[["DONE"]]]])
    with pytest.raises(ValueError, match=r"notify_status\[0\]: unknown job status 'FINISHED'"):
        flatten(["a", "b"], [["FINISHED"], ["DONE"]])


def test_registrations_carry_label_group_and_order() -> None:
    leaves = flatten([FakeRuntimeJobV2("x", instance=CRN), "y", FakeAerJob("z")], [["DONE"], ["ERROR"], ["DONE"]])
    recs = registrations(leaves, label="sweep", group="g1")
    assert [r["job_id"] for r in recs] == ["x", "y", "z"]
    assert [r["source"] for r in recs] == ["ibm", "ibm", "local"]
    assert all(r["label"] == "sweep" and r["group"] == "g1" for r in recs)
    assert recs[1]["notify_status"] == ["ERROR"]


@pytest.mark.timeout(120)
def test_real_runtime_job_from_the_fake_ibm_api(fake_ibm) -> None:
    pytest.importorskip("qiskit_ibm_runtime")
    fake_ibm.add_job("real-1", "Queued", backend="ibm_fake")
    job = fake_ibm.runtime_job("real-1")
    before = len(fake_ibm.calls)
    rec = describe(job)
    assert len(fake_ibm.calls) == before, "describe() must not make HTTP calls"
    assert rec["job_id"] == "real-1" and rec["source"] == "ibm"
    assert rec["channel"] == "ibm_quantum_platform"
    assert rec.get("instance") == fake_ibm.default_crn
    assert rec.get("backend") == "ibm_fake"


def test_primitive_jobs_name_what_they_run_on() -> None:
    """Real qiskit primitives: a PrimitiveJob carries no backend itself; its primitive does."""
    qiskit = pytest.importorskip("qiskit")
    aer = pytest.importorskip("qiskit_aer")
    from qiskit.primitives import BackendSamplerV2, StatevectorSampler
    from qiskit_aer.primitives import SamplerV2

    qc = qiskit.QuantumCircuit(1)
    qc.h(0)
    qc.measure_all()
    found = {}
    for sampler in (StatevectorSampler(), BackendSamplerV2(backend=aer.AerSimulator()), SamplerV2()):
        job = sampler.run([qc])
        job.result()
        found[type(sampler).__name__] = describe(job).get("backend")
    assert found == {"StatevectorSampler": "StatevectorSampler", "BackendSamplerV2": "aer_simulator", "SamplerV2": "aer_simulator"}
