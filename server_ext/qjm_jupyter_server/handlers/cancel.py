"""`POST jobs/{id}/cancel` (any client) and `POST jobs/local/checkin` (a kernel's local watcher)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..api.jobs import JobIdText, JobOut
from ..api.spec import Op
from ..cancel import CHECKIN_SECONDS
from .base import QJMHandler

TAGS = ("jobs",)


class CancelOut(BaseModel):
    state: Literal["cancelled", "requested"] = Field(
        description="cancelled: the job is CANCELLED now | requested: IBM Quantum or the job's kernel stops it shortly"
    )
    message: str
    job: JobOut


class CheckinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_ids: list[JobIdText] = Field(max_length=1000, description="The local jobs this kernel still runs.")


class CheckinOut(BaseModel):
    cancel: list[str] = Field(description="Job ids whose cancel was requested: the kernel cancels them.")
    interval_seconds: float = Field(description="Check in again after this long; a kernel silent for longer counts as gone.")


class JobCancelHandler(QJMHandler):
    route = r"/qjm/api/jobs/(?P<job_id>[^/]+)/cancel"
    spec = {
        "post": Op(
            "Cancel a job: IBM jobs on IBM Quantum (with your stored key), local jobs through their kernel",
            response=CancelOut, status=202, tags=TAGS, errors=(403, 404, 409),
            description="409 `already_final` for a finished job, 409 `kernel_gone` for a local job whose kernel "
            "no longer checks in, 403 when no usable IBM key is stored, 503 when IBM Quantum did not answer.",
        )
    }

    async def post(self, job_id: str) -> None:
        out = await self.services.cancel.cancel(self.user, job_id)
        self.send(CancelOut(state=out.state, message=out.message, job=JobOut.from_job(out.job)))


class LocalCheckinHandler(QJMHandler):
    route = r"/qjm/api/jobs/local/checkin"
    spec = {
        "post": Op(
            "A kernel's local watcher checks in: it still runs these local jobs; answers which to cancel",
            body=CheckinIn, response=CheckinOut, tags=TAGS, errors=(422,),
        )
    }

    async def post(self) -> None:
        body: CheckinIn = self.body()
        cancel = await self.services.cancel.checkin(self.user, body.job_ids)
        self.send(CheckinOut(cancel=cancel, interval_seconds=CHECKIN_SECONDS))


HANDLERS: list[type[QJMHandler]] = [LocalCheckinHandler, JobCancelHandler]
