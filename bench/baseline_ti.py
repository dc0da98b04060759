"""A faithful baseline of diffusers' textual-inversion examples, for ``bench/train_speed.py`` to
measure ours against: ``examples/textual_inversion/textual_inversion.py`` (SD 1.x/2.x) and
``textual_inversion_sdxl.py`` (SDXL, both encoders' tables trained, as on diffusers' main).
What it keeps from the reference, with its defaults:

- accelerate: an ``Accelerator`` (``mixed_precision`` "no" by default, as the script's default
  accelerate config; "bf16" as ``--mixed_precision bf16``) prepares the trained text encoder(s),
  optimizer, DataLoader and LR scheduler; steps run under ``accelerator.accumulate`` (1 step)
  with ``accelerator.backward``. With bf16 the UNet and VAE (and SDXL's ``text_encoder_2``, as the
  SDXL script does) are cast to bf16 and run outside autocast; only the prepared text encoder's
  forward autocasts (accelerate wraps it). fp32 weights everywhere otherwise;
- placeholder tokens added to (a copy of) the tokenizer(s), the tables resized and the new rows
  initialised from the initializer token; AdamW over the WHOLE token-embedding matrix (or both,
  SDXL), betas (0.9, 0.999), weight decay 1e-2, eps 1e-8, ``get_scheduler("constant")`` with 500
  warm-up steps (ignored by "constant"), and after every step the untouched rows restored;
- the dataset decodes the image, squashes it to ``resolution`` x ``resolution`` (bicubic, no
  center crop unless ``center_crop=True``; SDXL: a random crop of ``resolution``, its offsets
  and the original size become the time ids), flips it (p=0.5), picks a random imagenet
  template and tokenizes, on every item; a shuffling DataLoader, ``repeats`` 100;
- the VAE encodes the batch every step (``latent_dist.sample()``), DDPM noise, uniform
  timesteps, epsilon or v-prediction target, fp32 MSE; SDXL: penultimate hidden states of both
  encoders and ``text_encoder_2``'s pooled output;
- ``loss.detach().item()`` and the LR into a tqdm bar every step; learned embeddings saved every
  ``save_steps`` and ``accelerator.save_state`` every ``checkpointing_steps`` (500 each, as the
  reference: runs shorter than 500 steps pay neither, as with the reference).

Departures (listed in docs/PERFORMANCE.md too): images come as PNG bytes in memory, not files on
disk; no validation images (the reference's default: no ``--validation_prompt``); no trackers
(``report_to`` tensorboard off); ``num_workers=0`` (the reference's default); one process; the
wall clock starts after the set-up (tokenizer copy, table resize, Accelerator), which favours
the baseline, since ours counts its set-up (latent cache) in its steps/s.
"""

from __future__ import annotations

import copy
import io
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from client.core.training import templates_for


