"""Request and response models of the jobs API (see server_ext/API.md, "Jobs").

Models validate at the edge so the service gets clean values: statuses are
normalized here (any case, IBM/qiskit aliases) and a bad one is reported with its
exact position (`jobs.0.notify_status.1`); times go in as ISO 8601 and out as
`api.times` strings. The same classes generate the OpenAPI document.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic.json_schema import GetJsonSchemaHandler, JsonSchemaValue
from pydantic_core import CoreSchema

from qjm_jupyter.statuses import STATUSES, UnknownStatus, normalize_status

from ..domain import Job, JobQuery
from ..jobs import JobPage, JobSpec, Registered
from .accounts import check_crn
from .times import IsoTime, UtcDateTime, dt_to_ms, ms_to_iso

# -- shared field types ----------------------------------------------------------------------------


def _status(value: object) -> str:
    try:
        return normalize_status(value)
    except UnknownStatus as exc:
        raise ValueError(str(exc)) from None


def _encodable(value: str) -> str:
    # JSON may carry lone surrogates ("\ud800"); no database can store them as UTF-8.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


def Text(max_length: int, min_length: int = 0) -> Any:  # noqa: N802 - reads like a type
    """A bounded string that every store can hold."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(_encodable),
    ]


_STATUS_DOC = "A job status; any case, and the aliases COMPLETED, FAILED, CANCELED are accepted."

# A status as a request field: normalized before validation, documented as the vocabulary.
StatusIn = Annotated[
    str,
    BeforeValidator(_status),
    WithJsonSchema({"type": "string", "enum": list(STATUSES), "description": _STATUS_DOC}),
]
# A status as a response field.
StatusOut = Annotated[str, WithJsonSchema({"type": "string", "enum": list(STATUSES)})]


def _as_list(value: object) -> object:
    """One status may come bare ("DONE"), or comma-separated in a query string."""
    if isinstance(value, str):
        return [part for part in value.split(",") if part.strip()]
    return value


StatusList = Annotated[list[StatusIn], BeforeValidator(_as_list), Field(max_length=20)]

# IBM job ids are short alphanumeric strings or UUIDs; keeping ids URL-path safe means
# every registered job can be addressed as `jobs/{id}`.
JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+=-]*$"
JobIdText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=JOB_ID_PATTERN),
]


# -- requests --------------------------------------------------------------------------------------


class JobIn(BaseModel):
    """One job to watch, as the kernel (or any client) registers it."""

    model_config = ConfigDict(extra="forbid")

    job_id: JobIdText = Field(description="The IBM Quantum job id (or the kernel's id of a local job).")
    backend: Text(128) | None = None  # type: ignore[valid-type]
    instance: Annotated[Text(512) | None, AfterValidator(check_crn)] = Field(  # type: ignore[valid-type]
        default=None, description="IBM instance CRN; defaults to the account's default_instance."
    )
    channel: Text(64) | None = None  # type: ignore[valid-type]
    created: UtcDateTime | None = Field(default=None, description="When IBM created the job (ISO 8601).")
    notify_status: StatusList | None = Field(
        default=None, description="Statuses to be notified of; defaults to the account's notify_default."
    )
    label: Text(200) | None = None  # type: ignore[valid-type]
    group: Text(200) | None = None  # type: ignore[valid-type]
    source: Literal["ibm", "local"] = Field(
        default="ibm", description='"local": a simulator job whose status the kernel reports.'
    )

    def to_spec(self) -> JobSpec:
        """The service's view of one registration (times as epoch ms)."""
        return JobSpec(
            job_id=self.job_id,
            backend=self.backend,
            instance=self.instance,
            channel=self.channel,
            created=dt_to_ms(self.created) if self.created is not None else None,
            notify_status=self.notify_status,
            label=self.label,
            group=self.group,
            source=self.source,
        )


