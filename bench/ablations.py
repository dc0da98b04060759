"""Our loop with one speed point taken back at a time, so each point is measured on its own
(``bench/train_speed.py --ablate``). Each variant swaps in for ``Trainer`` in the child process.

- ``full-table``: the whole token-embedding table trains too (dense gradient, AdamW state over
  every row) and is restored every step, as in the reference script — point 1 removed.
- ``vae-every-step``: the VAE encodes each batch's pixels every step instead of reading the
  latent cache — point 2 removed.
- ``sync-every-step``: losses read back to the host after every step (``loss_every=1``) —
  point 3 removed; no subclass needed.
- ``bf16-off`` (GPU only): every weight fp32 and no bf16 autocast — point 4 removed.
- ``compile`` (GPU only): ours plus ``torch.compile(unet)`` — the optional part of point 4.
- ``no-early-stop``: ours without DVAR's checks (no fixed-batch evaluation every 5 steps) — what
  the checks cost.
- ``no-average``: ours publishing the last step's vectors (``ema_decay=0``) — what keeping the
  average costs per step (the settle steps after DVAR fires are not in a fixed-step timing).

Every variant but ``no-early-stop`` pays for early stopping as a real job does (the fixed-batch
evaluation every ``early_stop_every`` steps and DVAR's test at each read-back), with
:class:`TimedDvarRule` in place of the shipped rule: it records where the shipped rule would
stop but never stops, so every loop runs the steps asked for.

Everything else (driver loop, sampling, seed, read-backs) is the shipped ``train_embedding``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from trainer_service.training.data import prepare_images
from trainer_service.training.early_stop import DvarRule
from trainer_service.training.trainer import Batch, Trainer

VARIANTS = (
    "ours",
    "full-table",
    "vae-every-step",
    "sync-every-step",
    "no-early-stop",
    "no-average",
)
GPU_VARIANTS = (*VARIANTS, "bf16-off", "compile")
# what each row of the ablation table takes back from ours (or adds)
WHAT = {
    "baseline-fp32": "everything (the reference script, its fp32 default)",
    "baseline-bf16": "everything (the reference, --mixed_precision bf16)",
    "ours": "nothing",
    "full-table": "1: whole table in AdamW, restored every step",
    "vae-every-step": "2: VAE encodes every batch, no latent cache",
    "sync-every-step": "3: loss read back (host sync) every step",
    "bf16-off": "4: fp32 weights, no bf16 autocast",
    "compile": "4 added: torch.compile(unet)",
    "no-early-stop": "DVAR's checks off (real jobs pay them)",
    "no-average": "the vectors' running average off (ema_decay 0)",
}


class TimedDvarRule(DvarRule):
    """The shipped rule, judged in full at every evaluation (its cost is paid), that records
    the evaluation at which it would have stopped in :attr:`would_stop_at` and never stops."""

    would_stop_at: int | None = None  # evaluations seen when the shipped rule first fired

    def add(self, value: float) -> bool:
        if super().add(value) and TimedDvarRule.would_stop_at is None:
            TimedDvarRule.would_stop_at = len(self.history)
        return False


class FullTableTrainer(Trainer):
    @contextmanager
    def installed(self) -> Iterator[None]:
        with super().installed():
            tables = [s.table for s in self.slots]
            originals = [t.detach().clone() for t in tables]
            for t in tables:
                t.requires_grad_(True)
            self.optimizer = torch.optim.AdamW(
                [*self.vectors, *tables],
                lr=self.params.learning_rate,
                betas=(0.9, 0.999),
                weight_decay=1e-2,
                eps=1e-8,
                fused=self.cuda,
            )
            self._restore = list(zip(tables, originals, strict=True))
            try:
                yield
            finally:
                for t in tables:
                    t.requires_grad_(False)

    def train_step(self, batch: Batch) -> torch.Tensor:
        loss = super().train_step(batch)
        with torch.no_grad():  # the reference restores every row it did not mean to train
            for table, original in self._restore:
                table.copy_(original)
        return loss


class VaeEveryStepTrainer(Trainer):
    def __init__(self, pipe: Any, images: list[Any], params: Any) -> None:
        super().__init__(pipe, images, params)
        vae_dtype = next(pipe.vae.parameters()).dtype
        pixels = []
        for image in prepare_images(list(images), params.resolution):
            t = torch.from_numpy(image.pixels)
            pixels += [t, torch.flip(t, dims=[2])]
        self.pixels = torch.stack(pixels).to(self.device, vae_dtype)

    def latents(self, idx: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Ours' draws, but the latents come from a VAE encode of the drawn images (and flips)
        this step: ``mean + std * eps``, as ``latent_dist.sample()``."""
        vae = self.pipe.vae
        scale = float(vae.config.scaling_factor)
        shift = float(getattr(vae.config, "shift_factor", None) or 0.0)
        with torch.no_grad():
            dist = vae.encode(self.pixels[idx]).latent_dist
            return (dist.mean.float() - shift) * scale + dist.std.float() * scale * eps


class NoAutocastTrainer(Trainer):
    """bf16 autocast off (the child also leaves every weight fp32)."""

    def __init__(self, pipe: Any, images: list[Any], params: Any) -> None:
        super().__init__(pipe, images, params)
        self.cuda = False  # after construction this flag only switches autocast


def install(variant: str) -> dict[str, Any]:
    """Swap the variant's Trainer into the loop; returns TrainingParams overrides."""
    from trainer_service.training import loop

    TimedDvarRule.would_stop_at = None
    loop.DvarRule = TimedDvarRule
    if variant == "no-early-stop":
        return {"early_stop": False}
    if variant == "no-average":
        return {"ema_decay": 0.0}
    if variant == "full-table":
        loop.Trainer = FullTableTrainer
    elif variant == "vae-every-step":
        loop.Trainer = VaeEveryStepTrainer
    elif variant == "sync-every-step":
        return {"loss_every": 1}
    elif variant == "bf16-off":
        loop.Trainer = NoAutocastTrainer
    elif variant == "compile":
        return {"compile": True}
    elif variant != "ours":
        raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(GPU_VARIANTS)}")
    return {}
