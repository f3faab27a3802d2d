"""`POST qjm/api/jobs/{job_id}/status`: the kernel reports the status of a local job."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..api.jobs import JobOut, StatusIn, Text
from ..api.spec import Op
from ..jobs import ibm_url
from ..watcher.transitions import report_local_status
from .base import QJMHandler


class StatusReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: StatusIn
    reason: Text(2000) | None = Field(  # type: ignore[valid-type]
        default=None, description="Why (an error message, say); kept as the job's error_reason for ERROR/CANCELLED."
    )


class JobStatusReportHandler(QJMHandler):
    route = r"/qjm/api/jobs/(?P<job_id>[^/]+)/status"
    spec = {
        "post": Op(
            "Report the status of a local job (kernel-run simulator jobs)",
            body=StatusReport,
            response=JobOut,
            tags=("jobs",),
            errors=(404, 409),
            description="Applies the status like the watcher would: skipped statuses are implied, requested "
            "ones are mailed once. IBM jobs answer 409: their status comes from IBM Quantum.",
        ),
    }

    async def post(self, job_id: str) -> None:
        assert self.user is not None
        report: StatusReport = self.body()
        svc = self.services
        job = await svc.jobs.get(self.user, job_id)
        after = await report_local_status(
            svc.store, svc.messages, self.user, job, report.status, report.reason, svc.clock.now_ms()
        )
        self.send(JobOut.from_job(after, ibm_url(after)))
