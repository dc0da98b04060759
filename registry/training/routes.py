"""HTTP in/out for training jobs and the worker protocol: parse, call one service, shape."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get, post, put
from litestar.enums import RequestEncodingType
from litestar.params import Body

from client.core.errors import BadRequest, NotFound
from client.core.training import JobRequest
from registry import validation
from registry.accounts.access import Principal
from registry.context import Registry
from registry.db import session_scope
from registry.embeddings import services as embeddings

from . import complete, queue, services
from .metadata import served_previews
from .models import TrainingWorker
from .views import claim_json, job_json, worker_json

Multipart = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
# Fifty camera JPEGs; each image is also held to LEXICON_TRAINING_MAX_IMAGE_BYTES.
MAX_SUBMIT_BYTES = 256 * 1024 * 1024
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def _files(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, list) else [value]


def read_files(value: Any, field: str) -> list[tuple[str | None, bytes]]:
    out = []
    for item in _files(value):
        if not hasattr(item, "file"):
            raise BadRequest(f"multipart field '{field}' must hold files, not text")
        out.append((item.filename, item.file.read()))
    return out


def _json_field(raw: Any, field: str) -> Any:
    if hasattr(raw, "file"):
        raw = raw.file.read()
    if raw in (None, "", b""):
        raise BadRequest(f"send the multipart field '{field}' (a JSON object)")
    if isinstance(raw, list):
        raise BadRequest(f"'{field}' was sent more than once; send one JSON object")
    return validation.loads(raw, field)  # no NaN, deep nesting or numbers past 64 bits


def _text(raw: Any) -> Any:
    if hasattr(raw, "file"):
        raw = raw.file.read()
    return raw.decode() if isinstance(raw, bytes) else raw


def _job_response(registry: Registry, job_id: str, principal: Principal | None) -> dict[str, Any]:
    with session_scope(registry.engine) as session:
        services.reap_expired(session)
        job = services.get_job(session, principal, job_id)
        worker = session.get(TrainingWorker, job.worker_id) if job.worker_id else None
        return job_json(job, worker)


class TrainingJobController(Controller):
    path = "/api/v1/training-jobs"
    tags = ["training"]

    @post(
        "/",
        sync_to_thread=True,
        status_code=201,
        request_max_body_size=MAX_SUBMIT_BYTES,
        summary="Submit a training job (multipart: images + params JSON)",
    )
    def submit(self, registry: Registry, principal: Principal | None, data: Multipart) -> dict:
        request = JobRequest.from_dict(_json_field(data.get("params"), "params"))
        images = read_files(data.get("images"), "images")
        sub = services.Submission(request, images)
        job = services.submit_job(
            registry.engine, registry.store, registry.settings, principal, sub
        )
        return job_json(job)

    @get("/", sync_to_thread=True, summary="My jobs and my organisations' jobs")
    def list_jobs(
        self, registry: Registry, principal: Principal | None, status: str | None = None
    ) -> dict[str, Any]:
        with session_scope(registry.engine) as session:
            services.reap_expired(session)
            return {"items": [job_json(j) for j in services.list_jobs(session, principal, status)]}

    @get("/{job_id:str}", sync_to_thread=True, summary="A job's status and progress")
    def show(self, registry: Registry, principal: Principal | None, job_id: str) -> dict:
        return _job_response(registry, job_id, principal)

    @post("/{job_id:str}/cancel", sync_to_thread=True, status_code=200)
    def cancel(self, registry: Registry, principal: Principal | None, job_id: str) -> dict:
        with session_scope(registry.engine) as session:
            job = services.cancel_job(session, principal, job_id)
            return job_json(job)

    @get("/{job_id:str}/images/{digest:str}", sync_to_thread=True, summary="A training image")
    def image(
        self, registry: Registry, principal: Principal | None, job_id: str, digest: str
    ) -> Response:
        with session_scope(registry.engine) as session:
            digest = queue.job_blob(session, principal, job_id, digest, checkpoint=False)
        return Response(registry.store.get(digest), media_type="application/octet-stream")

    @get("/{job_id:str}/checkpoint", sync_to_thread=True, summary="The last checkpoint")
    def get_checkpoint(
        self, registry: Registry, principal: Principal | None, job_id: str
    ) -> Response:
        with session_scope(registry.engine) as session:
            digest = queue.job_blob(session, principal, job_id, "", checkpoint=True)
        return Response(
            registry.store.get(digest),
            media_type="application/octet-stream",
            headers={"X-Lexicon-Digest": digest},
        )

    # -- worker side ------------------------------------------------------------------------
    @post("/{job_id:str}/heartbeat", sync_to_thread=True, status_code=200)
    def heartbeat(
        self, registry: Registry, principal: Principal | None, job_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        lease_s = registry.settings.training_lease_seconds
        return queue.heartbeat(registry.engine, principal, job_id, data, lease_s)

    @put("/{job_id:str}/checkpoint", sync_to_thread=True, status_code=200)
    def put_checkpoint(
        self, registry: Registry, principal: Principal | None, job_id: str, data: Multipart
    ) -> dict[str, Any]:
        files = read_files(data.get("file"), "file")
        step = validation.plain_decimal(str(_text(data.get("step")) or ""))
        if not files or step is None or step > 2**31 - 1:  # a 32-bit column
            raise BadRequest("send multipart fields 'lease', 'step' (an integer) and 'file'")
        job = queue.save_checkpoint(
            registry.engine,
            registry.store,
            registry.settings,
            principal,
            job_id,
            _text(data.get("lease")),
            step,
            files[0][1],
        )
        return {"checkpoint_step": job.checkpoint_step, "digest": job.checkpoint_digest}

    @post("/{job_id:str}/complete", sync_to_thread=True, status_code=200)
    def complete(
        self, registry: Registry, principal: Principal | None, job_id: str, data: Multipart
    ) -> dict[str, Any]:
        files = read_files(data.get("file"), "file")
        if len(files) != 1:
            raise BadRequest("send the trained embedding (canonical safetensors) as 'file'")
        metadata = data.get("metadata")
        done = complete.Completion(
            lease=_text(data.get("lease")),
            idempotency_key=_text(data.get("idempotency_key")),
            data=files[0][1],
            previews=read_files(data.get("previews"), "previews"),
            metadata=_json_field(metadata, "metadata") if metadata not in (None, "") else {},
        )
        if not isinstance(done.metadata, dict):
            raise BadRequest("'metadata' must be a JSON object")
        job = complete.complete_job(
            registry.engine, registry.store, registry.settings, principal, job_id, done
        )
        return job_json(job)

    @post("/{job_id:str}/fail", sync_to_thread=True, status_code=200)
    def fail(
        self, registry: Registry, principal: Principal | None, job_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        return job_json(queue.fail_job(registry.engine, principal, job_id, data))

    @post("/{job_id:str}/release", sync_to_thread=True, status_code=200)
    def release(
        self, registry: Registry, principal: Principal | None, job_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        return job_json(queue.release_job(registry.engine, principal, job_id, data.get("lease")))


class WorkerController(Controller):
    path = "/api/v1/workers"
    tags = ["training"]

    @post("/register", sync_to_thread=True, status_code=201)
    def register(
        self, registry: Registry, principal: Principal | None, data: dict[str, Any]
    ) -> dict[str, Any]:
        with session_scope(registry.engine) as session:
            return worker_json(queue.register_worker(session, principal, data))

    @post("/{worker_id:str}/claim", sync_to_thread=True, status_code=200)
    def claim(self, registry: Registry, principal: Principal | None, worker_id: str) -> Response:
        lease_s = registry.settings.training_lease_seconds
        claim = queue.claim_job(registry.engine, principal, worker_id, lease_s)
        if claim is None:
            return Response(None, status_code=204)
        return Response(claim_json(claim.job, claim.lease_seconds))


@get(
    "/api/v1/embeddings/{namespace:str}/{name:str}/versions/{ref:str}/previews/{digest:str}",
    sync_to_thread=True,
    tags=["training"],
    summary="A preview image rendered when the version was trained",
)
def preview(
    registry: Registry,
    principal: Principal | None,
    namespace: str,
    name: str,
    ref: str,
    digest: str,
) -> Response:
    # Only previews a training job's ``complete`` recorded for this version: user-written
    # ``training`` must never make a blob readable (issue 8).
    with session_scope(registry.engine) as session:
        embedding, version = embeddings.resolve_version(session, principal, namespace, name, ref)
        listed = served_previews(session, embedding, version)
    if digest not in listed:
        raise NotFound(f"version {namespace}/{name}@{version.number} has no preview {digest}")
    return Response(
        registry.store.get(digest),
        media_type="image/png",
        headers={"ETag": f'"{digest}"', "Cache-Control": "public, max-age=31536000, immutable"},
    )


ROUTES = [TrainingJobController, WorkerController, preview]
