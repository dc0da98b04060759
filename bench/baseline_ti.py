"""A faithful baseline of diffusers' ``examples/textual_inversion/textual_inversion.py`` training
loop, for ``bench/train_speed.py`` to measure ours against. What it keeps from the reference:

- placeholder tokens added to (a copy of) the tokenizer, the text encoder's table resized and
  the new rows initialised from the initializer token;
- AdamW over the WHOLE token-embedding matrix (``get_input_embeddings().parameters()``), betas
  (0.9, 0.999), weight decay 1e-2, eps 1e-8, and after every step the untouched rows restored
  from a saved copy of the original table;
- text encoder in train mode and fp32; UNet and VAE cast to the mixed-precision dtype;
  autocast on GPU (what accelerate's ``mixed_precision="bf16"`` does);
- a dataset that decodes the image, crops, resizes (bicubic) and flips (p=0.5) on every item and
  picks a random imagenet template; a shuffling DataLoader;
- the VAE encodes the batch every step (``latent_dist.sample()``), DDPM noise, uniform
  timesteps, epsilon or v-prediction target, fp32 MSE;
- ``loss.detach().item()`` logged every step (the reference's progress bar).

Gradient accumulation, LR scheduling (constant), validation and saving are left out: they are
the same for both loops or off by default.
"""

from __future__ import annotations

import copy
import io
import random
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from client.core.training import templates_for


class _Dataset(torch.utils.data.Dataset):
    def __init__(
        self, images: list[bytes], tokenizer: Any, placeholder: str, size: int, concept: str
    ):
        self.images, self.tokenizer, self.placeholder, self.size = (
            images,
            tokenizer,
            placeholder,
            size,
        )
        self.templates = templates_for(concept)

    def __len__(self) -> int:
        return len(self.images) * 100  # the reference's `repeats`

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image = Image.open(io.BytesIO(self.images[i % len(self.images)])).convert("RGB")
        text = random.choice(self.templates).format(self.placeholder)
        ids = self.tokenizer(
            text,
            padding="max_length",
            truncation=True,
            max_length=self.tokenizer.model_max_length,
            return_tensors="pt",
        ).input_ids[0]
        img = np.array(image).astype(np.uint8)
        crop = min(img.shape[0], img.shape[1])  # the reference's --center_crop
        h, w = img.shape[:2]
        img = img[(h - crop) // 2 : (h + crop) // 2, (w - crop) // 2 : (w + crop) // 2]
        image = Image.fromarray(img).resize((self.size, self.size), Image.Resampling.BICUBIC)
        if random.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        arr = (np.array(image).astype(np.uint8) / 127.5 - 1.0).astype(np.float32)
        return {"input_ids": ids, "pixel_values": torch.from_numpy(arr).permute(2, 0, 1)}


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
    mixed_precision: bool = False,
) -> dict[str, Any]:
    """Train like the reference; returns losses, final vectors, optimizer-state bytes, wall s."""
    from diffusers import DDPMScheduler

    random.seed(seed)
    torch.manual_seed(seed)
    device = pipe.unet.device
    tokenizer = copy.deepcopy(pipe.tokenizer)
    text_encoder = copy.deepcopy(pipe.text_encoder).to(device, torch.float32)
    unet, vae = pipe.unet, pipe.vae
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)

    placeholder_tokens = [trigger] + [f"{trigger}_{i}" for i in range(1, vectors)]
    if tokenizer.add_tokens(placeholder_tokens) != vectors:
        raise ValueError(f"the tokenizer already contains {trigger}")
    token_ids = tokenizer.encode(initializer, add_special_tokens=False)
    if len(token_ids) > 1:
        raise ValueError("The initializer token must be a single token.")
    placeholder_ids = tokenizer.convert_tokens_to_ids(placeholder_tokens)
    text_encoder.resize_token_embeddings(len(tokenizer))
    token_embeds = text_encoder.get_input_embeddings().weight.data
    with torch.no_grad():
        for token_id in placeholder_ids:
            token_embeds[token_id] = token_embeds[token_ids[0]].clone()

    vae.requires_grad_(False)
    unet.requires_grad_(False)
    text_model = getattr(text_encoder, "text_model", text_encoder)
    text_model.encoder.requires_grad_(False)
    text_model.final_layer_norm.requires_grad_(False)
    text_model.embeddings.position_embedding.requires_grad_(False)

    optimizer = torch.optim.AdamW(
        text_encoder.get_input_embeddings().parameters(),
        lr=learning_rate,
        betas=(0.9, 0.999),
        weight_decay=1e-2,
        eps=1e-8,
    )
    dataset = _Dataset(images, tokenizer, " ".join(placeholder_tokens), resolution, concept)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    weight_dtype = unet.dtype
    text_encoder.train()
    orig_embeds = text_encoder.get_input_embeddings().weight.data.clone()
    cuda = device.type == "cuda"
    losses: list[float] = []
    started = time.perf_counter()
    batches = iter(loader)
    for _ in range(steps):
        batch = next(batches)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            pixels = batch["pixel_values"].to(device, weight_dtype)
            latents = vae.encode(pixels).latent_dist.sample().detach()
            latents = latents * vae.config.scaling_factor
            noise = torch.randn_like(latents)
            bsz = latents.shape[0]
            timesteps = torch.randint(
                0, noise_scheduler.config.num_train_timesteps, (bsz,), device=device
            ).long()
            noisy = noise_scheduler.add_noise(latents, noise, timesteps)
            hidden = text_encoder(batch["input_ids"].to(device))[0].to(dtype=weight_dtype)
            pred = unet(noisy, timesteps, hidden).sample
        if noise_scheduler.config.prediction_type == "epsilon":
            target = noise
        else:
            target = noise_scheduler.get_velocity(latents, noise, timesteps)
        loss = F.mse_loss(pred.float(), target.float(), reduction="mean")
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        index_no_updates = torch.ones((len(tokenizer),), dtype=torch.bool)
        index_no_updates[min(placeholder_ids) : max(placeholder_ids) + 1] = False
        with torch.no_grad():
            text_encoder.get_input_embeddings().weight[index_no_updates] = orig_embeds[
                index_no_updates
            ]
        losses.append(loss.detach().item())
    wall = time.perf_counter() - started
    state_bytes = sum(
        t.numel() * t.element_size()
        for s in optimizer.state.values()
        for t in s.values()
        if torch.is_tensor(t)
    )
    weight = text_encoder.get_input_embeddings().weight.detach()
    return {
        "losses": losses,
        "vectors": weight[placeholder_ids].float().cpu().numpy(),
        "optimizer_state_bytes": state_bytes,
        "wall_s": wall,
    }
