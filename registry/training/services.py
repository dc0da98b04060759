"""Training jobs as users see them: submit, look at, list, cancel.

Who sees a job: its creator, members of the target namespace (the people who will own the
result), and admins. Everyone else gets 404, as for a private embedding: a job's target name
may itself be a secret. Submitting needs write access to the target namespace, checked now
(not when the worker finishes hours later).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from client.core.errors import BadRequest, Conflict, Forbidden, NotFound
from client.core.families import FAMILIES
from client.core.training import FINISHED_STATUSES, JobRequest
from registry.accounts import services as accounts
from registry.accounts.access import Principal, require_scope, require_write
from registry.accounts.models import Namespace, Scope
from registry.db import session_scope
from registry.settings import Settings
from registry.storage.base import BlobStore
from registry.storage.keys import DIGEST_RE

from .images import check_images
from .metadata import is_malformed, recorded_previews
from .models import JobStatus, TrainingJob, TrainingWorker

log = logging.getLogger("registry.gc")


def now() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def can_see(principal: Principal | None, job: TrainingJob) -> bool:
    if principal is None:
        return False
    return (
        principal.is_admin
        or principal.user_id == job.created_by
        or principal.role_in(job.namespace) is not None
    )


@dataclass
class Submission:
    request: JobRequest
    images: list[tuple[str | None, bytes]]


def submit_job(
    engine: Engine,
    store: BlobStore,
    settings: Settings,
    principal: Principal | None,
    sub: Submission,
) -> TrainingJob:
    """Validate everything, store the images (blob first), then queue the job (row second)."""
    principal = require_write(principal, sub.request.namespace)
    with session_scope(engine) as session:
        req = with_family(session, sub.request, settings.training_lease_seconds)
    checked = check_images(
        sub.images,
        max_bytes=settings.training_max_image_bytes,
        max_pixels=settings.training_max_image_pixels,
    )
    with session_scope(engine) as session:
        if session.get(Namespace, req.namespace) is None:
            raise NotFound(f"namespace {req.namespace!r} not found; create the org first")
    for image in checked:
        store.put(image.digest, image.data)
    job = TrainingJob(
        id=new_id("tj"),
        created_by=principal.user_id,
        namespace=req.namespace,
        name=req.name,
        family=req.family,
        base_model=req.base_model,
        params=req.to_dict(),
        images=[i.record() for i in checked],
        total_steps=req.params.steps,
        max_attempts=settings.training_max_attempts,
    )
    with session_scope(engine) as session:
        session.add(job)
    return job


def with_family(session: Session, req: JobRequest, lease_seconds: int) -> JobRequest:
    """The job with its family: its own, or else the one family the live workers serve (those
    of them that list its ``base_model``, when it names one no table knows). Asking the user
    beats guessing: with no such worker, or several families, the refusal names what is
    served and what to pass."""
    if req.family is not None:
        return req
    served = live_families(session, lease_seconds, req.base_model)
    if len(served) == 1:
        return req.for_family(served[0])
    families = ", ".join(FAMILIES)
    choose = f"pass --family ({families}) or --base-model ('family' or 'base_model' in params)"
    if req.base_model is not None:
        what = f"no training worker online serves base model {req.base_model!r}"
        if served:
            what = f"the training workers serving {req.base_model!r} are of {', '.join(served)}"
        raise BadRequest(f"{what}, so the job's family is unknown; {choose}")
    if not served:
        raise BadRequest(f"no training worker is online to take the job's family from; {choose}")
    raise BadRequest(
        f"the training workers online serve several families ({', '.join(served)}); {choose}"
    )


def live_families(session: Session, lease_seconds: int, base_model: str | None) -> list[str]:
    """Families served by workers heard from within a lease (an idle worker polls every few
    seconds) or holding an unexpired lease (a busy one heartbeats its job, not itself)."""
    t = now()
    holding = select(TrainingJob.worker_id).where(
        TrainingJob.status == JobStatus.RUNNING.value, TrainingJob.lease_expires_at > t
    )
    live = select(TrainingWorker.families, TrainingWorker.base_models).where(
        or_(
            TrainingWorker.last_seen_at >= t - timedelta(seconds=lease_seconds),
            TrainingWorker.id.in_(holding),
        )
    )
    served: set[str] = set()
    for families, base_models in session.exec(live).all():
        if base_model is None or base_model in (base_models or []):
            served.update(f for f in families or [] if isinstance(f, str))
    return sorted(served)


def reap_expired(session: Session) -> None:
    """Jobs whose lease ran out go back to the queue (the next claim resumes from the last
    checkpoint), or fail once they have used every attempt. Called inside the claim transaction
    and before reads, so no background timer is needed."""
    t = now()
    expired = (TrainingJob.status == JobStatus.RUNNING.value) & (TrainingJob.lease_expires_at < t)
    session.execute(
        update(TrainingJob)
        .where(expired, TrainingJob.attempts >= TrainingJob.max_attempts)
        .values(
            status=JobStatus.FAILED.value,
            error="the worker stopped answering (lease expired) on the last allowed attempt",
            lease_id=None,
            lease_expires_at=None,
            finished_at=t,
            updated_at=t,
        )
    )
    session.execute(
        update(TrainingJob)
        .where(expired)
        .values(
            status=JobStatus.QUEUED.value,
            lease_id=None,
            lease_expires_at=None,
            worker_id=None,
            updated_at=t,
        )
    )


def get_job(session: Session, principal: Principal | None, job_id: str) -> TrainingJob:
    job = session.get(TrainingJob, job_id)
    if job is None or not can_see(principal, job):
        raise NotFound(f"training job {job_id!r} not found")
    return job


def list_jobs(
    session: Session, principal: Principal | None, status: str | None = None, limit: int = 50
) -> list[TrainingJob]:
    """Mine, and those targeting namespaces I belong to; newest first."""
    principal = require_scope(principal, Scope.READ)
    namespaces = [principal.username, *principal.roles]
    query = select(TrainingJob).where(
        or_(TrainingJob.created_by == principal.user_id, TrainingJob.namespace.in_(namespaces))
    )
    if status:
        query = query.where(TrainingJob.status == status)
    query = query.order_by(TrainingJob.created_at.desc()).limit(max(1, min(limit, 200)))
    return list(session.exec(query).all())


def cancel_job(session: Session, principal: Principal | None, job_id: str) -> TrainingJob:
    """Queued jobs stop at once; a running job's worker learns of it at its next heartbeat.
    Only the job's creator and those who may publish to its namespace (org owners and
    maintainers, admins) may cancel: an org reader sees the job but may not stop it (issue 8)."""
    job = get_job(session, principal, job_id)
    principal = require_scope(principal, Scope.WRITE)
    if principal.user_id != job.created_by:
        try:
            require_write(principal, job.namespace)
        except Forbidden:
            raise Forbidden(
                f"{principal.username} may not cancel training job {job_id}: only its creator, "
                f"owners and maintainers of {job.namespace!r} and admins may"
            ) from None
    if job.status in FINISHED_STATUSES:
        if job.status == JobStatus.CANCELLED.value:
            return job
        raise Conflict(f"training job {job_id} already {job.status}; nothing to cancel")
    t = now()
    job.status = JobStatus.CANCELLED.value
    job.error = f"cancelled by {principal.username}"
    # lease_id stays, so the worker's next heartbeat is answered "cancel" rather than 409.
    job.lease_expires_at = None
    job.finished_at = job.updated_at = t
    session.add(job)
    session.flush()
    return job


def principal_for_user(session: Session, user_id: int) -> Principal | None:
    """The job's creator as a publisher (write scope, current org roles): a worker publishes on
    their behalf, so their rights *now* decide, not the worker's."""
    return accounts.principal_for_user(session, user_id, [Scope.READ.value, Scope.WRITE.value])


