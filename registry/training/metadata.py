"""The ``training`` metadata of a version: what a user may say about how it was trained, and the
part only the registry writes.

A user's ``training`` (publish metadata) describes training — steps, losses, optimizer — strictly
typed and bounded, and may never name a blob: the preview route serves bytes by digest, so a
``previews`` list a user could write would hand anyone the bytes of any stored blob, a private
embedding or another user's training images (issue 8). ``previews``, ``job``, ``dataset`` and
the other keys ``complete`` records are the server's alone (:data:`SERVER_KEYS`).

Stored JSON is never trusted either: rows written before this schema existed may hold anything,
so readers (:func:`recorded_previews`) skip what does not parse instead of failing.
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session

from client.core.errors import BadRequest
from registry.embeddings.models import Embedding, EmbeddingVersion
from registry.storage.keys import DIGEST_RE

from .models import TrainingJob

log = logging.getLogger("registry.training")

MAX_STEPS = 10_000_000
MAX_LOSSES = 1_000  # the worker sends at most 512 points (client/core/loss_curve.py)
Text = Field(default=None, max_length=200)
# A loss curve point: a bare loss, or ``[step, loss]`` (client/core/loss_curve.py).
LossPoint = float | Annotated[list[int | float], Field(min_length=2, max_length=2)]

# Written by ``complete`` from the job row; a user (or worker) sending them is refused/dropped.
SERVER_KEYS = frozenset(
    {"previews", "job", "params", "base_model", "family", "dataset", "attempts"}
)


class TrainingInfo(BaseModel):
    """How an embedding was trained, as its publisher describes it; every key optional."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    steps: int | None = Field(default=None, ge=0, le=MAX_STEPS)
    epochs: int | None = Field(default=None, ge=0, le=MAX_STEPS)
    batch_size: int | None = Field(default=None, ge=1, le=65_536)
    gradient_accumulation: int | None = Field(default=None, ge=1, le=65_536)
    learning_rate: float | None = Field(default=None, gt=0, le=100)
    resolution: int | None = Field(default=None, ge=1, le=16_384)
    vectors_per_token: int | None = Field(default=None, ge=1, le=75)
    dataset_size: int | None = Field(default=None, ge=0, le=1_000_000)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    loss: float | None = None
    final_loss: float | None = None
    losses: list[LossPoint] | None = Field(default=None, max_length=MAX_LOSSES)
    eval_losses: list[LossPoint] | None = Field(default=None, max_length=MAX_LOSSES)
    early_stop: bool | None = None
    early_stop_window: int | None = Field(default=None, ge=1, le=MAX_STEPS)
    # The published vectors are this exponential average over the steps (0: the last step's).
    ema_decay: float | None = Field(default=None, ge=0, lt=1)
    wall_s: float | None = Field(default=None, ge=0, le=1e9)
    stopped_early: bool | None = None
    resumed_from_step: int | None = Field(default=None, ge=0, le=MAX_STEPS)
    initializer: str | None = Text
    optimizer: str | None = Text
    scheduler: str | None = Text
    trainer: str | None = Text
    # The name the trainer gave it (A1111's internal `name`); the trigger is the file name.
    name: str | None = Text
    device: str | None = Text
    description: str | None = Field(default=None, max_length=4_000)


class WorkerTrainingInfo(TrainingInfo):
    """What a training worker reports on ``complete``, beyond what a user may describe."""

    worker: str | None = Text
    worker_base_models: list[Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, max_length=50
    )
    # The digests of the images it trained on, as a record; no route serves bytes from these.
    image_digests: list[Annotated[str, Field(pattern=DIGEST_RE.pattern)]] | None = Field(
        default=None, max_length=1_000
    )


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"training.{where}: {error['msg']}")
    return "; ".join(parts)


def validate_user_training(value: Any) -> dict[str, Any] | None:
    """The publisher's ``training`` as it will be stored, or BadRequest naming the bad key.

    Called from ``PublishMetadata.validate``: the only way user-written ``training`` reaches a
    version row."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("'training' must be a JSON object describing how it was trained")
    reserved = sorted(SERVER_KEYS & value.keys())
    if reserved:
        raise BadRequest(
            f"'training' may not set {', '.join(reserved)}: the registry records these itself "
            "when a training job completes (previews included); remove them"
        )
    try:
        info = TrainingInfo.model_validate(value)
    except ValidationError as exc:
        known = ", ".join(TrainingInfo.model_fields)
        raise BadRequest(f"{_describe(exc)} (known keys: {known})") from None
    return info.model_dump(exclude_unset=True)


def _plain_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return len(value) <= 200
    return value is None or isinstance(value, bool | int) and abs(value) < 2**63


def worker_training(value: dict[str, Any]) -> dict[str, Any]:
    """The worker's report, key by key: a known key must have its type, an unknown one (a newer
    worker's) is kept only as a short scalar, and a reserved one never; what does not fit is
    dropped and logged rather than failing a job that has already trained for hours."""
    kept: dict[str, Any] = {}
    for key, item in value.items():
        if key not in WorkerTrainingInfo.model_fields:
            if key not in SERVER_KEYS and len(key) <= 64 and _plain_scalar(item):
                kept[key] = item
            else:
                log.warning("complete: dropped training key %r the registry does not know", key)
            continue
        try:
            checked = WorkerTrainingInfo.model_validate({key: item})
        except ValidationError as exc:
            log.warning("complete: dropped training key %r (%s)", key, _describe(exc))
            continue
        kept.update(checked.model_dump(exclude_unset=True))
    return kept


def recorded_previews(training: Any) -> list[dict[str, Any]]:
    """The ``previews`` entries of stored ``training`` that are well formed (a dict with a
    ``sha256:`` digest); anything else is skipped, whatever the row holds."""
    if not isinstance(training, dict):
        return []
    previews = training.get("previews")
    if not isinstance(previews, list):
        return []
    return [
        p
        for p in previews
        if isinstance(p, dict)
        and isinstance(p.get("digest"), str)
        and DIGEST_RE.fullmatch(p["digest"])
    ]


def is_malformed(training: Any) -> bool:
    """Stored ``training`` that readers had to skip parts of (for gc's report)."""
    if training is None:
        return False
    if not isinstance(training, dict):
        return True
    previews = training.get("previews")
    if previews is None:
        return False
    return not isinstance(previews, list) or len(recorded_previews(training)) != len(previews)


def producing_job(
    session: Session, embedding: Embedding, version: EmbeddingVersion
) -> TrainingJob | None:
    """The training job that published ``version``, or None. The job row proves it (its target
    is this embedding and its result is this version's digest, both written by the server), so a
    user-written ``training.job`` proves nothing."""
    training = version.training if isinstance(version.training, dict) else {}
    job_id = training.get("job")
    job = session.get(TrainingJob, job_id) if isinstance(job_id, str) else None
    if (
        job is None
        or job.namespace != embedding.namespace
        or job.name != embedding.name
        or job.result_digest != version.digest
    ):
        return None
    return job


def served_previews(session: Session, embedding: Embedding, version: EmbeddingVersion) -> set[str]:
    """The preview digests the preview route may serve for ``version``: those recorded by the
    ``complete`` of the training job that produced it, so a row holding user-written previews
    from before validation serves nothing."""
    previews = recorded_previews(version.training)
    if not previews or producing_job(session, embedding, version) is None:
        return set()
    return {p["digest"] for p in previews}
