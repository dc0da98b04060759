"""Training jobs from the user's side: submit images + params, follow a job, list, cancel.

HTTP goes through :class:`client.transport.Transport` (typed errors by code, bounded retries).
The parameters are checked here with the same :class:`client.core.training.JobRequest` rules
the registry applies, so a typo fails before any image is uploaded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from client.core.errors import BadRequest
from client.core.training import FINISHED_STATUSES, MAX_IMAGES, JobRequest

from .transport import Transport

JOBS = "/api/v1/training-jobs"


class TrainingJobs:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def submit(self, images: list[Path], params: dict[str, Any]) -> dict[str, Any]:
        """Queue a job; returns the job JSON (``id``, ``status`` …)."""
        request = JobRequest.from_dict(params)
        if not 1 <= len(images) <= MAX_IMAGES:
            raise BadRequest(f"{len(images)} images given; a training job takes 1-{MAX_IMAGES}")
        files: list[tuple[str, Any]] = [
            ("params", (None, json.dumps(request.to_dict()), "application/json"))
        ]
        for path in images:
            files.append(("images", (path.name, path.read_bytes(), "application/octet-stream")))
        return self.transport.request("POST", JOBS, files=files).json()

    def get(self, job_id: str) -> dict[str, Any]:
        return self.transport.get_json(f"{JOBS}/{job_id}")

    def list(self, status: str | None = None) -> list[dict[str, Any]]:
        params = {"status": status} if status else None
        return list(self.transport.get_json(JOBS, params=params)["items"])

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.transport.request("POST", f"{JOBS}/{job_id}/cancel").json()

    def wait(
        self,
        job_id: str,
        *,
        on_update: Callable[[dict[str, Any]], None] | None = None,
        poll_s: float = 1.0,
        timeout_s: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """Poll until the job is succeeded, failed or cancelled; returns its last JSON."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            job = self.get(job_id)
            if on_update is not None:
                on_update(job)
            if job["status"] in FINISHED_STATUSES:
                return job
            if deadline is not None and time.monotonic() > deadline:
                return job
            sleep(poll_s)