@dataclass
class TrainingBlobs:
    """What :func:`referenced_digests` found, and the rows whose stored JSON it had to skip."""

    digests: set[str]
    malformed: list[str]


def referenced_digests(session: Session) -> TrainingBlobs:
    """Blobs the training side holds (job images, checkpoints, previews on versions), so that
    ``lexicon-registry gc`` does not collect them as orphans. Stored JSON is not trusted: a
    row that does not parse is skipped, logged and named (one user's junk must not stop gc)."""
    from registry.embeddings.models import EmbeddingVersion

    found: set[str] = set()
    malformed: list[str] = []
    jobs = select(TrainingJob.id, TrainingJob.images, TrainingJob.checkpoint_digest)
    for job_id, images, checkpoint in session.exec(jobs).all():
        digests = (
            [i.get("digest") for i in images if isinstance(i, dict)]
            if isinstance(images, list)
            else []
        )
        good = [d for d in digests if isinstance(d, str) and DIGEST_RE.fullmatch(d)]
        if not isinstance(images, list) or len(good) != len(images):
            malformed.append(f"training job {job_id} (images)")
        found.update(good)
        if isinstance(checkpoint, str) and DIGEST_RE.fullmatch(checkpoint):
            found.add(checkpoint)
    versions = select(EmbeddingVersion.id, EmbeddingVersion.training).where(
        EmbeddingVersion.training.is_not(None)
    )
    for version_id, training in session.exec(versions).all():
        if is_malformed(training):
            malformed.append(f"version {version_id} (training)")
        found.update(p["digest"] for p in recorded_previews(training))
    for row in malformed:
        log.warning("gc: skipped malformed stored JSON of %s", row)
    return TrainingBlobs(found, malformed)
