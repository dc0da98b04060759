"""Pre-training the toy world's pipeline, seeded: first the VAE (reconstruct renders), then the
UNet (denoise latents given captions, 10% of captions dropped so classifier-free guidance
works, the learning rate decayed to zero on a cosine) under a frozen, randomly initialised text
encoder. Captions come bare ("a red circle") or inside the trainer's own prompt templates ("a
photo of a red circle"), so template words mean "nothing in particular" to the model, as they
do to Stable Diffusion.

Reproducible: the same seed, step counts, torch version and thread count give the same bytes
(``torch.use_deterministic_algorithms``; one thread, which also runs ~10x faster than two on a
busy machine, where OpenMP's threads wait on each other). Budget: <= 15 minutes on an idle CPU.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from client.core.training import OBJECT_TEMPLATES, STYLE_TEMPLATES

from . import data
from .pipeline import new_pipeline

DROP_CAPTION = 0.1  # share of empty captions (for classifier-free guidance)
GENERIC_SHARE = 0.1  # share of seen concepts also captioned "a shape"


@dataclass(frozen=True)
class BuildConfig:
    seed: int = 0
    images: int = 4000
    vae_steps: int = 400
    vae_batch: int = 16
    unet_steps: int = 3000
    unet_batch: int = 32
    learning_rate: float = 1e-3
    threads: int = 1


def _pixels(specs: list[data.Spec]) -> Any:
    import torch

    arr = np.stack([data.render(s) for s in specs]).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def train_vae(vae: Any, pixels: Any, steps: int, batch: int, lr: float, log: Callable) -> None:
    """Reconstruction (MSE) with a whisper of KL, enough for flat shapes on flat grey."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(1)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    vae.train()
    for step in range(steps):
        idx = torch.randint(0, len(pixels), (batch,), generator=g)
        x = pixels[idx]
        dist = vae.encode(x).latent_dist
        z = dist.mean + dist.std * torch.randn(dist.mean.shape, generator=g)
        recon = vae.decode(z).sample
        loss = F.mse_loss(recon, x) + 1e-6 * dist.kl().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step % 100 == 0 or step == steps - 1:
            log(f"vae step {step} loss {loss.item():.4f}")
    vae.eval()


def caption_ids(pipe: Any, specs: list[data.Spec], rng: random.Random) -> tuple[Any, list]:
    """Every caption variant of every phrase tokenized once: ``table[k]`` are the ids of
    variant ``k``; ``choices[i]`` the variants image ``i`` may be shown with."""
    import torch

    templates = ("a {}", *OBJECT_TEMPLATES, *STYLE_TEMPLATES)
    phrases = sorted({s.caption.removeprefix("a ") for s in specs} | {"shape"})
    texts = [""] + [t.format(p) for p in phrases for t in templates]
    tok = pipe.tokenizer
    ids = tok(texts, padding="max_length", max_length=tok.model_max_length, truncation=True)
    table = torch.tensor(ids.input_ids)
    per_phrase = {p: [1 + i * len(templates) + j for j in range(len(templates))]
                  for i, p in enumerate(phrases)}  # fmt: skip
    choices = []
    for s in specs:
        own = per_phrase[s.caption.removeprefix("a ")]
        generic = per_phrase["shape"] if s.caption != data.GENERIC_CAPTION else own
        choices.append((own, generic))
    return table, choices


def train_denoiser(pipe: Any, specs: list[data.Spec], cfg: BuildConfig, log: Callable) -> None:
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler

    pixels = _pixels(specs)
    vae, unet, text_encoder = pipe.vae, pipe.unet, pipe.text_encoder
    with torch.no_grad():
        dists = [vae.encode(chunk).latent_dist for chunk in pixels.split(256)]
    mean = torch.cat([d.mean for d in dists])
    std = torch.cat([d.std for d in dists])
    scale = float(1.0 / mean.std())
    vae.register_to_config(scaling_factor=scale)
    log(f"latent std {mean.std():.3f}: vae scaling_factor {scale:.4f}")
    mean, std = mean * scale, std * scale

    sched = DDPMScheduler.from_config(pipe.scheduler.config)
    ac = sched.alphas_cumprod.float()
    rng = random.Random(cfg.seed)
    table, choices = caption_ids(pipe, specs, rng)
    # The text encoder stays frozen (as CLIP does under Stable Diffusion): every caption
    # variant's hidden states are computed once.
    text_encoder.requires_grad_(False)
    with torch.no_grad():
        hidden_table = torch.cat([text_encoder(chunk)[0] for chunk in table.split(128)])
    g = torch.Generator().manual_seed(cfg.seed + 2)
    params = list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=1e-2)
    # Cosine decay to zero: the last steps settle the fine detail (crisp bands) that a constant
    # rate keeps shaking.
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.unet_steps)
    unet.train()
    started = time.perf_counter()
    for step in range(cfg.unet_steps):
        idx = torch.randint(0, len(specs), (cfg.unet_batch,), generator=g)
        rows = []
        for i in idx.tolist():
            u = rng.random()
            if u < DROP_CAPTION:
                rows.append(0)
            else:
                own, generic = choices[i]
                pool = generic if u < DROP_CAPTION + GENERIC_SHARE else own
                # half bare captions ("a red circle"), half inside a template
                rows.append(pool[0] if rng.random() < 0.5 else rng.choice(pool[1:]))
        x0 = mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, len(ac), (cfg.unet_batch,), generator=g)
        a = ac[t].sqrt().view(-1, 1, 1, 1)
        s = (1 - ac[t]).sqrt().view(-1, 1, 1, 1)
        noisy = a * x0 + s * noise
        target = a * noise - s * x0  # velocity
        hidden = hidden_table[rows]
        pred = unet(noisy, t, encoder_hidden_states=hidden).sample
        loss = F.mse_loss(pred, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay.step()
        opt.zero_grad(set_to_none=True)
        if step % 100 == 0 or step == cfg.unet_steps - 1:
            rate = (step + 1) / (time.perf_counter() - started)
            log(f"unet step {step} loss {loss.item():.4f} ({rate:.2f} steps/s)")
    unet.eval()


def build_toy_pipeline(cfg: BuildConfig = BuildConfig(), log: Callable = print) -> Any:
    """Train the toy pipeline from scratch (VAE, then UNet + text encoder); returns it."""
    import torch

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(cfg.threads)
    started = time.perf_counter()
    pipe = new_pipeline(cfg.seed)
    specs = data.dataset(cfg.images, seed=cfg.seed)
    train_vae(pipe.vae, _pixels(specs[:2000]), cfg.vae_steps, cfg.vae_batch, 2e-3, log)
    train_denoiser(pipe, specs, cfg, log)
    log(f"built in {time.perf_counter() - started:.0f} s on {torch.get_num_threads()} threads")
    return pipe
