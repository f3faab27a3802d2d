"""Cancelling a watched job from where its notification is seen (panel, web UI, client).

- An IBM job: IBM's cancel endpoint, with the owner's stored key. IBM cancels
  asynchronously; the job is re-read at once so a quick cancel shows (and mails) now,
  and its poll unit is made due so a slow one shows at the next poll.
- A local job lives in a kernel; the server cannot reach into it. The kernel's local
  watcher checks in every few seconds while it has jobs (`checkin`), which both says the
  kernel is alive and collects cancel requests. A job whose kernel has not checked in
  recently answers "the kernel that runs this job is gone" instead of a request that
  nobody would ever act on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from qjm_jupyter.statuses import is_final

from .clock import Clock
from .domain import Job, User
from .errors import AlreadyExists, Forbidden, NotFound, ServiceUnavailable
from .jobs import JobService
from .notify.messages import MessageFactory
from .secrets import KeyRing
from .store import Store
from .watcher.ibm import IBMClient, IBMError
from .watcher.transitions import IBMFacts, apply_observation

log = logging.getLogger("qjm")

CHECKIN_SECONDS = 2.0  # how often a kernel's local watcher checks in (qjm_jupyter.local)
ALIVE_MS = 15_000  # a kernel silent this long is taken for gone
MAX_CHECKIN_JOBS = 1000


@dataclass(frozen=True)
class CancelOutcome:
    job: Job
    state: str  # "cancelled": it is final now | "requested": IBM or the kernel will act shortly
    message: str


class CancelService:
    def __init__(
        self, store: Store, keyring: KeyRing, ibm: IBMClient, jobs: JobService, messages: MessageFactory, clock: Clock
    ) -> None:
        self.store, self.keyring, self.ibm, self.jobs, self.messages, self.clock = store, keyring, ibm, jobs, messages, clock

    async def cancel(self, user: User, ref: str) -> CancelOutcome:
        job = await self.jobs.get(user, ref)
        if job.user_id != user.id:
            raise NotFound(f"no job {ref!r}", field="job_id")  # admins cancel their own jobs only
        if is_final(job.status):
            raise AlreadyExists(f"job {job.ibm_job_id!r} has already finished ({job.status})", field="job_id", code="already_final")
        if job.source == "local":
            return await self._local(job)
        return await self._ibm(user, job)

    async def _local(self, job: Job) -> CancelOutcome:
        now = self.clock.now_ms()
        if job.last_poll_at is None or now - job.last_poll_at > ALIVE_MS:
            raise AlreadyExists(
                f"the kernel that runs this job is gone: job {job.ibm_job_id!r} was not checked in by a "
                "running kernel lately, so nothing can cancel it from here",
                field="job_id", code="kernel_gone",
            )
        updated = await self.store.update_job(job.id, job.user_id, {"cancel_requested_at": now, "updated_at": now})
        if updated is None:
            raise NotFound(f"no job {job.ibm_job_id!r}", field="job_id")
        return CancelOutcome(updated, "requested", "cancel requested: the kernel running this job will cancel it within seconds")

    async def _ibm(self, user: User, job: Job) -> CancelOutcome:
        if not user.ibm_key_cipher or not job.instance:
            raise Forbidden("no IBM Quantum API key stored for your account: add one to cancel IBM jobs", code="no_ibm_key")
        try:
            key = self.keyring.decrypt(user.id, user.ibm_key_cipher)
        except Exception:  # noqa: BLE001 - token_keys changed without rotation
            raise Forbidden("your stored IBM Quantum API key cannot be decrypted; store it again", code="no_ibm_key") from None
        try:
            await self.ibm.cancel_job(key, job.instance, job.ibm_job_id)
        except IBMError as exc:
            raise _as_error(exc, job) from None
        now = self.clock.now_ms()
        after = job
        try:
            state = await self.ibm.get_job(key, job.instance, job.ibm_job_id)
            if state.status:
                written = await apply_observation(
                    self.store, self.messages, user, job, state.status, state.reason, now,
                    facts=IBMFacts(backend=state.backend, created=state.created),
                )
                after = written or job
        except IBMError as exc:
            log.info("qjm: job %s cancel sent; re-reading it failed (%s), the poller will see it", job.id, exc.kind)
        await self.store.touch_poll_unit(user.id, job.instance, now)
        if after.status == "CANCELLED":
            return CancelOutcome(after, "cancelled", "cancelled on IBM Quantum")
        return CancelOutcome(after, "requested", "IBM Quantum accepted the cancel; the job stops shortly")

    async def checkin(self, user: User, job_ids: Sequence[str]) -> list[str]:
        """A kernel's local watcher: 'I still run these jobs'. Returns those to cancel."""
        now = self.clock.now_ms()
        cancel: list[str] = []
        for ref in list(dict.fromkeys(job_ids))[:MAX_CHECKIN_JOBS]:
            job = await self.store.get_job_by_ibm_id(user.id, ref)
            if job is None or job.source != "local" or is_final(job.status):
                continue
            await self.store.update_job(job.id, user.id, {"last_poll_at": now})
            if job.cancel_requested_at is not None:
                cancel.append(job.ibm_job_id)
        return cancel


def _as_error(exc: IBMError, job: Job) -> Exception:
    if exc.kind == "conflict":
        return AlreadyExists(f"IBM Quantum cannot cancel job {job.ibm_job_id!r}: it has already finished", field="job_id", code="already_final")
    if exc.kind == "not_found":
        return NotFound(f"IBM Quantum does not know job {job.ibm_job_id!r} on its instance", field="job_id")
    if exc.kind == "auth_invalid":
        return Forbidden("IBM Quantum rejected your API key; store a valid one to cancel jobs", code="ibm_key_invalid")
    if exc.kind == "forbidden":
        return Forbidden("your IBM Quantum API key may not use this job's instance", code="ibm_forbidden")
    return ServiceUnavailable(f"IBM Quantum did not take the cancel ({exc.kind}); try again shortly")
