"""The worker loop: claim a job, fetch its images (and checkpoint), train with heartbeats and
checkpoints, render previews, publish; repeat.

Threads: training runs in the main thread; a heartbeat thread keeps the lease alive on a timer
(a slow first step, e.g. ``torch.compile``, must not lose the lease) and learns of a cancel.
``train_embedding`` checks ``cancel`` before every step, so a cancel, a lost lease or SIGTERM
stops the run after the current step.

Outcomes: published; cancelled by the user (nothing more to send); lease lost (another worker
has the job: send nothing); stopped by SIGTERM (upload a checkpoint, release the job so the next
worker resumes it); failed (bad input: fail without retry; anything else: fail with retry).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from client.core.canonical import canonical_bytes
from client.core.errors import BadRequest, Conflict, InvalidEmbedding, LexiconError
from client.core.loss_curve import downsample
from client.core.previews import PREVIEW_DEFAULTS
from client.core.training import JobRequest

from .registry_api import Capabilities, Claimed, RegistryAPI

log = logging.getLogger("lexicon.trainer")


@dataclass
class WorkerOptions:
    poll_s: float = 2.0
    checkpoint_every: int = 100  # steps between checkpoint uploads (at loss read-backs)
    preview_steps: int = int(PREVIEW_DEFAULTS["num_inference_steps"])
    preview_guidance: float = float(PREVIEW_DEFAULTS["guidance_scale"])
    device: str = "cpu"  # resolved device, passed to the training params


@dataclass
class _JobState:
    """Shared between the training thread and the heartbeat thread."""

    claimed: Claimed
    step: int = 0
    total: int | None = None  # set when early stopping ends the run before the cap
    eta_s: float | None = None
    unsent: list[float] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Worker:
    def __init__(
        self,
        api: RegistryAPI,
        pipe: Any,
        caps: Capabilities,
        options: WorkerOptions,
        stop: threading.Event | None = None,
    ) -> None:
        self.api, self.pipe, self.caps, self.options = api, pipe, caps, options
        self.stop = stop or threading.Event()
        self.worker_id: str | None = None

    def register(self) -> str:
        """Register with the registry (``run`` does it unless it was done first)."""
        self.worker_id = self.api.register(self.caps)
        log.info("registered as %s (%s)", self.worker_id, ", ".join(self.caps.families))
        return self.worker_id

    def run(self, *, once: bool = False) -> int:
        """Serve jobs until ``stop`` is set (or after one job with ``once``); returns how many
        jobs were handled."""
        if self.worker_id is None:
            self.register()
        assert self.worker_id is not None
        handled = 0
        while not self.stop.is_set():
            claimed = self.api.claim(self.worker_id)
            if claimed is None:
                self.stop.wait(self.options.poll_s)
                continue
            outcome = self.handle(claimed)
            log.info("job %s: %s", claimed.id, outcome)
            handled += 1
            if once:
                break
        return handled

    # -- one job ----------------------------------------------------------------------------
    def handle(self, claimed: Claimed) -> str:
        state = _JobState(claimed)
        beat = threading.Thread(target=self._heartbeats, args=(state,), daemon=True)
        beat.start()
        try:
            return self._train_and_publish(state)
        except Conflict:
            return "lease lost"
        except (BadRequest, InvalidEmbedding) as exc:  # the job's input is bad: do not retry
            return self._fail(state, f"{type(exc).__name__}: {exc}", retry=False)
        except Exception as exc:  # noqa: BLE001 - any other failure is retried elsewhere
            log.exception("job %s failed", claimed.id)
            return self._fail(state, f"{type(exc).__name__}: {exc}", retry=True)
        finally:
            state.done.set()
            beat.join(timeout=5)

    def _fail(self, state: _JobState, error: str, *, retry: bool) -> str:
        if state.lost.is_set() or state.cancelled.is_set():
            return "stopped"
        try:
            self.api.fail(state.claimed.id, state.claimed.lease, error, retry=retry)
        except LexiconError as exc:
            log.warning("could not report the failure of %s: %s", state.claimed.id, exc)
        return f"failed ({error})"

    def _heartbeats(self, state: _JobState) -> None:
        interval = max(0.2, state.claimed.lease_seconds / 3)
        while not state.done.wait(interval):
            self._beat(state)

    def _beat(self, state: _JobState) -> None:
        if state.lost.is_set() or state.cancelled.is_set():
            return
        with state.lock:
            step, total, eta, losses = state.step, state.total, state.eta_s, state.unsent
            state.unsent = []
        try:
            answer = self.api.heartbeat(
                state.claimed.id,
                state.claimed.lease,
                step=step,
                losses=losses,
                eta_s=eta,
                total_steps=total,
            )
        except Conflict:
            state.lost.set()
            return
        except LexiconError as exc:  # the registry is away; the lease may still hold
            log.warning("heartbeat for %s failed: %s", state.claimed.id, exc)
            with state.lock:
                state.unsent = losses + state.unsent
            return
        if answer.get("cancel"):
            state.cancelled.set()

    def _train_and_publish(self, state: _JobState) -> str:
        from trainer_service.training import Checkpoint, render_previews, train_embedding

        claimed, api = state.claimed, self.api
        request = JobRequest.from_dict(claimed.job["params"])
        params = dataclasses.replace(request.params, device=self.options.device)
        images = [api.image(claimed.id, i["digest"]) for i in claimed.job["images"]]
        resume = None
        if claimed.checkpoint:
            raw = api.checkpoint(claimed.id, claimed.checkpoint["digest"])
            resume = Checkpoint.from_bytes(raw)
        last_ckpt = resume.step if resume else 0

        def progress(report: Any) -> bool:
            nonlocal last_ckpt
            with state.lock:
                state.step, state.eta_s = report.step, report.eta_s
                state.total = report.total if report.total < params.steps else None
                state.unsent.extend(report.losses)
            self._beat(state)
            due = report.step - last_ckpt >= self.options.checkpoint_every
            if due and report.step < params.steps and not self._stopping(state):
                api.upload_checkpoint(
                    claimed.id, claimed.lease, report.step, report.checkpoint().to_bytes()
                )
                last_ckpt = report.step
            return not self._stopping(state)

        def stopping() -> bool:
            return self._stopping(state)

        try:
            result = train_embedding(
                self.pipe, images, params, progress=progress, resume=resume, cancel=stopping
            )
        except BadRequest as exc:
            if resume is None or "checkpoint" not in str(exc):
                raise
            log.warning("checkpoint of %s does not fit (%s); starting afresh", claimed.id, exc)
            resume = None
            result = train_embedding(self.pipe, images, params, progress=progress, cancel=stopping)
        if state.lost.is_set():
            return "lease lost"
        if state.cancelled.is_set():
            return "cancelled"
        if result.cancelled and self.stop.is_set():
            # SIGTERM: the step in flight finished; hand the job over with its state.
            api.upload_checkpoint(
                claimed.id, claimed.lease, result.steps, result.checkpoint.to_bytes()
            )
            api.release(claimed.id, claimed.lease)
            return f"released at step {result.steps}"
        used = result.params  # the job's params, the model's defaults filled in
        previews = render_previews(
            self.pipe,
            result.embedding,
            used.previews,
            seed=used.seed,
            steps=self.options.preview_steps,
            guidance_scale=self.options.preview_guidance,
            height=used.resolution,
            width=used.resolution,
            concept=used.concept,
        )
        metadata = {
            "steps": result.steps,
            "resolution": used.resolution,
            "batch_size": used.batch_size,
            "early_stop": used.early_stop,
            "early_stop_window": used.dvar_window if used.early_stop else None,
            "ema_decay": used.ema_decay,
            "final_loss": result.final_loss,
            # [[step, loss]] over the whole run, <= 512 points (client/core/loss_curve.py)
            "losses": downsample(result.losses),
            "eval_losses": downsample(result.eval_losses, used.early_stop_every),
            "wall_s": round(result.wall_s, 3),
            "device": result.device,
            "stopped_early": result.stopped_early,
            "resumed_from_step": resume.step if resume else None,
            "image_digests": result.image_digests,
            "preview_prompts": list(used.previews),
            "worker": self.caps.name,
            "worker_base_models": self.caps.base_models,
        }
        key = uuid.uuid4().hex  # one per completion; the transport's retries reuse it
        job = api.complete(
            claimed.id, claimed.lease, key, canonical_bytes(result.embedding), previews, metadata
        )
        return f"published {job['result']['ref']}"

    def _stopping(self, state: _JobState) -> bool:
        return self.stop.is_set() or state.cancelled.is_set() or state.lost.is_set()
