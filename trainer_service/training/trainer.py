"""One training run's state and steps: only the new vectors train, the VAE runs once per image,
nothing syncs with the host between loss read-backs. See ``docs/PERFORMANCE.md`` for what each
choice buys. :class:`Trainer` is driven by ``loop.train_embedding``; tests and benchmarks drive
single steps on batches of their own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from client.core.embedding import Embedding
from client.core.errors import BadRequest
from client.core.training import TrainingParams, templates_for

from . import text
from .checkpoint import Checkpoint
from .data import encode_latents, prepare_images
from .model_defaults import fit_to_model

# Images in the fixed early-stopping batch (fewer if fewer images). Its forward pass runs every
# `early_stop_every` steps; at 4 it cost up to ~12% of a step at batch 1, at 2 about half that.
EVAL_BATCH = 2


@dataclass
class Batch:
    latents: torch.Tensor  # x0 [B, C, h, w], already scaled
    noise: torch.Tensor
    timesteps: torch.Tensor  # long [B]
    ids: list[torch.Tensor]  # per encoder [B, 77]
    time_ids: torch.Tensor  # SDXL [B, 6]
    target: torch.Tensor | None = (
        None  # overrides the noise/velocity target (tests: a reachable one)
    )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BadRequest("training parameter 'device' is 'cuda' but no CUDA device is visible")
    return device


class Trainer:
    """One run: frozen pipeline, spliced vectors, AdamW over them, cached latents, generator.
    ``params`` are the job's with the model's and the images' defaults filled in
    (``fit_to_model``)."""

    def __init__(self, pipe: Any, images: list[Any], params: TrainingParams) -> None:
        images = list(images)
        params = fit_to_model(pipe, params, len(images))
        self.pipe, self.params = pipe, params
        self.device = resolve_device(params.device)
        pipe.to(self.device)
        self.cuda = self.device.type == "cuda"
        prepared = prepare_images(images, params.resolution)
        self.image_digests = [p.digest for p in prepared]
        self.slots = text.encoder_slots(pipe)
        self.unet, self.sdxl = pipe.unet, len(self.slots) == 2
        self.cache = encode_latents(pipe.vae, prepared, self.device)
        # Noise schedule of the training scheduler (DDPM over the pipeline's config).
        from diffusers import DDPMScheduler

        sched = DDPMScheduler.from_config(pipe.scheduler.config)
        self.prediction_type = sched.config.prediction_type
        if self.prediction_type not in ("epsilon", "v_prediction", "sample"):
            raise BadRequest(f"scheduler prediction_type {self.prediction_type!r} is unsupported")
        ac = sched.alphas_cumprod.to(self.device, torch.float32)
        self.sqrt_ac, self.sqrt_1m_ac = ac.sqrt(), (1 - ac).sqrt()
        self.num_timesteps = int(sched.config.num_train_timesteps)
        # Prompt ids for every template, per encoder, built once.
        self.templates = templates_for(params.concept)
        self.template_ids = [
            torch.tensor(
                [
                    text.prompt_ids(s, t.format(params.trigger), params.trigger, params.vectors)
                    for t in self.templates
                ],
                device=self.device,
            )
            for s in self.slots
        ]
        self.vectors = [
            torch.nn.Parameter(
                text.initial_vectors(s, params.initializer, params.vectors).to(self.device)
            )
            for s in self.slots
        ]
        self.optimizer = torch.optim.AdamW(
            self.vectors,
            lr=params.learning_rate,
            betas=(0.9, 0.999),
            weight_decay=1e-2,
            eps=1e-8,
            fused=self.cuda,
        )
        # The published vectors: the bias-corrected exponential average of the trajectory,
        # kept directly (a_n = a_{n-1} + w_n (v_n - a_{n-1}), w_n = (1 - d) / (1 - d^n)).
        self.average = [v.detach().clone() for v in self.vectors]
        self.steps_done = 0
        self.generator = torch.Generator(self.device).manual_seed(params.seed)
        self.unet_call = torch.compile(self.unet) if params.compile and self.cuda else self.unet
        self.fingerprint = self._fingerprint()

    def _fingerprint(self) -> str:
        data = {
            "params": self.params.fingerprint_fields(),
            "images": self.image_digests,
            "encoders": {s.name: int(s.table.shape[1]) for s in self.slots},
        }
        return "sha256:" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Freeze and eval() every pipeline module and splice the vectors in; undo on exit."""
        modules = [self.unet, self.pipe.vae, *(s.text_encoder for s in self.slots)]
        modes = [m.training for m in modules]
        flags = [[p.requires_grad for p in m.parameters()] for m in modules]
        determinism = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
        )
        try:
            if not self.cuda:
                # Same seed, same vectors, and a resumed run equal to an uninterrupted one: on
                # the CPU, with more than one thread and 3+ images per batch, the default
                # kernels accumulated gradients in a varying order (last digits differed).
                torch.use_deterministic_algorithms(True)
            for m in modules:
                m.eval().requires_grad_(False)
            with text.spliced(self.slots, self.vectors):
                yield
        finally:
            for m, mode, fl in zip(modules, modes, flags, strict=True):
                m.train(mode)
                for p, f in zip(m.parameters(), fl, strict=True):
                    p.requires_grad_(f)
            torch.use_deterministic_algorithms(determinism[0], warn_only=determinism[1])

    # -- batches -----------------------------------------------------------------------------
    def sample_batch(self, generator: torch.Generator | None = None) -> Batch:
        """Random images/flips, templates, timesteps and noise, all drawn on the device."""
        g, b, dev = generator or self.generator, self.params.batch_size, self.device
        idx = torch.randint(0, len(self.cache), (b,), generator=g, device=dev)
        tmpl = torch.randint(0, len(self.templates), (b,), generator=g, device=dev)
        t = torch.randint(0, self.num_timesteps, (b,), generator=g, device=dev)
        shape = (b, *self.cache.mean.shape[1:])
        eps = torch.randn(shape, generator=g, device=dev)
        noise = torch.randn(shape, generator=g, device=dev)
        ids = [tid[tmpl] for tid in self.template_ids]
        return Batch(self.latents(idx, eps), noise, t, ids, self.cache.time_ids[idx])

    def latents(self, idx: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Latents of cached images ``idx``: ``mean + std * eps`` from the cache (encoded once),
        as ``latent_dist.sample()`` would draw them. Benchmarks override only this, so their
        variants consume the same random draws as ours."""
        return self.cache.mean[idx] + self.cache.std[idx] * eps

    def fixed_batch(self, size: int = EVAL_BATCH) -> Batch:
        """The early-stopping batch: the first images unflipped (latent means), prompts from the
        first templates, timesteps spread over the schedule, noise from ``seed + 1``."""
        k = min(size, len(self.cache) // 2)
        g = torch.Generator(self.device).manual_seed(self.params.seed + 1)
        idx = torch.arange(0, 2 * k, 2, device=self.device)
        tmpl = torch.arange(k, device=self.device) % len(self.templates)
        t = (torch.linspace(0.1, 0.9, k, device=self.device) * self.num_timesteps).long()
        if k == 1:
            t.fill_(self.num_timesteps // 2)
        lat = self.cache.mean[idx]
        noise = torch.randn(lat.shape, generator=g, device=self.device)
        ids = [tid[tmpl] for tid in self.template_ids]
        return Batch(lat, noise, t, ids, self.cache.time_ids[idx])

    # -- steps -------------------------------------------------------------------------------
    def _pred_target(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.sqrt_ac[batch.timesteps].view(-1, 1, 1, 1)
        s = self.sqrt_1m_ac[batch.timesteps].view(-1, 1, 1, 1)
        noisy = a * batch.latents + s * batch.noise
        if batch.target is not None:
            target = batch.target
        elif self.prediction_type == "epsilon":
            target = batch.noise
        elif self.prediction_type == "v_prediction":
            target = a * batch.noise - s * batch.latents  # = DDPMScheduler.get_velocity
        else:
            target = batch.latents
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda):
            hidden, pooled = text.encode(self.slots, batch.ids)
            extra = {}
            if self.sdxl:
                extra["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": batch.time_ids}
            dtype = self.unet.dtype
            pred = self.unet_call(
                noisy.to(dtype),
                batch.timesteps,
                encoder_hidden_states=hidden.to(dtype),
                return_dict=False,
                **extra,
            )[0]
        return pred.float(), target.float()

    def loss(self, batch: Batch) -> torch.Tensor:
        """MSE between the UNet's prediction and the target of the scheduler's prediction type
        (noise; velocity ``a*noise - s*x0`` as ``get_velocity``; or x0)."""
        return F.mse_loss(*self._pred_target(batch))

    def prediction(self, batch: Batch) -> torch.Tensor:
        """The UNet's prediction for ``batch`` (no grad), e.g. to build a reachable target."""
        with torch.no_grad():
            return self._pred_target(batch)[0]

    def scale_learning_rate(self, fraction: float) -> None:
        """Set the rate to ``fraction`` of the job's (the loop anneals it while settling)."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.params.learning_rate * fraction

    def train_step(self, batch: Batch) -> torch.Tensor:
        """One AdamW step on the vectors; returns the loss, detached, still on the device."""
        loss = self.loss(batch)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps_done += 1
        d = self.params.ema_decay
        weight = (1 - d) / (1 - d**self.steps_done)
        with torch.no_grad():
            for avg, v in zip(self.average, self.vectors, strict=True):
                avg.lerp_(v.detach(), weight)
        return loss.detach()

    def eval_loss(self, batch: Batch) -> torch.Tensor:
        """The fixed-batch loss of the published (averaged) vectors: what early stopping
        watches is what the job would publish if it stopped now."""
        with torch.no_grad():
            live = [v.detach().clone() for v in self.vectors]
            try:
                for v, avg in zip(self.vectors, self.average, strict=True):
                    v.copy_(avg)
                return self.loss(batch)
            finally:
                for v, saved in zip(self.vectors, live, strict=True):
                    v.copy_(saved)

    # -- state -------------------------------------------------------------------------------
    def vectors_numpy(self, tensors: list[torch.Tensor] | None = None) -> dict[str, np.ndarray]:
        """Copies: on the CPU ``.numpy()`` shares memory with the live parameter, and a
        checkpoint or embedding must not change as training goes on."""
        return {
            s.name: v.detach().float().cpu().numpy().copy()
            for s, v in zip(self.slots, tensors or self.vectors, strict=True)
        }

    def checkpoint(self, step: int, losses: list[float], evals: list[float], elapsed: float):
        state = [self.optimizer.state.get(v, {}) for v in self.vectors]

        def moment(key: str) -> dict[str, np.ndarray]:
            return {
                s.name: (st[key] if key in st else torch.zeros_like(v)).float().cpu().numpy().copy()
                for s, v, st in zip(self.slots, self.vectors, state, strict=True)
            }

        return Checkpoint(
            step=step,
            vectors=self.vectors_numpy(),
            exp_avg=moment("exp_avg"),
            exp_avg_sq=moment("exp_avg_sq"),
            adam_step=float(state[0]["step"]) if "step" in state[0] else 0.0,
            rng_state=self.generator.get_state().numpy().copy(),
            fingerprint=self.fingerprint,
            device=self.device.type,
            losses=list(losses),
            eval_losses=list(evals),
            elapsed_s=elapsed,
            average=self.vectors_numpy(self.average),
        )

    def restore(self, ckpt: Checkpoint) -> None:
        if ckpt.fingerprint != self.fingerprint:
            raise BadRequest(
                "the checkpoint belongs to a run with other parameters or images; "
                "resume with the job's original params and images, or start afresh"
            )
        names = [s.name for s in self.slots]
        for group, tensors in (("vectors", ckpt.vectors), ("average", ckpt.average)):
            fits = all(
                name in tensors and tuple(tensors[name].shape) == tuple(v.shape)
                for name, v in zip(names, self.vectors, strict=True)
            )
            if (tensors or group == "vectors") and not fits:
                raise BadRequest(
                    f"the checkpoint's {group} tensors do not fit this run's encoders and vectors; "
                    "start afresh"
                )
        with torch.no_grad():
            for name, v, avg in zip(names, self.vectors, self.average, strict=True):
                v.copy_(torch.from_numpy(ckpt.vectors[name]))
                avg.copy_(torch.from_numpy(ckpt.published[name]))
        self.steps_done = ckpt.step
        if ckpt.adam_step > 0:
            sd = self.optimizer.state_dict()
            sd["state"] = {
                i: {
                    "step": torch.tensor(ckpt.adam_step, dtype=torch.float32),
                    "exp_avg": torch.from_numpy(ckpt.exp_avg[n]).to(self.device),
                    "exp_avg_sq": torch.from_numpy(ckpt.exp_avg_sq[n]).to(self.device),
                }
                for i, n in enumerate(names)
            }
            self.optimizer.load_state_dict(sd)
        if ckpt.device == self.device.type:
            self.generator.set_state(torch.from_numpy(np.asarray(ckpt.rng_state, np.uint8)))
        else:  # another device's generator state does not load; continue reproducibly anyway
            self.generator.manual_seed(self.params.seed + ckpt.step)

    def embedding(self) -> Embedding:
        """The published vectors (the average; with ``ema_decay`` 0, the last step's)."""
        return Embedding.from_tensors(
            self.vectors_numpy(self.average),
            token=self.params.trigger,
            source_format="lexicon-trainer",
        )
