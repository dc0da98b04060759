"""The worker protocol: register, claim (a lease), heartbeat, checkpoint, complete, fail,
release.

Claiming is atomic: on PostgreSQL the oldest matching job is taken with ``FOR UPDATE SKIP
LOCKED`` (concurrent claimers skip each other's rows instead of queueing on them); on SQLite
every write transaction starts with ``BEGIN IMMEDIATE`` (registry/db.py), so claims are
serialised. Either way two workers never hold the same job.

Every call after the claim names its lease. A lease that expired, was taken over by another
worker, or ended (failed, released) answers 409 Conflict, and that worker must stop: it cannot
report progress or publish. Completion publishes exactly once: the idempotency key is stored
with the result, a repeated ``complete`` with the same key returns the same version, and
publishing the same bytes twice finds the existing version by digest anyway.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from client.core.errors import BadRequest, Conflict, NotFound, TooLarge
from client.core.families import FAMILIES
from client.core.loss_curve import extend_curve
from registry import validation
from registry.accounts.access import Principal, require_scope
from registry.accounts.models import Scope
from registry.db import session_scope
from registry.settings import Settings
from registry.storage.base import BlobStore

from .models import JobStatus, TrainingJob, TrainingWorker
from .services import can_see, new_id, now, reap_expired


def _str_list(value: Any, what: str, max_len: int = 200) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 100:
        raise BadRequest(f"'{what}' must be a list of at most 100 strings")
    for item in value:
        if not validation.text(item, what, max_len):
            raise BadRequest(f"'{what}' must hold non-empty strings")
    return value


def register_worker(session: Session, principal: Principal | None, data: dict[str, Any]):
    """A worker says what it can run: the families and base models it has loaded."""
    principal = require_scope(principal, Scope.WORKER)
    validation.json_value(data, "request body")
    families = _str_list(data.get("families"), "families")
    unknown = sorted(set(families) - set(FAMILIES))
    if not families or unknown:
        raise BadRequest(
            f"'families' must name the loaded model's family: one of {', '.join(FAMILIES)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    memory = data.get("memory_bytes")
    if memory is not None:
        validation.integer(memory, "memory_bytes")
    worker = TrainingWorker(
        id=new_id("wk"),
        user_id=principal.user_id,
        name=validation.text(data.get("name"), "name", 100) or principal.username,
        families=families,
        base_models=_str_list(data.get("base_models"), "base_models"),
        device=validation.text(data.get("device"), "device", 100) or "",
        memory_bytes=memory,
    )
    session.add(worker)
    session.flush()
    return worker


def _worker(session: Session, principal: Principal | None, worker_id: str) -> TrainingWorker:
    principal = require_scope(principal, Scope.WORKER)
    worker = session.get(TrainingWorker, worker_id)
    if worker is None or (worker.user_id != principal.user_id and not principal.is_admin):
        raise NotFound(f"worker {worker_id!r} not found; register first")
    return worker


@dataclass
class Claim:
    job: TrainingJob
    lease_seconds: int


def claim_job(
    engine: Engine, principal: Principal | None, worker_id: str, lease_seconds: int
) -> Claim | None:
    """The oldest queued job this worker can run, leased to it; None when there is none."""
    with session_scope(engine) as session:
        worker = _worker(session, principal, worker_id)
        reap_expired(session)
        t = now()
        worker.last_seen_at = t
        session.add(worker)
        query = (
            select(TrainingJob)
            .where(
                TrainingJob.status == JobStatus.QUEUED.value,
                TrainingJob.family.in_(worker.families),
                or_(
                    TrainingJob.base_model.is_(None),
                    TrainingJob.base_model.in_(worker.base_models or [""]),
                ),
            )
            .order_by(TrainingJob.created_at, TrainingJob.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        job = session.exec(query).first()
        if job is None:
            return None
        job.status = JobStatus.RUNNING.value
        job.worker_id = worker.id
        job.lease_id = new_id("ls")
        job.lease_expires_at = t + timedelta(seconds=lease_seconds)
        job.attempts += 1
        job.started_at = job.started_at or t
        job.updated_at = t
        session.add(job)
        session.flush()
        return Claim(job, lease_seconds)


def leased_job(
    session: Session, principal: Principal | None, job_id: str, lease: Any, *, lock: bool = True
) -> TrainingJob:
    """The job, if ``lease`` is its current, unexpired lease; Conflict when the lease is lost."""
    principal = require_scope(principal, Scope.WORKER)
    query = select(TrainingJob).where(TrainingJob.id == job_id)
    job = session.exec(query.with_for_update() if lock else query).first()
    if job is None:
        raise NotFound(f"training job {job_id!r} not found")
    worker = session.get(TrainingWorker, job.worker_id) if job.worker_id else None
    if worker is None or worker.user_id != principal.user_id:
        raise Conflict(f"this worker does not hold training job {job_id}; claim another job")
    if not isinstance(lease, str) or job.lease_id != lease:
        raise Conflict(f"the lease on training job {job_id} was lost; stop and claim again")
    if job.status == JobStatus.RUNNING.value and (
        job.lease_expires_at is None or job.lease_expires_at < now()
    ):
        raise Conflict(f"the lease on training job {job_id} expired; stop and claim again")
    return job


def require_running(job: TrainingJob) -> None:
    if job.status != JobStatus.RUNNING.value:
        raise Conflict(f"training job {job.id} is {job.status}; stop working on it")


def heartbeat(
    engine: Engine, principal: Principal | None, job_id: str, data: dict[str, Any], lease_s: int
) -> dict[str, Any]:
    """Extend the lease and record progress; ``cancel: true`` tells the worker to stop."""
    validation.json_value(data, "request body")  # no 400-digit loss for float() to overflow on
    with session_scope(engine) as session:
        job = leased_job(session, principal, job_id, data.get("lease"))
        if job.status == JobStatus.CANCELLED.value:
            return {"cancel": True, "status": job.status, "lease_expires_at": None}
        require_running(job)
        t = now()
        record_progress(job, data)
        job.lease_expires_at = t + timedelta(seconds=lease_s)
        job.updated_at = t
        session.add(job)
        return {"cancel": False, "status": job.status, "lease_expires_at": job.lease_expires_at}


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def record_progress(job: TrainingJob, data: dict[str, Any]) -> None:
    """A heartbeat's progress: ``step``; ``losses``, those of the steps up to ``step``, added to
    the job's bounded ``[[step, loss]]`` curve of the whole run (client.core.loss_curve);
    ``total_steps``, sent when early stopping ends the run sooner (it may only shrink, to no
    less than ``step``); ``eta_s``."""
    step = _count(data.get("step"))
    if step is None or not 0 <= step <= job.total_steps:
        return
    job.step = step
    raw = data.get("losses") if isinstance(data.get("losses"), list) else []
    losses = [float(x) for x in raw if isinstance(x, int | float) and not isinstance(x, bool)]
    if losses and step >= len(losses):
        job.losses = extend_curve(job.losses, step, losses)
    total = _count(data.get("total_steps"))
    if total is not None and step <= total < job.total_steps:
        job.total_steps = total
    eta = data.get("eta_s")
    if isinstance(eta, int | float) and not isinstance(eta, bool) and eta >= 0:
        job.eta_s = float(eta)


def save_checkpoint(
    engine: Engine,
    store: BlobStore,
    settings: Settings,
    principal: Principal | None,
    job_id: str,
    lease: Any,
    step: int,
    data: bytes,
) -> TrainingJob:
    """Blob first, then the row, with the lease checked again when the row is written."""
    if len(data) > settings.training_max_checkpoint_bytes:
        raise TooLarge(f"checkpoint of {len(data):,} bytes is over the limit")
    if not data:
        raise BadRequest("send the checkpoint bytes in the multipart field 'file'")
    with session_scope(engine) as session:
        require_running(leased_job(session, principal, job_id, lease, lock=False))
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    store.put(digest, data)
    with session_scope(engine) as session:
        job = leased_job(session, principal, job_id, lease)
        require_running(job)
        job.checkpoint_digest, job.checkpoint_step = digest, step
        job.step = max(job.step, min(step, job.total_steps))
        job.updated_at = now()
        session.add(job)
        return job


def fail_job(
    engine: Engine, principal: Principal | None, job_id: str, data: dict[str, Any]
) -> TrainingJob:
    """Retry policy: a retryable failure requeues the job until it has used ``max_attempts``
    claims; ``retry: false`` (bad input that will fail again) fails it at once."""
    validation.json_value(data, "request body")
    # A worker's error text is kept, not refused: cut to the column and without NUL bytes.
    error = str(data.get("error") or "the worker reported a failure").replace("\x00", "")[:4000]
    with session_scope(engine) as session:
        job = leased_job(session, principal, job_id, data.get("lease"))
        require_running(job)
        t = now()
        if data.get("retry", True) and job.attempts < job.max_attempts:
            job.status = JobStatus.QUEUED.value
            job.worker_id = None
        else:
            job.status = JobStatus.FAILED.value
            job.finished_at = t
        job.error = error
        job.lease_id = job.lease_expires_at = None
        job.updated_at = t
        session.add(job)
        return job


def release_job(
    engine: Engine, principal: Principal | None, job_id: str, lease: Any
) -> TrainingJob:
    """A worker shutting down (SIGTERM) hands the job back after checkpointing; the attempt
    does not count against ``max_attempts``, since nothing failed."""
    with session_scope(engine) as session:
        job = leased_job(session, principal, job_id, lease)
        require_running(job)
        job.status = JobStatus.QUEUED.value
        job.attempts = max(0, job.attempts - 1)
        job.worker_id = job.lease_id = job.lease_expires_at = None
        job.updated_at = now()
        session.add(job)
        return job


def job_blob(
    session: Session, principal: Principal | None, job_id: str, digest: str, *, checkpoint: bool
) -> str:
    """The digest of an image (or the checkpoint) of a job, if the caller may fetch it: people
    who see the job, or the worker holding it."""
    job = session.get(TrainingJob, job_id)
    holder = False
    if job is not None and job.worker_id and principal is not None:
        worker = session.get(TrainingWorker, job.worker_id)
        holder = worker is not None and worker.user_id == principal.user_id
    if job is None or not (holder or can_see(principal, job)):
        raise NotFound(f"training job {job_id!r} not found")
    if checkpoint:
        if not job.checkpoint_digest:
            raise NotFound(f"training job {job_id} has no checkpoint yet")
        return job.checkpoint_digest
    if digest not in {i["digest"] for i in job.images}:
        raise NotFound(f"training job {job_id} has no image {digest}")
    return digest
