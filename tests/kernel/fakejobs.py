"""Stand-in job classes whose MRO names match the real ones (for pure unit tests).

Each class is defined in a module object named like the real module, so `jobs.job_kind`
sees exactly the names it would see on a real qiskit job, without importing qiskit.
"""

from __future__ import annotations

import types
from typing import Any


def _in_module(module: str, name: str, body: dict[str, Any], bases: tuple[type, ...] = (object,)) -> type:
    mod = types.ModuleType(module)
    cls = type(name, bases, {**body, "__module__": module})
    cls.__qualname__ = name
    setattr(mod, name, cls)
    return cls


class _Backend:
    def __init__(self, name: str, instance: str | None = None) -> None:
        self.name = name
        self._instance = instance


def _v2_init(self: Any, job_id: str, backend: str | None = "ibm_fake", instance: str | None = None,
             created: str | None = None, channel: str = "ibm_quantum_platform") -> None:
    self._job_id = job_id
    self._backend = _Backend(backend, instance) if backend else None
    self._creation_date = created
    self._service = types.SimpleNamespace(_channel=channel)
    self._api_client = types.SimpleNamespace(_instance=instance)
    self.network_calls = 0


def _forbidden(self: Any, *a: Any, **k: Any) -> Any:
    self.network_calls += 1
    raise AssertionError("this call would reach the network")


FakeRuntimeJobV2 = _in_module(
    "qiskit_ibm_runtime.runtime_job_v2", "RuntimeJobV2",
    {"__init__": _v2_init, "job_id": lambda self: self._job_id, "status": _forbidden, "backend": _forbidden},
)


def _local_init(self: Any, job_id: str, statuses: list[str] | None = None, backend: str = "aer_simulator") -> None:
    self._job_id = job_id
    self._statuses = list(statuses or ["DONE"])
    self._backend_name = backend


def _local_status(self: Any) -> Any:
    return types.SimpleNamespace(name=self._statuses.pop(0) if len(self._statuses) > 1 else self._statuses[0])


FakeAerJob = _in_module(
    "qiskit_aer.jobs.aerjob", "AerJob",
    {"__init__": _local_init, "job_id": lambda self: self._job_id, "status": _local_status,
     "backend": lambda self: types.SimpleNamespace(name=self._backend_name)},
)

FakeProviderJob = _in_module(
    "qiskit_ibm_provider.job.ibm_circuit_job", "IBMCircuitJob", {"job_id": lambda self: "legacy-1"},
)
