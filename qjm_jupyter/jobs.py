"""Turning what a user hands `register_job` into API registrations (`JobIn` dicts).

Job types are recognised by class names in the MRO, so neither this module nor
`%load_ext qjm_jupyter` ever imports qiskit. Reading a job never touches the network:
only attributes the job object already holds are read (in qiskit-ibm-runtime,
`RuntimeJobV2.backend()` may block in `wait_for_final_state()` and `status()` or
`creation_date` make a GET, so the cached `_backend`, `_status` and `_creation_date` are
read instead).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import UnsupportedJobError
from .statuses import UnknownStatus, normalize_statuses

RUNTIME_V2 = "qiskit_ibm_runtime.runtime_job_v2.RuntimeJobV2"
RUNTIME_V1 = "qiskit_ibm_runtime.runtime_job.RuntimeJob"
LOCAL_RUNTIME = "qiskit_ibm_runtime.fake_provider.local_runtime_job.LocalRuntimeJob"
AER = "qiskit_aer.jobs.aerjob.AerJob"
PRIMITIVE = "qiskit.primitives.primitive_job.PrimitiveJob"
BASE_PRIMITIVE = "qiskit.primitives.base.base_primitive_job.BasePrimitiveJob"

PROVIDER_SHUT_DOWN = (
    "this job comes from qiskit-ibm-provider, whose platform (IBM Quantum Platform Classic) was shut down "
    "on 2025-07-01; submit with qiskit-ibm-runtime (QiskitRuntimeService, SamplerV2/EstimatorV2) instead"
)


def mro_names(obj: object) -> set[str]:
    return {f"{c.__module__}.{c.__qualname__}" for c in type(obj).__mro__}


def job_kind(obj: object) -> str:
    """"ibm" (server-watched), "local" (kernel-watched), "legacy" (refused) or "unknown"."""
    if isinstance(obj, str):
        return "id"
    names = mro_names(obj)
    if RUNTIME_V2 in names or RUNTIME_V1 in names:
        return "ibm"
    if LOCAL_RUNTIME in names or AER in names or PRIMITIVE in names or BASE_PRIMITIVE in names:
        return "local"
    if any(n.startswith(("qiskit_ibm_provider.", "qiskit.providers.ibmq.", "qiskit_ibmq_provider.")) for n in names):
        return "legacy"
    return "unknown"


def is_job(obj: object) -> bool:
    """True for job objects we know how to watch (ids are not job objects)."""
    return not isinstance(obj, str) and job_kind(obj) in ("ibm", "local")


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.astimezone()  # qiskit's local jobs use naive local time
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    return str(value)


def _safe(getter: Any) -> Any:
    try:
        return getter()
    except Exception:  # noqa: BLE001 - private attributes move between versions; a field is optional
        return None


def _runtime_instance(job: Any) -> str | None:
    backend = getattr(job, "_backend", None)
    for value in (
        getattr(backend, "_instance", None),
        getattr(getattr(job, "_api_client", None), "_instance", None),
        _safe(lambda: job._service._account.instance),
        _safe(lambda: job._service._active_api_client._instance),
    ):
        if isinstance(value, str) and value:
            return value
    return None


def _backend_name(backend: Any) -> str | None:
    name = getattr(backend, "name", None)
    if callable(name):
        name = _safe(name)
    return name if isinstance(name, str) and name else None


def _local_backend(job: Any) -> str | None:
    """What a local job runs on: the backend of an Aer or local-runtime job; for a qiskit
    `PrimitiveJob`, the backend of the primitive that made it (BackendSamplerV2, Aer's
    SamplerV2), else the primitive's class name (StatevectorSampler has no backend)."""
    names = mro_names(job)
    if AER in names or LOCAL_RUNTIME in names:
        name = _backend_name(_safe(job.backend))  # local object, no network
        if name:
            return name
    primitive = getattr(getattr(job, "_function", None), "__self__", None)
    if primitive is None:
        return None
    for attr in ("backend", "_backend"):
        value = getattr(primitive, attr, None)
        name = _backend_name(value() if callable(value) and not hasattr(value, "name") else value)
        if name:
            return name
    return type(primitive).__name__


