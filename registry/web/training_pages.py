"""Training in the browser: a form that submits a job (the API's own service,
``registry.training.services.submit_job``, so every rule and refusal is the API's), a job page
with live progress (``/static/job.js`` polls the page's JSON every 2 s; no inline script), its
loss chart, previews once done, and a cancel button. A job is private: whoever may not see it
gets the 404 page, as the API answers 404."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from client.core.errors import BadRequest, LexiconError, NotFound
from client.core.families import FAMILIES
from client.core.training import CONCEPT_TYPES, FINISHED_STATUSES, MAX_IMAGES, JobRequest
from registry.accounts.access import Principal, require_scope
from registry.accounts.models import Scope
from registry.context import Registry
from registry.db import session_scope
from registry.embeddings import services as embeddings
from registry.training import services as training
from registry.training.metadata import served_previews
from registry.training.models import TrainingWorker
from registry.training.routes import MAX_SUBMIT_BYTES, read_files
from registry.training.views import job_json

from .charts import loss_chart
from .principal import page_principal

Multipart = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
# A concept is learned from a handful of pictures: the form asks for at least this many (the API
# takes 1 for scripted callers who know what they are doing).
MIN_FORM_IMAGES = 3
# The form's text fields; anything else in the body is ignored.
FIELDS = ("namespace", "name", "trigger", "initializer", "concept", "family", "base_model")


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be one text field")
    return value.strip()


def _job_request(data: dict[str, Any]) -> JobRequest:
    """The form's fields as the API's ``params`` JSON, validated by the API's own parser."""
    params: dict[str, Any] = {
        "target": f"{_text(data, 'namespace')}/{_text(data, 'name')}",
        "trigger": _text(data, "trigger"),
        "initializer": _text(data, "initializer") or "object",
        "concept": _text(data, "concept") or "object",
        "family": _text(data, "family") or None,
        "base_model": _text(data, "base_model") or None,
        "visibility": "private" if data.get("private") else None,
    }
    steps = _text(data, "steps")
    if steps:
        if not steps.isdigit() or len(steps) > 9:
            raise BadRequest(f"training parameter 'steps' is {steps!r}; give a whole number")
        params["steps"] = int(steps)
    return JobRequest.from_dict({k: v for k, v in params.items() if v is not None})


def _form(principal: Principal, values: dict[str, Any], error: str | None, status: int = 200):
    namespaces = [principal.username, *sorted(principal.roles)]
    return Template(
        "train.html",
        context={
            "me": principal,
            "namespaces": namespaces,
            "families": list(FAMILIES),
            "concepts": list(CONCEPT_TYPES),
            "max_images": MAX_IMAGES,
            "min_images": MIN_FORM_IMAGES,
            "values": values,
            "error": error,
        },
        status_code=status,
    )


@get("/train", sync_to_thread=True, name="train", media_type=MediaType.HTML)
def train_form(request: Request) -> Any:
    principal = page_principal(request)
    if principal is None:
        return Redirect("/signin?next=/train")
    require_scope(principal, Scope.WRITE)  # a worker's token may not submit: 403, as the API
    return _form(principal, {"namespace": principal.username, "family": "sd1"}, None)


@post(
    "/train",
    sync_to_thread=True,
    status_code=303,
    media_type=MediaType.HTML,
    request_max_body_size=MAX_SUBMIT_BYTES,
)
def submit(request: Request, registry: Registry, data: Multipart) -> Any:
    principal = page_principal(request)
    if principal is None:
        return Redirect("/signin?next=/train", status_code=303)
    values = {k: data.get(k) for k in (*FIELDS, "steps", "private") if isinstance(data.get(k), str)}
    try:
        images = read_files(data.get("images"), "images")
        if len(images) < MIN_FORM_IMAGES:
            raise BadRequest(
                f"{len(images)} image(s) chosen; train from {MIN_FORM_IMAGES}-{MAX_IMAGES} "
                "pictures of the concept"
            )
        sub = training.Submission(_job_request(data), images)
        job = training.submit_job(
            registry.engine, registry.store, registry.settings, principal, sub
        )
    except LexiconError as exc:  # shown on the form, by name, with what was typed kept
        return _form(principal, values, str(exc), exc.spec.status)
    return Redirect(f"/jobs/{job.id}", status_code=303)


def _job_view(registry: Registry, principal: Principal | None, job_id: str) -> dict[str, Any]:
    """The job as the API shows it, plus its chart and (once published) its previews."""
    with session_scope(registry.engine) as session:
        training.reap_expired(session)
        job = training.get_job(session, principal, job_id)
        worker = session.get(TrainingWorker, job.worker_id) if job.worker_id else None
        shown = job_json(job, worker)
        previews: list[str] = []
        if job.result_number is not None:
            try:
                embedding, version = embeddings.resolve_version(
                    session, principal, job.namespace, job.name, str(job.result_number)
                )
                previews = sorted(served_previews(session, embedding, version))
            except NotFound:
                previews = []
    shown["chart"] = loss_chart(shown["losses"] or [])
    shown["finished"] = shown["status"] in FINISHED_STATUSES
    shown["previews"] = previews
    return shown


@get("/jobs/{job_id:str}", sync_to_thread=True, name="job", media_type=MediaType.HTML)
def job_page(request: Request, registry: Registry, job_id: str) -> Template:
    principal = page_principal(request)
    return Template(
        "job.html", context={"me": principal, "job": _job_view(registry, principal, job_id)}
    )


@get("/jobs/{job_id:str}/progress", sync_to_thread=True, media_type=MediaType.JSON)
def job_progress(request: Request, registry: Registry, job_id: str) -> dict[str, Any]:
    """What job.js redraws from: the API's job JSON plus the chart geometry (drawn here, once)."""
    return _job_view(registry, page_principal(request), job_id)


@post("/jobs/{job_id:str}/cancel", sync_to_thread=True, status_code=303)
def cancel(request: Request, registry: Registry, job_id: str) -> Redirect:
    principal = page_principal(request)
    with session_scope(registry.engine) as session:
        training.cancel_job(session, principal, job_id)
    return Redirect(f"/jobs/{job_id}", status_code=303)


ROUTES = [train_form, submit, job_page, job_progress, cancel]
