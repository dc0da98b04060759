"""Our loop with one speed point taken back at a time, so each point is measured on its own
(``bench/train_speed.py --ablate``). Each variant swaps in for ``Trainer`` in the child process.

- ``full-table``: the whole token-embedding table trains too (dense gradient, AdamW state over
  every row) and is restored every step, as in the reference script — point 1 removed.
- ``vae-every-step``: the VAE encodes each batch's pixels every step instead of reading the
  latent cache — point 2 removed.
- ``sync-every-step``: losses read back to the host after every step (``loss_every=1``) —
  point 3 removed; no subclass needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from trainer_service.training.data import prepare_images
from trainer_service.training.loop import Batch, Trainer

VARIANTS = ("ours", "full-table", "vae-every-step", "sync-every-step")


class FullTableTrainer(Trainer):
    @contextmanager
    def installed(self) -> Iterator[None]:
        with super().installed():
            tables = [s.table for s in self.slots]
            originals = [t.detach().clone() for t in tables]
            for t in tables:
                t.requires_grad_(True)
            self.optimizer = torch.optim.AdamW(
                [*self.vectors, *tables], lr=self.params.learning_rate, weight_decay=1e-2
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

    def sample_batch(self, generator: torch.Generator | None = None) -> Batch:
        batch = super().sample_batch(generator)
        idx = torch.randint(0, len(self.pixels), (self.params.batch_size,), device=self.device)
        vae = self.pipe.vae
        with torch.no_grad():
            latents = vae.encode(self.pixels[idx]).latent_dist.sample()
        batch.latents = latents.float() * float(vae.config.scaling_factor)
        return batch


def install(variant: str) -> dict[str, Any]:
    """Swap the variant's Trainer into the loop; returns TrainingParams overrides."""
    from trainer_service.training import loop

    if variant == "full-table":
        loop.Trainer = FullTableTrainer
    elif variant == "vae-every-step":
        loop.Trainer = VaeEveryStepTrainer
    elif variant == "sync-every-step":
        return {"loss_every": 1}
    return {}