class _Dataset(torch.utils.data.Dataset):
    """The reference's ``TextualInversionDataset``: per item decode, crop/squash, flip, prompt."""

    def __init__(
        self,
        images: list[bytes],
        tokenizers: list[Any],
        placeholder: str,
        size: int,
        concept: str,
        *,
        sdxl: bool,
        center_crop: bool,
    ) -> None:
        self.images, self.tokenizers, self.placeholder = images, tokenizers, placeholder
        self.size, self.sdxl, self.center_crop = size, sdxl, center_crop
        self.templates = templates_for(concept)

    def __len__(self) -> int:
        return len(self.images) * 100  # the reference's `repeats`

    def _crop_sdxl(self, image: Image.Image) -> tuple[Image.Image, tuple[int, int]]:
        """torchvision's CenterCrop/RandomCrop(size), as the SDXL script crops before resizing."""
        s, w, h = self.size, image.width, image.height
        if self.center_crop:
            y1, x1 = max(0, round((h - s) / 2.0)), max(0, round((w - s) / 2.0))
        else:
            if h < s or w < s:
                raise ValueError(f"Required crop size {(s, s)} is larger than input image size")
            y1 = int(torch.randint(0, h - s + 1, (1,)).item())
            x1 = int(torch.randint(0, w - s + 1, (1,)).item())
        return image.crop((x1, y1, x1 + s, y1 + s)), (y1, x1)

    def __getitem__(self, i: int) -> dict[str, Any]:
        example: dict[str, Any] = {}
        image = Image.open(io.BytesIO(self.images[i % len(self.images)]))
        if image.mode != "RGB":
            image = image.convert("RGB")
        text = random.choice(self.templates).format(self.placeholder)
        if self.sdxl:
            example["original_size"] = (image.height, image.width)
            image, example["crop_top_left"] = self._crop_sdxl(image)
        for k, tokenizer in enumerate(self.tokenizers, start=1):
            example[f"input_ids_{k}"] = tokenizer(
                text,
                padding="max_length",
                truncation=True,
                max_length=tokenizer.model_max_length,
                return_tensors="pt",
            ).input_ids[0]
        img = np.array(image).astype(np.uint8)
        if self.center_crop and not self.sdxl:  # the SD script's --center_crop
            crop = min(img.shape[0], img.shape[1])
            h, w = img.shape[:2]
            img = img[(h - crop) // 2 : (h + crop) // 2, (w - crop) // 2 : (w + crop) // 2]
        image = Image.fromarray(img).resize((self.size, self.size), Image.Resampling.BICUBIC)
        if torch.rand(1) < 0.5:  # transforms.RandomHorizontalFlip(p=0.5)
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        arr = (np.array(image).astype(np.uint8) / 127.5 - 1.0).astype(np.float32)
        example["pixel_values"] = torch.from_numpy(arr).permute(2, 0, 1)
        return example


def _add_placeholders(
    tokenizer: Any, text_encoder: Any, tokens: list[str], initializer: str
) -> list[int]:
    """Add the tokens, resize the table, copy the initializer's row into theirs, freeze the rest
    of the encoder but its token table (the reference's set-up, per encoder)."""
    if tokenizer.add_tokens(tokens) != len(tokens):
        raise ValueError(f"the tokenizer already contains {tokens[0]}")
    token_ids = tokenizer.encode(initializer, add_special_tokens=False)
    if len(token_ids) > 1:
        raise ValueError("The initializer token must be a single token.")
    placeholder_ids = tokenizer.convert_tokens_to_ids(tokens)
    text_encoder.resize_token_embeddings(len(tokenizer))
    token_embeds = text_encoder.get_input_embeddings().weight.data
    with torch.no_grad():
        for token_id in placeholder_ids:
            token_embeds[token_id] = token_embeds[token_ids[0]].clone()
    # newer transformers drop CLIPTextModel's `text_model` wrapper: the same modules, one up
    text_model = getattr(text_encoder, "text_model", text_encoder)
    text_model.encoder.requires_grad_(False)
    text_model.final_layer_norm.requires_grad_(False)
    text_model.embeddings.position_embedding.requires_grad_(False)
    return placeholder_ids


def train_baseline(
    pipe: Any,
    images: list[bytes],
    *,
    trigger: str = "<toy>",
    initializer: str = "cat",
    vectors: int = 1,
    steps: int = 20,
    learning_rate: float = 5e-3,
    batch_size: int = 1,
    resolution: int = 512,
    seed: int = 0,
    concept: str = "object",
    mixed_precision: str = "no",
    center_crop: bool = False,
    save_steps: int = 500,
    checkpointing_steps: int = 500,
    report: Callable[[int, np.ndarray, float], None] | None = None,
    report_every: int = 0,
) -> dict[str, Any]:
    """Train like the reference; returns losses, final vectors, optimizer-state bytes, wall s.
    ``pipe``'s UNet/VAE (and SDXL's second encoder) are cast to the mixed-precision dtype in
    place, as the reference casts its own copies; the trained encoders are deep copies.

    ``report(step, vectors, train_s)`` is called every ``report_every`` steps (the toy-world
    bench judges the run there; the reference has no such hook). Its time is kept out of
    ``wall_s`` and its random draws out of the run's (CPU), so a judged run times as an
    unjudged one and its vectors at step k equal a run stopped at k."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler
    from tqdm.auto import tqdm

    device = pipe.unet.device
    accelerator = Accelerator(mixed_precision=mixed_precision, cpu=device.type == "cpu")
    set_seed(seed)
    random.seed(seed)
    sdxl = getattr(pipe, "text_encoder_2", None) is not None
    pairs = [(pipe.tokenizer, pipe.text_encoder)]
    if sdxl:
        pairs.append((pipe.tokenizer_2, pipe.text_encoder_2))
    tokenizers = [copy.deepcopy(t) for t, _ in pairs]
    encoders = [copy.deepcopy(e).to(device, torch.float32) for _, e in pairs]
    unet, vae = pipe.unet, pipe.vae
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)

    tokens = [trigger] + [f"{trigger}_{i}" for i in range(1, vectors)]
    placeholder_ids = [
        _add_placeholders(t, e, tokens, initializer)
        for t, e in zip(tokenizers, encoders, strict=True)
    ]
    vae.requires_grad_(False)
    unet.requires_grad_(False)
    optimizer = torch.optim.AdamW(
        [e.get_input_embeddings().weight for e in encoders],
        lr=learning_rate,
        betas=(0.9, 0.999),
        weight_decay=1e-2,
        eps=1e-8,
    )
    placeholder = " ".join(tokenizers[0].convert_ids_to_tokens(placeholder_ids[0]))
    dataset = _Dataset(
        images, tokenizers, placeholder, resolution, concept, sdxl=sdxl, center_crop=center_crop
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)
    lr_scheduler = get_scheduler(
        "constant", optimizer=optimizer, num_warmup_steps=500, num_training_steps=steps
    )
    for e in encoders:
        e.train()
    *encoders, optimizer, loader, lr_scheduler = accelerator.prepare(
        *encoders, optimizer, loader, lr_scheduler
    )
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(
        accelerator.mixed_precision, torch.float32
    )
    unet.to(device, dtype=weight_dtype)
    vae.to(device, dtype=weight_dtype)
    if sdxl:  # the SDXL script casts text_encoder_2 (trained too) to the weight dtype
        encoders[1].to(device, dtype=weight_dtype)
    unwrapped = [accelerator.unwrap_model(e) for e in encoders]
    originals = [u.get_input_embeddings().weight.data.clone() for u in unwrapped]
    output_dir = Path(tempfile.mkdtemp(prefix="baseline-ti-"))
    progress_bar = tqdm(range(steps), desc="Steps", file=sys.stderr)
    losses: list[float] = []
    global_step = 0
    started, outside = time.perf_counter(), 0.0
    try:
        while global_step < steps:
            for batch in loader:
                with accelerator.accumulate(*encoders):
                    loss = _step(batch, encoders, unet, vae, noise_scheduler, weight_dtype, sdxl)
                    accelerator.backward(loss)
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad()
                    with torch.no_grad():  # restore every row but the placeholders'
                        for t, u, ids, orig in zip(
                            tokenizers, unwrapped, placeholder_ids, originals, strict=True
                        ):
                            keep = torch.ones((len(t),), dtype=torch.bool)
                            keep[min(ids) : max(ids) + 1] = False
                            u.get_input_embeddings().weight[keep] = orig[keep]
                if accelerator.sync_gradients:
                    progress_bar.update(1)
                    global_step += 1
                    if global_step % save_steps == 0:
                        _save_progress(unwrapped, placeholder_ids, output_dir, global_step)
                    if global_step % checkpointing_steps == 0:
                        accelerator.save_state(str(output_dir / f"checkpoint-{global_step}"))
                    if report is not None and report_every and global_step % report_every == 0:
                        paused = time.perf_counter()
                        train_s = paused - started - outside
                        state = random.getstate()  # the reference draws from the global RNGs
                        with torch.random.fork_rng(devices=[]):
                            report(global_step, _learned(unwrapped, placeholder_ids), train_s)
                        random.setstate(state)
                        outside += time.perf_counter() - paused
                loss_value = loss.detach().item()
                progress_bar.set_postfix(loss=loss_value, lr=lr_scheduler.get_last_lr()[0])
                losses.append(loss_value)
                if global_step >= steps:
                    break
        wall = time.perf_counter() - started - outside
    finally:
        progress_bar.close()
        shutil.rmtree(output_dir, ignore_errors=True)
    state_bytes = sum(
        t.numel() * t.element_size()
        for s in optimizer.state.values()
        for t in s.values()
        if torch.is_tensor(t)
    )
    return {
        "losses": losses,
        "vectors": _learned(unwrapped, placeholder_ids),
        "optimizer_state_bytes": state_bytes,
        "wall_s": wall,
    }


def _learned(encoders: list[Any], ids: list[list[int]]) -> np.ndarray:
    """The placeholder rows of the first encoder's table (fp32, a copy on the host)."""
    return encoders[0].get_input_embeddings().weight.detach()[ids[0]].float().cpu().numpy()


def _step(
    batch: dict[str, Any],
    encoders: list[Any],
    unet: Any,
    vae: Any,
    noise_scheduler: Any,
    weight_dtype: torch.dtype,
    sdxl: bool,
) -> torch.Tensor:
    """One forward pass and loss, as the reference's training step (SD or SDXL)."""
    latents = vae.encode(batch["pixel_values"].to(dtype=weight_dtype)).latent_dist.sample()
    latents = latents.detach() * vae.config.scaling_factor
    noise = torch.randn_like(latents)
    bsz = latents.shape[0]
    timesteps = torch.randint(
        0, noise_scheduler.config.num_train_timesteps, (bsz,), device=latents.device
    ).long()
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    if sdxl:
        hidden_1 = encoders[0](batch["input_ids_1"], output_hidden_states=True).hidden_states[-2]
        out_2 = encoders[1](batch["input_ids_2"], output_hidden_states=True)
        hidden_2 = out_2.hidden_states[-2].to(dtype=weight_dtype)
        original = [
            (batch["original_size"][0][i].item(), batch["original_size"][1][i].item())
            for i in range(bsz)
        ]
        crops = [
            (batch["crop_top_left"][0][i].item(), batch["crop_top_left"][1][i].item())
            for i in range(bsz)
        ]
        size = (batch["pixel_values"].shape[-2], batch["pixel_values"].shape[-1])
        time_ids = torch.cat([torch.tensor(original[i] + crops[i] + size) for i in range(bsz)])
        time_ids = time_ids.to(latents.device, dtype=weight_dtype)
        hidden = torch.cat([hidden_1.to(dtype=weight_dtype), hidden_2], dim=-1)
        extra = {"added_cond_kwargs": {"text_embeds": out_2[0], "time_ids": time_ids}}
        pred = unet(noisy, timesteps, hidden, **extra).sample
    else:
        hidden = encoders[0](batch["input_ids_1"])[0].to(dtype=weight_dtype)
        pred = unet(noisy, timesteps, hidden).sample
    if noise_scheduler.config.prediction_type == "epsilon":
        target = noise
    elif noise_scheduler.config.prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, timesteps)
    else:
        raise ValueError(f"Unknown prediction type {noise_scheduler.config.prediction_type}")
    return F.mse_loss(pred.float(), target.float(), reduction="mean")


def _save_progress(encoders: list[Any], ids: list[list[int]], out: Path, step: int) -> None:
    """The reference's ``save_progress``: the learned rows as safetensors, per encoder."""
    from safetensors.torch import save_file

    for k, (e, rows) in enumerate(zip(encoders, ids, strict=True)):
        table = e.get_input_embeddings().weight
        learned = table[min(rows) : max(rows) + 1].detach().cpu().contiguous()
        suffix = "" if k == 0 else f"_{k + 1}"
        save_file({"<toy>": learned}, str(out / f"learned_embeds{suffix}-steps-{step}.safetensors"))
