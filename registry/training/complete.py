"""Completing a job: publish the trained embedding as the job's creator, exactly once.

The idempotency key is stored with the result, so a repeated ``complete`` with the same key
(a retry after a timeout) returns the same version; publishing the same bytes twice also finds
the existing version by digest. A worker whose lease was lost cannot complete. Order: previews
(blobs) first, then the version (``publish_version``: blob, then row), then the job row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from client.core.canonical import parse_canonical
from client.core.errors import BadRequest, IncompatibleEmbedding
from registry.accounts.access import Principal
from registry.db import session_scope
from registry.embeddings.models import Embedding, EmbeddingVersion
from registry.embeddings.publish import PublishMetadata, publish_version
from registry.settings import Settings
from registry.storage.base import BlobStore

from .images import check_image
from .metadata import worker_training
from .models import JobStatus, TrainingJob
from .queue import leased_job, require_running
from .services import now, principal_for_user

MAX_PREVIEW_BYTES = 8 * 1024 * 1024


@dataclass
class Completion:
    lease: Any
    idempotency_key: str
    data: bytes
    previews: list[tuple[str | None, bytes]]
    metadata: dict[str, Any]


def _replayed(job: TrainingJob, key: str) -> bool:
    return job.status == JobStatus.SUCCEEDED.value and job.idempotency_key == key


def complete_job(
    engine: Engine,
    store: BlobStore,
    settings: Settings,
    principal: Principal | None,
    job_id: str,
    done: Completion,
) -> TrainingJob:
    """Publish the trained embedding as the job's creator, exactly once."""
    key = done.idempotency_key
    if not isinstance(key, str) or not 8 <= len(key) <= 100:
        raise BadRequest("send an 'idempotency_key' of 8-100 characters (reuse it on retries)")
    vectors = parse_canonical(done.data, max_bytes=settings.max_upload_bytes)
    with session_scope(engine) as session:
        job = session.get(TrainingJob, job_id)
        if job is not None and _replayed(job, key):
            return job
        job = leased_job(session, principal, job_id, done.lease, lock=False)
        require_running(job)
        creator = principal_for_user(session, job.created_by)
        if vectors.family.name != job.family:
            raise IncompatibleEmbedding(
                f"the result is {vectors.family.describe()} but the job asked for {job.family}"
            )
        earlier = _published_earlier(session, job)
        if earlier is None:
            # Recorded before publishing: if the registry dies between the publish and the final
            # update, the next worker's complete finds this version instead of adding another.
            job.result_digest = vectors.digest
            session.add(job)
    if earlier is not None:
        return _finish(engine, principal, job_id, done, key, earlier)
    previews = []
    prompts = done.metadata.get("preview_prompts")
    prompts = prompts if isinstance(prompts, list) else []
    for i, (name, png) in enumerate(done.previews):
        image = check_image(
            name, png, i, max_bytes=MAX_PREVIEW_BYTES, max_pixels=settings.training_max_image_pixels
        )
        store.put(image.digest, image.data)
        prompt = prompts[i] if i < len(prompts) and isinstance(prompts[i], str) else None
        previews.append({"digest": image.digest, "prompt": prompt, "width": image.width})
    params = job.params
    # The worker's report is checked key by key; the keys below are the server's own (the
    # preview route serves only ``previews`` of a version whose job this row names).
    training = {
        **worker_training({k: v for k, v in done.metadata.items() if k != "preview_prompts"}),
        "job": job.id,
        "params": params,
        "base_model": job.base_model,
        "family": job.family,
        "dataset": [i["digest"] for i in job.images],
        "attempts": job.attempts,
        "previews": previews,
    }
    meta = PublishMetadata(
        trigger=params.get("trigger"),
        base_model=job.base_model,
        type=params.get("concept"),
        visibility=params.get("visibility"),
        training=training,
    )
    result = publish_version(
        engine,
        store,
        creator,
        job.namespace,
        job.name,
        data=done.data,
        meta=meta,
        max_bytes=settings.max_upload_bytes,
    )
    return _finish(engine, principal, job_id, done, key, result.version)


def _published_earlier(session: Session, job: TrainingJob) -> EmbeddingVersion | None:
    """The version an interrupted earlier ``complete`` of this job already published."""
    if not job.result_digest:
        return None
    return session.exec(
        select(EmbeddingVersion)
        .join(Embedding, EmbeddingVersion.embedding_id == Embedding.id)
        .where(
            Embedding.namespace == job.namespace,
            Embedding.name == job.name,
            EmbeddingVersion.digest == job.result_digest,
        )
    ).first()


def _finish(
    engine: Engine,
    principal: Principal | None,
    job_id: str,
    done: Completion,
    key: str,
    version: EmbeddingVersion,
) -> TrainingJob:
    with session_scope(engine) as session:
        job = session.exec(
            select(TrainingJob).where(TrainingJob.id == job_id).with_for_update()
        ).one()
        if _replayed(job, key):
            return job
        job = leased_job(session, principal, job_id, done.lease)
        require_running(job)
        t = now()
        job.status = JobStatus.SUCCEEDED.value
        job.idempotency_key = key
        job.result_number = version.number
        job.result_digest = version.digest
        steps = done.metadata.get("steps")
        reported = steps if isinstance(steps, int) and not isinstance(steps, bool) else job.step
        job.step = max(0, min(reported or job.step, job.total_steps))
        job.error = None
        job.lease_id = job.lease_expires_at = None
        job.finished_at = job.updated_at = t
        session.add(job)
        return job
