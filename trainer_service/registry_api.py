"""The worker protocol, client side: one method per registry route (``registry/training``).

Built on :class:`client.transport.Transport` (timeouts, bounded retries on 5xx and connection
errors, typed errors by code). A lost lease is ``Conflict`` (409): the caller stops working on
that job. Every call is safe to repeat: heartbeats and checkpoints overwrite, ``complete``
carries an idempotency key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from client.core.errors import DigestMismatch
from client.transport import Transport

JOBS = "/api/v1/training-jobs"
MAX_BLOB_BYTES = 64 * 1024 * 1024  # a training image or checkpoint


@dataclass
class Claimed:
    job: dict[str, Any]
    lease: str
    lease_seconds: int
    checkpoint: dict[str, Any] | None

    @property
    def id(self) -> str:
        return str(self.job["id"])


@dataclass
class Capabilities:
    name: str
    families: list[str]
    base_models: list[str]
    device: str
    memory_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RegistryAPI:
    def __init__(self, url: str, token: str, *, timeout: float = 60.0, retries: int = 3) -> None:
        self.transport = Transport(url, token, timeout=timeout, retries=retries)

    def close(self) -> None:
        self.transport.close()

    def register(self, caps: Capabilities) -> str:
        body = {
            "name": caps.name,
            "families": caps.families,
            "base_models": caps.base_models,
            "device": caps.device,
            "memory_bytes": caps.memory_bytes,
        }
        return str(
            self.transport.request("POST", "/api/v1/workers/register", json=body).json()["id"]
        )

    def claim(self, worker_id: str) -> Claimed | None:
        response = self.transport.request("POST", f"/api/v1/workers/{worker_id}/claim")
        if response.status_code == 204 or not response.content:
            return None
        raw = response.json()
        return Claimed(raw["job"], raw["lease"], int(raw["lease_seconds"]), raw.get("checkpoint"))

    def _blob(self, path: str, digest: str) -> bytes:
        """Fetch and check against the digest the job names (a proxy must not swap bytes)."""
        data = self.transport.request("GET", path).content
        if len(data) > MAX_BLOB_BYTES or "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise DigestMismatch(f"{path} did not return the bytes of {digest}; retry later")
        return data

    def image(self, job_id: str, digest: str) -> bytes:
        return self._blob(f"{JOBS}/{job_id}/images/{digest}", digest)

    def checkpoint(self, job_id: str, digest: str) -> bytes:
        return self._blob(f"{JOBS}/{job_id}/checkpoint", digest)

    def heartbeat(
        self,
        job_id: str,
        lease: str,
        *,
        step: int,
        losses: list[float] | None = None,
        eta_s: float | None = None,
        total_steps: int | None = None,
    ) -> dict[str, Any]:
        """Progress: ``losses`` are those of the steps up to ``step``; ``total_steps`` is sent
        when early stopping ends the run before its cap (the job's total shrinks to it)."""
        body: dict[str, Any] = {"lease": lease, "step": step, "losses": losses or []}
        body["eta_s"] = eta_s
        if total_steps is not None:
            body["total_steps"] = total_steps
        return self.transport.request("POST", f"{JOBS}/{job_id}/heartbeat", json=body).json()

    def upload_checkpoint(self, job_id: str, lease: str, step: int, data: bytes) -> None:
        self.transport.request(
            "PUT",
            f"{JOBS}/{job_id}/checkpoint",
            data={"lease": lease, "step": str(step)},
            files={"file": ("checkpoint.safetensors", data, "application/octet-stream")},
        )

    def complete(
        self,
        job_id: str,
        lease: str,
        idempotency_key: str,
        embedding: bytes,
        previews: list[bytes],
        metadata: dict[str, Any],
    ) -> dict[str, Any]:
        files = [("file", ("embedding.safetensors", embedding, "application/octet-stream"))]
        files += [
            ("previews", (f"preview-{i}.png", p, "image/png")) for i, p in enumerate(previews)
        ]
        form = {
            "lease": lease,
            "idempotency_key": idempotency_key,
            "metadata": json.dumps(metadata),
        }
        return self.transport.request(
            "POST", f"{JOBS}/{job_id}/complete", data=form, files=files
        ).json()

    def fail(self, job_id: str, lease: str, error: str, *, retry: bool) -> dict[str, Any]:
        body = {"lease": lease, "error": error, "retry": retry}
        return self.transport.request("POST", f"{JOBS}/{job_id}/fail", json=body).json()

    def release(self, job_id: str, lease: str) -> dict[str, Any]:
        return self.transport.request(
            "POST", f"{JOBS}/{job_id}/release", json={"lease": lease}
        ).json()
