"""JSON shapes of training jobs and workers: the one place the API's output format is defined."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .models import JobStatus, TrainingJob, TrainingWorker


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def job_json(job: TrainingJob, worker: TrainingWorker | None = None) -> dict[str, Any]:
    target = f"{job.namespace}/{job.name}"
    result = None
    if job.result_number is not None:
        result = {
            "ref": f"{target}@{job.result_number}",
            "number": job.result_number,
            "digest": job.result_digest,
        }
    return {
        "id": job.id,
        "status": job.status,
        "target": target,
        "family": job.family,
        "base_model": job.base_model,
        "params": job.params,
        "images": job.images,
        "step": job.step,
        "total_steps": job.total_steps,
        "losses": job.losses,  # [[step, loss]] over the whole run, <= 512 points
        # Only a running job has an ETA (a finished or requeued one keeps a stale value).
        "eta_s": job.eta_s if job.status == JobStatus.RUNNING.value else None,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "worker": {"id": worker.id, "name": worker.name} if worker else None,
        "checkpoint_step": job.checkpoint_step,
        "result": result,
        "error": job.error,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "updated_at": _iso(job.updated_at),
    }


def claim_json(job: TrainingJob, lease_seconds: int) -> dict[str, Any]:
    """What a worker needs to run a job: the job, its lease, and where to resume from."""
    checkpoint = None
    if job.checkpoint_digest:
        checkpoint = {"digest": job.checkpoint_digest, "step": job.checkpoint_step}
    return {
        "job": job_json(job),
        "lease": job.lease_id,
        "lease_expires_at": _iso(job.lease_expires_at),
        "lease_seconds": lease_seconds,
        "checkpoint": checkpoint,
    }


def worker_json(worker: TrainingWorker) -> dict[str, Any]:
    return {
        "id": worker.id,
        "name": worker.name,
        "families": worker.families,
        "base_models": worker.base_models,
        "device": worker.device,
        "memory_bytes": worker.memory_bytes,
        "registered_at": _iso(worker.registered_at),
    }
