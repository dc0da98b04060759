"""The training loop: :func:`train_embedding` runs a :class:`~.trainer.Trainer` step by step,
reads losses back every ``loss_every`` steps, judges DVAR early stopping (once it fires, the
job trains ``settle_steps`` more so the average it publishes is made of the plateau; the last
``settle_steps`` of a run anneal the rate to 0 so that it comes to rest), reports progress (with
a checkpoint on demand) and honours cancellation between steps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from client.core.training import TrainingParams

from .checkpoint import Checkpoint
from .early_stop import DvarRule
from .results import Progress, TrainingResult
from .trainer import Trainer  # module attribute: benchmarks swap in Trainer variants here

Cancel = Callable[[], bool] | threading.Event | None


def _cancelled(cancel: Cancel) -> bool:
    if cancel is None:
        return False
    return cancel.is_set() if isinstance(cancel, threading.Event) else bool(cancel())


def settling_rate(params: TrainingParams, step: int, fired_at: int | None) -> float:
    """The share of the job's rate for the step after ``step``. The last ``settle_steps`` before
    a run ends anneal it linearly to 0, whatever ends the run: DVAR having fired, or the step cap
    (when the run is at least twice the settle steps, so that a plateau comes before them; a
    shorter job keeps its whole rate). At a constant rate the vectors keep hopping between
    look-alikes (a green star, a yellow one), and their average with them; annealed, they come to
    rest in one (toy world: docs/PERFORMANCE.md)."""
    settle = params.settle_steps
    if not settle:
        return 1.0
    ends = [] if fired_at is None else [fired_at + settle]
    if params.steps >= 2 * settle:
        ends.append(params.steps)
    return min([1.0] + [max(0.0, (end - step) / settle) for end in ends])


def train_embedding(
    pipe: Any,
    images: list[Any],
    params: TrainingParams,
    *,
    progress: Callable[[Progress], bool | None] | None = None,
    resume: Checkpoint | None = None,
    cancel: Cancel = None,
) -> TrainingResult:
    """Train ``params.vectors`` new vectors for ``params.trigger`` on ``images``.

    ``progress`` is called every ``params.loss_every`` steps (and after the last); returning
    False cancels. ``cancel`` (an Event or a callable) is checked before every step, for a
    SIGTERM that should stop after the current step. A cancelled run returns a result with
    ``cancelled=True`` whose ``checkpoint`` resumes it exactly."""
    started = time.perf_counter()
    trainer = Trainer(pipe, images, params)
    params = trainer.params  # the model's defaults filled in
    losses: list[float] = []
    evals: list[float] = []
    step, checked, prior_s = 0, 0, 0.0
    if resume is not None:
        trainer.restore(resume)
        step, prior_s = resume.step, resume.elapsed_s
        losses, evals = list(resume.losses), list(resume.eval_losses)
        if params.early_stop:  # evaluations up to the last read-back were already judged
            checked = (step - step % params.loss_every) // params.early_stop_every
    rule = DvarRule(params.dvar_window, params.early_stop_fraction)
    fired_at: int | None = None  # the step at which DVAR first found the loss flat

    def judge(upto: int) -> None:
        """Feed DVAR the evaluations not yet judged, in order (a resumed run replays them)."""
        nonlocal checked, fired_at
        while checked < upto:
            if fired_at is None and rule.add(evals[checked]):  # no judging once it has fired
                fired_at = (checked + 1) * params.early_stop_every
            checked += 1

    resumed_evals, checked = checked, 0
    judge(resumed_evals)
    first_step, loop_start = step, time.perf_counter()
    pending: list[torch.Tensor] = []
    pending_eval: list[torch.Tensor] = []
    stopped_early = cancelled = False

    def flush() -> list[float]:
        new = torch.stack(pending).tolist() if pending else []
        losses.extend(new)
        evals.extend(torch.stack(pending_eval).tolist() if pending_eval else [])
        pending.clear()
        pending_eval.clear()
        return new

    def elapsed() -> float:
        return prior_s + time.perf_counter() - started

    with trainer.installed():
        fixed = trainer.fixed_batch() if params.early_stop else None
        while step < params.steps:
            if _cancelled(cancel):
                cancelled = True
                break
            fraction = settling_rate(params, step, fired_at)
            if fraction < 1.0:
                trainer.scale_learning_rate(fraction)
            pending.append(trainer.train_step(trainer.sample_batch()))
            step += 1
            if fixed is not None and step % params.early_stop_every == 0:
                pending_eval.append(trainer.eval_loss(fixed))
            if step % params.loss_every and step != params.steps:
                continue
            new = flush()
            judge(len(evals))
            # Once the loss is flat, settle_steps more (annealed) so the average covers the plateau.
            stop_at = params.steps if fired_at is None else fired_at + params.settle_steps
            stopped_early = step >= stop_at and stop_at < params.steps
            if progress is not None:
                done = step - first_step
                rate = done / max(time.perf_counter() - loop_start, 1e-9)
                snapshot_step, snapshot_losses = step, list(losses)

                def snap(s: int = snapshot_step, ls: list[float] = snapshot_losses) -> Checkpoint:
                    return trainer.checkpoint(s, ls, list(evals), elapsed())

                total = step if stopped_early else min(stop_at, params.steps)
                report = Progress(
                    step=step,
                    total=total,
                    losses=new,
                    eval_loss=evals[-1] if evals else None,
                    elapsed_s=elapsed(),
                    eta_s=(total - step) / rate if rate else 0.0,
                    steps_per_s=rate,
                    checkpoint=snap,
                )
                if progress(report) is False:
                    cancelled = True
            if stopped_early or cancelled:
                break
        flush()
        final = trainer.checkpoint(step, losses, evals, elapsed())
        embedding = trainer.embedding()
    return TrainingResult(
        embedding=embedding,
        steps=step,
        final_loss=losses[-1] if losses else None,
        losses=losses,
        eval_losses=evals,
        wall_s=elapsed(),
        device=str(trainer.device),
        stopped_early=stopped_early,
        cancelled=cancelled,
        checkpoint=final,
        image_digests=trainer.image_digests,
        params=params,
    )