class JobsIn(BaseModel):
    """`{"jobs": [JobIn, ...]}`, or one bare JobIn object (wrapped here)."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[JobIn] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _wrap_single(cls, data: Any) -> Any:
        if isinstance(data, dict) and "jobs" not in data and "job_id" in data:
            return {"jobs": [data]}
        return data

    def to_specs(self) -> list[JobSpec]:
        return [job.to_spec() for job in self.jobs]

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        batch = handler.resolve_ref_schema(handler(core_schema))
        single = handler(JobIn.__pydantic_core_schema__)
        return {"title": "JobsIn", "anyOf": [dict(batch, title="JobBatch"), single]}


class JobPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Omitted: unchanged. Not nullable: "notify of nothing" is an empty list.
    notify_status: StatusList = Field(default_factory=list)
    label: Text(200) | None = Field(default=None, description="null clears the label.")  # type: ignore[valid-type]

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class StatusReport(BaseModel):
    """What a kernel reports about a local job it runs itself."""

    model_config = ConfigDict(extra="forbid")

    status: StatusIn
    reason: Text(2000) | None = Field(  # type: ignore[valid-type]
        default=None, description="Why (an error message, say); kept as the job's error_reason for ERROR/CANCELLED."
    )


MAX_PAGE = 1000


def _job_field(name: str) -> str:
    """A field of JobOut, by its exact name (read at call time: JobOut is declared below)."""
    if name not in JobOut.model_fields:
        raise ValueError(f"unknown field {name!r}; JobOut has: {', '.join(JobOut.model_fields)}")
    return name


# `fields=label,status` or `fields=label&fields=status`; a misspelt name is a 422 naming it
# (`fields.1: unknown field 'stauts'`), never silently dropped.
FieldList = Annotated[
    list[Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_job_field)]],
    BeforeValidator(_as_list),
    Field(min_length=1, max_length=64),
]


class JobQueryParams(BaseModel):
    """Filters of `GET jobs` / `GET admin/jobs`; `status` may repeat (`status=DONE&status=ERROR`)."""

    model_config = ConfigDict(extra="forbid")

    status: StatusList | None = None
    active: bool | None = Field(default=None, description="true: still watched; false: finished or lost.")
    label: Text(200) | None = None  # type: ignore[valid-type]
    group: Text(200) | None = None  # type: ignore[valid-type]
    updated_after: UtcDateTime | None = Field(
        default=None, description="Only jobs changed after this time, oldest change first (a changes feed)."
    )
    limit: int = Field(default=50, ge=1, le=MAX_PAGE, description=f"At most {MAX_PAGE}: a user's jobs in one request.")
    offset: int = Field(default=0, ge=0, le=1_000_000_000)
    view: Literal["full", "summary"] = Field(
        default="full",
        description='"summary": each job as a JobSummary (what a job list shows; no history), a third of the bytes.',
    )
    fields: FieldList | None = Field(
        default=None,
        description="Only these JobOut fields per job (comma-separated or repeated; `id` always comes): what a "
        "client shows, and no more. Not with view=summary.",
    )
    total: Literal["capped", "exact"] = Field(
        default="capped",
        description='"capped": jobs are counted up to offset + limit + 1000 (total_exact false: there are more), so '
        'the first page costs the same for 10 jobs or 100,000; "exact": every matching job is counted.',
    )

    @field_validator("fields")
    @classmethod
    def _fields_of_full_view(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is not None and info.data.get("view") == "summary":
            raise ValueError("fields selects from the full view: leave out view=summary")
        return value

    def to_query(self) -> JobQuery:
        """The store query; the service scopes `user_id` to the caller (or to everyone for admins)."""
        return JobQuery(
            user_id=None,
            statuses=self.status,
            active=self.active,
            label=self.label,
            group=self.group,
            updated_after=dt_to_ms(self.updated_after) if self.updated_after is not None else None,
            limit=self.limit,
            offset=self.offset,
            exact_total=self.total == "exact",
        )


# -- responses -------------------------------------------------------------------------------------


class HistoryOut(BaseModel):
    status: StatusOut
    at: IsoTime
    reason: str | None = None


class JobOut(BaseModel):
    id: str = Field(description="Our id of the watched job.")
    job_id: str = Field(description="The IBM Quantum (or local) job id.")
    backend: str | None
    instance: str | None
    channel: str
    source: Literal["ibm", "local"]
    created: IsoTime | None
    notify_status: list[StatusOut]
    label: str | None
    group: str | None
    status: StatusOut
    history: list[HistoryOut]
    watch_state: Literal["active", "paused", "lost", "final"]
    error_reason: str | None
    last_poll_at: IsoTime | None
    last_error: str | None
    registered_at: IsoTime
    updated_at: IsoTime
    ibm_url: str | None = Field(description="The job's page on IBM Quantum Platform (null for local jobs).")
    started: IsoTime | None = Field(default=None, description="When it started running, by IBM Quantum's clock (when reported).")
    finished: IsoTime | None = Field(default=None, description="When it finished, by IBM Quantum's clock (when reported).")
    usage_seconds: float | None = Field(default=None, description="Billed quantum seconds, once IBM Quantum reports them final.")
    cancel_requested_at: IsoTime | None = Field(default=None, description="A local job's pending cancel request.")

    @classmethod
    def from_job(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            job_id=job.ibm_job_id,
            backend=job.backend,
            instance=job.instance,
            channel=job.channel,
            source=job.source,
            created=job.created,
            notify_status=list(job.notify_status),
            label=job.label,
            group=job.group,
            status=job.status,
            history=[HistoryOut(status=e.status, at=e.at, reason=e.reason) for e in job.history],
            watch_state=job.watch_state,
            error_reason=job.error_reason,
            last_poll_at=job.last_poll_at,
            last_error=job.last_error,
            registered_at=job.registered_at,
            updated_at=job.updated_at,
            ibm_url=job.ibm_url,
            started=job.started,
            finished=job.finished,
            usage_seconds=job.usage_seconds,
            cancel_requested_at=job.cancel_requested_at,
        )


class JobSummary(BaseModel):
    """A job as a list shows it: the fields of JobOut a row needs, no history or poll details.

    The Lab panel's and the kernel's job tables show status, label, backend and the link;
    the full record (history, notify_status, instance CRN, poll details) is one
    `GET jobs/{id}` away, and left out it makes a listing a third of the bytes.
    """

    id: str = Field(description="Our id of the watched job.")
    job_id: str = Field(description="The IBM Quantum (or local) job id.")
    backend: str | None
    source: Literal["ibm", "local"]
    label: str | None
    group: str | None
    status: StatusOut
    watch_state: Literal["active", "paused", "lost", "final"]
    error_reason: str | None
    updated_at: IsoTime


SUMMARY_FIELDS: tuple[str, ...] = tuple(JobSummary.model_fields)


def _history_json(job: Job) -> list[dict[str, Any]]:
    return [{"status": e.status, "at": ms_to_iso(e.at), "reason": e.reason} for e in job.history] if job.history else []


# Each JobOut field as JSON-ready data, as an expression over a Job `j`: the one place the
# full view, the summary and any `fields=` selection are rendered from (a test holds it
# equal to JobOut.from_job).
JOB_FIELDS: dict[str, str] = {
    "id": "j.id",
    "job_id": "j.ibm_job_id",
    "backend": "j.backend",
    "instance": "j.instance",
    "channel": "j.channel",
    "source": "j.source",
    "created": "iso(j.created)",
    "notify_status": "list(j.notify_status)",
    "label": "j.label",
    "group": "j.group",
    "status": "j.status",
    "history": "history(j)",
    "watch_state": "j.watch_state",
    "error_reason": "j.error_reason",
    "last_poll_at": "iso(j.last_poll_at)",
    "last_error": "j.last_error",
    "registered_at": "iso(j.registered_at)",
    "updated_at": "iso(j.updated_at)",
    "ibm_url": "j.ibm_url",
    "started": "iso(j.started)",
    "finished": "iso(j.finished)",
    "usage_seconds": "j.usage_seconds",
    "cancel_requested_at": "iso(j.cancel_requested_at)",
}


def job_renderer(fields: Sequence[str] | None = None) -> Callable[[Job], dict[str, Any]]:
    """A function turning a Job into the JSON-ready data of those JobOut fields (`id`
    first, always: clients merge and delete rows by it), or of all of them.

    A 1,000-job listing built 4,000+ pydantic objects (a JobOut and a HistoryOut per
    event) only to dump them again; this builds the dicts directly. The JobOut model
    stays the contract (OpenAPI, single-job answers). The function is compiled from
    JOB_FIELDS as one dict display (the way dataclasses and namedtuple build theirs):
    a call per field would double the cost of a full listing. Only JOB_FIELDS' own
    expressions are compiled; a name that is not a key is a KeyError.
    """
    names = list(JOB_FIELDS) if fields is None else ["id", *dict.fromkeys(f for f in fields if f != "id")]
    return _compiled(tuple(names))


@functools.lru_cache(maxsize=256)
def _compiled(names: tuple[str, ...]) -> Callable[[Job], dict[str, Any]]:
    body = ", ".join(f"{name!r}: {JOB_FIELDS[name]}" for name in names)
    render: Callable[[Job], dict[str, Any]] = eval(  # noqa: S307 - our expressions only (see job_renderer)
        f"lambda j: {{{body}}}", {"__builtins__": {"list": list}, "iso": ms_to_iso, "history": _history_json}
    )
    return render


job_out_json = job_renderer()
"""`JobOut.from_job(job)` as JSON-ready data, without building models."""
job_summary_json = job_renderer(SUMMARY_FIELDS)
"""`JobSummary` of a job as JSON-ready data."""


class JobsRegistered(BaseModel):
    jobs: list[JobOut] = Field(description="One per registered entry, in request order.")
    created: int
    merged: int



JobFields = create_model(
    "JobFields",
    __doc__="A job with only the JobOut fields a `fields=` selection names (and `id`).",
    **{name: (info.annotation, FieldInfo.merge_field_infos(info, default=None)) for name, info in JobOut.model_fields.items()},
)


class JobList(BaseModel):
    jobs: list[JobOut] | list[JobSummary] | list[JobFields] = Field(  # type: ignore[valid-type]
        description="JobOut items; JobSummary items with view=summary; with fields=, the named fields of each."
    )
    total: int = Field(
        description="Jobs matching the filters (limit and offset aside). Unless total=exact, counted only up to "
        "offset + limit + 1000: then total_exact is false and total is a lower bound that still says more pages follow."
    )
    total_exact: bool = Field(description="false: the count stopped at its cap, and there are more jobs than total.")
    limit: int
    offset: int
    server_time: IsoTime = Field(description="Pass it back as updated_after to get only later changes.")
    deleted: list[str] = Field(
        default_factory=list,
        description="With updated_after: ids (JobOut.id) of jobs deleted after it, oldest first, whatever "
        "the other filters and paging (at most 1000; more come with the next server_time). Empty without "
        "updated_after.",
    )


def job_list_json(page: JobPage, params: JobQueryParams) -> dict[str, Any]:
    """A `JobList` as JSON-ready data: JobOut items, or JobSummary items with view=summary."""
    if params.fields is not None:
        render = job_renderer(params.fields)
    else:
        render = job_summary_json if params.view == "summary" else job_out_json
    return {
        "jobs": [render(j) for j in page.jobs],
        "total": page.total,
        "total_exact": page.total_exact,
        "limit": params.limit,
        "offset": params.offset,
        "server_time": ms_to_iso(page.server_time),
        "deleted": page.deleted,
    }


def jobs_registered_json(result: Registered) -> dict[str, Any]:
    """A `JobsRegistered` as JSON-ready data (one JobOut per entry, in request order)."""
    return {"jobs": [job_out_json(j) for j in result.jobs], "created": result.created, "merged": result.merged}


class JobsDeleted(BaseModel):
    deleted: int
