"""What a training run reports while it runs (:class:`Progress`) and when it ends
(:class:`TrainingResult`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from client.core.embedding import Embedding
from client.core.training import TrainingParams

from .checkpoint import Checkpoint


@dataclass
class Progress:
    step: int
    total: int  # the step cap, or `step` on the report at which early stopping ends the run
    losses: list[float]  # training losses since the previous report
    eval_loss: float | None
    elapsed_s: float
    eta_s: float
    steps_per_s: float
    checkpoint: Callable[[], Checkpoint] = field(repr=False)  # the state after `step`, on demand


@dataclass
class TrainingResult:
    embedding: Embedding
    steps: int
    final_loss: float | None
    losses: list[float]
    eval_losses: list[float]
    wall_s: float
    device: str
    stopped_early: bool
    cancelled: bool
    checkpoint: Checkpoint  # state at the end (a cancelled run resumes from it)
    image_digests: list[str]
    params: TrainingParams  # what it ran with: the job's, the model's defaults filled in
