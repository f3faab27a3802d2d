"""Jobs routes (API.md "Jobs") and `GET admin/jobs`: parse, call JobService, send."""

from __future__ import annotations

from ..api.jobs import (
    JobList,
    JobOut,
    JobPatch,
    JobQueryParams,
    JobsDeleted,
    JobsIn,
    JobsRegistered,
    StatusReport,
    job_list_json,
    jobs_registered_json,
)
from ..api.spec import Op
from .base import QJMHandler

TAGS = ("jobs",)


class JobsHandler(QJMHandler):
    route = r"/qjm/api/jobs"
    spec = {
        "post": Op(
            "Watch jobs (one or many; a job already watched is merged)",
            body=JobsIn,
            response=JobsRegistered,
            status=201,
            tags=TAGS,
            description="Body: `{\"jobs\": [JobIn, ...]}` or a single JobIn. Re-registering a job "
            "adds its notify_status to the ones already asked for.",
        ),
        "get": Op(
            "List my jobs",
            query=JobQueryParams,
            response=JobList,
            tags=TAGS,
            description="Newest first; with updated_after, oldest change first (a changes feed).",
        ),
        "delete": Op("Stop watching all my jobs", response=JobsDeleted, tags=TAGS),
    }

    async def post(self) -> None:
        payload: JobsIn = self.body()
        result = await self.services.jobs.register(self.user, payload.to_specs())
        self.send(jobs_registered_json(result))  # a JobsRegistered

    async def get(self) -> None:
        params: JobQueryParams = self.query()
        page = await self.services.jobs.list_jobs(self.user, params.to_query())
        self.send(job_list_json(page, params))  # a JobList, no model per job

    async def delete(self) -> None:
        self.send(JobsDeleted(deleted=await self.services.jobs.delete_all(self.user)))


class JobHandler(QJMHandler):
    route = r"/qjm/api/jobs/(?P<job_id>[^/]+)"
    spec = {
        "get": Op("One job, by our id or the IBM job id", response=JobOut, tags=TAGS, errors=(404,)),
        "patch": Op("Change what to be notified of, or the label", body=JobPatch, response=JobOut, tags=TAGS, errors=(404,)),
        "delete": Op("Stop watching a job", response=None, status=204, tags=TAGS, errors=(404,)),
    }

    async def get(self, job_id: str) -> None:
        self.send(JobOut.from_job(await self.services.jobs.get(self.user, job_id)))

    async def patch(self, job_id: str) -> None:
        patch: JobPatch = self.body()
        self.send(JobOut.from_job(await self.services.jobs.update(self.user, job_id, patch.changes())))

    async def delete(self, job_id: str) -> None:
        await self.services.jobs.delete(self.user, job_id)
        self.send(None)


class JobStatusReportHandler(QJMHandler):
    route = r"/qjm/api/jobs/(?P<job_id>[^/]+)/status"
    spec = {
        "post": Op(
            "Report the status of a local job (kernel-run simulator jobs)",
            body=StatusReport,
            response=JobOut,
            tags=TAGS,
            errors=(404, 409),
            description="Applies the status like the watcher would: skipped statuses are implied, requested "
            "ones are mailed once. IBM jobs answer 409: their status comes from IBM Quantum.",
        ),
    }

    async def post(self, job_id: str) -> None:
        report: StatusReport = self.body()
        job = await self.services.jobs.report_status(self.user, job_id, report.status, report.reason)
        self.send(JobOut.from_job(job))


class AdminJobsHandler(QJMHandler):
    route = r"/qjm/api/admin/jobs"
    spec = {
        "get": Op(
            "List every user's jobs (admins)",
            query=JobQueryParams,
            response=JobList,
            tags=("admin",),
            errors=(403,),
        ),
    }

    async def get(self) -> None:
        params: JobQueryParams = self.query()
        page = await self.services.jobs.list_jobs(self.user, params.to_query(), all_users=True)
        self.send(job_list_json(page, params))  # a JobList, no model per job


HANDLERS: list[type[QJMHandler]] = [JobsHandler, JobHandler, JobStatusReportHandler, AdminJobsHandler]
