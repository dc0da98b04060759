"""Pipelines and images for ``bench/train_speed.py``: random weights, real diffusers classes,
built from config dicts on the device (nothing is downloaded)."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any


def speed_images(n: int, size: int, seed: int) -> list[bytes]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        # smooth random images (a blurred noise field) rather than white noise
        small = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        image.save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def _full_tokenizer() -> Any:
    """The tiny BPE padded to CLIP's 49408 ids (BOS/EOS last), so the embedding table and the
    baseline's optimizer state have SD1.5's real size."""
    from transformers import CLIPTokenizer

    from client.testing import BOS, EOS, tiny_vocab

    vocab, merges = tiny_vocab()
    tokens = [t for t in vocab if t not in (BOS, EOS)]
    tokens += [f"<unused{i}>" for i in range(49406 - len(tokens))] + [BOS, EOS]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
        Path(tmp, "merges.txt").write_text(
            "\n".join(["#version: 0.2"] + [f"{a} {b}" for a, b in merges]) + "\n"
        )
        tok = CLIPTokenizer.from_pretrained(tmp, model_max_length=77)
    assert len(tok) == 49408, len(tok)
    return tok


def sd15_pipeline(device: str) -> Any:
    """Random-weight SD1.5-size UNet (860M), VAE (84M) and CLIP ViT-L text encoder (123M),
    built from config dicts on the device; nothing is downloaded."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDPMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    tok = _full_tokenizer()
    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel(
            sample_size=64,
            cross_attention_dim=768,
            attention_head_dim=8,
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        )
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            layers_per_block=2,
            sample_size=512,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=49408,
                hidden_size=768,
                intermediate_size=3072,
                num_hidden_layers=12,
                num_attention_heads=12,
                max_position_embeddings=77,
                hidden_act="quick_gelu",
                bos_token_id=tok.bos_token_id,
                eos_token_id=2,  # as SD1.5's config (pooling by argmax)
                pad_token_id=1,
            )
        )
    scheduler = DDPMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000
    )
    return StableDiffusionPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tok,
        unet=unet.eval(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def tiny_speed_pipeline(family: str, vocab: str) -> Any:
    """``client.testing.tiny_pipeline(family)``; with ``vocab="full"`` every tokenizer is padded
    to CLIP's 49,408 ids and every table resized, so the baseline's AdamW is real size. The new
    rows are plain random (``mean_resizing=False``): transformers' default samples 49k rows from
    the old rows' covariance, a minute of start-up per child on a loaded 2-core machine."""
    from client.testing import tiny_pipeline

    pipe = tiny_pipeline(family)
    if vocab == "full":
        pipe.tokenizer = _full_tokenizer()
        pipe.text_encoder.resize_token_embeddings(len(pipe.tokenizer), mean_resizing=False)
        if getattr(pipe, "text_encoder_2", None) is not None:
            pipe.tokenizer_2 = _full_tokenizer()
            pipe.text_encoder_2.resize_token_embeddings(len(pipe.tokenizer_2), mean_resizing=False)
    return pipe
