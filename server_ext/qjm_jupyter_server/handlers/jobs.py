"""Jobs routes (API.md "Jobs") and `GET admin/jobs`: parse, call JobService, send."""

from __future__ import annotations

from ..api.jobs import JobList, JobOut, JobPatch, JobQueryParams, JobsDeleted, JobsIn, JobsRegistered
from ..api.spec import Op
from ..domain import Job, JobQuery, User
from ..errors import Forbidden
from ..jobs import JobSpec, ibm_url
from .base import QJMHandler

TAGS = ("jobs",)


def _out(job: Job) -> JobOut:
    return JobOut.from_job(job, ibm_url(job))


def _query(params: JobQueryParams) -> JobQuery:
    return JobQuery(
        user_id=None,  # the service scopes it
        statuses=params.status,
        active=params.active,
        label=params.label,
        group=params.group,
        updated_after=params.updated_after_ms(),
        limit=params.limit,
        offset=params.offset,
    )


class _JobListing(QJMHandler):
    async def _send_list(self, actor: User, all_users: bool) -> None:
        params = self.query()
        page = await self.services.jobs.list_jobs(actor, _query(params), all_users=all_users)
        self.send(
            JobList(
                jobs=[_out(j) for j in page.jobs],
                total=page.total,
                limit=params.limit,
                offset=params.offset,
                server_time=page.server_time,
                deleted=page.deleted,
            )
        )


class JobsHandler(_JobListing):
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
        assert self.user is not None
        specs = [
            JobSpec(
                job_id=j.job_id,
                backend=j.backend,
                instance=j.instance,
                channel=j.channel,
                created=j.created_ms(),
                notify_status=j.notify_status,
                label=j.label,
                group=j.group,
                source=j.source,
            )
            for j in payload.jobs
        ]
        result = await self.services.jobs.register(self.user, specs)
        self.send(JobsRegistered(jobs=[_out(j) for j in result.jobs], created=result.created, merged=result.merged))

    async def get(self) -> None:
        assert self.user is not None
        await self._send_list(self.user, all_users=False)

    async def delete(self) -> None:
        assert self.user is not None
        self.send(JobsDeleted(deleted=await self.services.jobs.delete_all(self.user)))


class JobHandler(QJMHandler):
    route = r"/qjm/api/jobs/(?P<job_id>[^/]+)"
    spec = {
        "get": Op("One job, by our id or the IBM job id", response=JobOut, tags=TAGS, errors=(404,)),
        "patch": Op("Change what to be notified of, or the label", body=JobPatch, response=JobOut, tags=TAGS, errors=(404,)),
        "delete": Op("Stop watching a job", response=None, status=204, tags=TAGS, errors=(404,)),
    }

    async def get(self, job_id: str) -> None:
        assert self.user is not None
        self.send(_out(await self.services.jobs.get(self.user, job_id)))

    async def patch(self, job_id: str) -> None:
        assert self.user is not None
        patch: JobPatch = self.body()
        self.send(_out(await self.services.jobs.update(self.user, job_id, patch.changes())))

    async def delete(self, job_id: str) -> None:
        assert self.user is not None
        await self.services.jobs.delete(self.user, job_id)
        self.send(None)


class AdminJobsHandler(_JobListing):
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
        assert self.user is not None
        if not self.user.is_admin:
            raise Forbidden("admins only")
        await self._send_list(self.user, all_users=True)


HANDLERS: list[type[QJMHandler]] = [JobsHandler, JobHandler, AdminJobsHandler]