def describe(job: Any) -> dict[str, Any]:
    """The JobIn fields of one job object or job id string (no network calls)."""
    kind = job_kind(job)
    if kind == "id":
        job_id = job.strip()
        if not job_id:
            raise ValueError("a job id must not be empty")
        return {"job_id": job_id, "source": "ibm"}
    if kind == "legacy":
        raise UnsupportedJobError(PROVIDER_SHUT_DOWN)
    if kind == "unknown":
        raise UnsupportedJobError(
            f"cannot watch a {type(job).__module__}.{type(job).__qualname__}: expected a qiskit-ibm-runtime job "
            "(RuntimeJobV2), an IBM job id string, or a local job (qiskit-aer AerJob, a qiskit PrimitiveJob)"
        )
    job_id = str(job.job_id())
    if kind == "ibm":
        out: dict[str, Any] = {"job_id": job_id, "source": "ibm"}
        backend = getattr(job, "_backend", None)
        name = getattr(backend, "name", None)
        if isinstance(name, str) and name:
            out["backend"] = name
        instance = _runtime_instance(job)
        if instance:
            out["instance"] = instance
        channel = _safe(lambda: job._service._channel)
        if isinstance(channel, str) and channel:
            out["channel"] = channel
        created = _iso(getattr(job, "_creation_date", None))
        if created:
            out["created"] = created
        return out
    out = {"job_id": job_id, "source": "local", "channel": "local"}
    name = _local_backend(job)
    if name:
        out["backend"] = name
    created = _iso(getattr(job, "_created", None))
    if created:
        out["created"] = created
    return out


@dataclass
class Leaf:
    """One job found in a (nested) input, with its position and its own notify list."""

    path: tuple[int, ...]
    job: Any
    notify: list[str] | None

    @property
    def where(self) -> str:
        return "".join(f"[{i}]" for i in self.path)


def _is_status_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) or hasattr(v, "name") for v in value)


def _statuses(value: Any, where: str) -> list[str]:
    items = [value] if isinstance(value, str) or hasattr(value, "name") else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"notify_status{where} must be a list of statuses, got {type(value).__name__}")
    try:
        return normalize_statuses(items)
    except UnknownStatus as exc:
        raise ValueError(f"notify_status{where}: {exc}") from None


def _is_nested(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def flatten(jobs: Any, notify_status: Any = None) -> list[Leaf]:
    """Walk nested lists of jobs together with a notify_status of the same shape.

    A flat list of status names (or one name) at any level applies to every job below it,
    so `notify_status=["RUNNING", "DONE"]` works for one job and for a list alike.
    """
    out: list[Leaf] = []

    def walk(item: Any, notify: Any, path: tuple[int, ...]) -> None:
        where = "".join(f"[{i}]" for i in path)
        if _is_nested(item):
            if notify is None or isinstance(notify, str) or _is_status_list(notify):
                shared = None if notify is None else _statuses(notify, where)
                for i, child in enumerate(item):
                    walk(child, shared, (*path, i))
                return
            if not _is_nested(notify):
                raise ValueError(f"notify_status{where} must be a list like job{where}, got {type(notify).__name__}")
            if len(notify) != len(item):
                raise ValueError(
                    f"notify_status{where} has {len(notify)} entries but job{where} has {len(item)}; "
                    "give one entry per job (or one flat list of statuses for all)"
                )
            for i, (child, child_notify) in enumerate(zip(item, notify)):
                walk(child, child_notify, (*path, i))
            return
        if notify is None:
            out.append(Leaf(path, item, None))
            return
        if _is_nested(notify) and not _is_status_list(notify):
            raise ValueError(
                f"notify_status{where} must be a list of statuses for the single job at job{where}, "
                "but it is nested deeper than the jobs"
            )
        out.append(Leaf(path, item, _statuses(notify, where)))

    walk(jobs, notify_status, ())
    return out


def registrations(leaves: Sequence[Leaf], *, label: str | None = None, group: str | None = None) -> list[dict[str, Any]]:
    """JobIn dicts for the API, in input order; a shape or type problem names its position."""
    out = []
    for leaf in leaves:
        try:
            record = describe(leaf.job)
        except UnsupportedJobError as exc:
            raise UnsupportedJobError(f"job{leaf.where}: {exc}" if leaf.path else str(exc)) from None
        if leaf.notify is not None:
            record["notify_status"] = leaf.notify
        if label is not None:
            record["label"] = label
        if group is not None:
            record["group"] = group
        out.append(record)
    return out


def iter_ids(value: Any) -> Iterator[str]:
    """Job ids from an id, a job object, or nested lists of either."""
    if _is_nested(value):
        for item in value:
            yield from iter_ids(item)
    elif isinstance(value, str):
        yield value
    else:
        yield describe(value)["job_id"]
