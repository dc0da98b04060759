"""Tiny diffusers pipelines for tests and demos: the real classes (UNet2DConditionModel,
AutoencoderKL, CLIPTextModel, CLIPTokenizer, a scheduler) with random weights, built locally
with no download.

Why the text encoders stay full width: an embedding's vectors live in the text encoder's input
space, so real community files (768 for SD 1.x, 1024 for SD 2.x, 768 + 1280 for SDXL) must load
into them. Everything else is as small as diffusers allows, so a pipeline builds in about a
second on a CPU and holds a few tens of MB.

The tokenizer is a byte-level BPE like CLIP's (the 256 byte characters with and without
``</w>``, merges for a few common words, ``<|startoftext|>`` and ``<|endoftext|>`` last, as in
the real vocabulary) written to a temporary folder and loaded from there. Its size is asserted:
with ``HF_HUB_OFFLINE`` set, a tokenizer whose files were not found silently comes out with a
2-token vocabulary instead of failing.

torch, transformers and diffusers are imported inside the functions (the client core never
needs them).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

FAMILY_NAMES = ("sd1", "sd2", "sdxl")

# Whole-word merges for prompts the tests write ("a photo of a cat").
WORDS = (
    "a", "an", "the", "of", "in", "on", "and", "with", "photo", "painting", "portrait", "style",
    "cat", "dog", "man", "woman", "red", "blue", "hands", "bad", "quality", "best",
)  # fmt: skip

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
MAX_LENGTH = 77  # CLIP's context, as in every Stable Diffusion text encoder

# Real widths of the text encoders' token embeddings, the one thing an embedding depends on.
TEXT_WIDTHS = {"sd1": (768,), "sd2": (1024,), "sdxl": (768, 1280)}


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable unicode character table."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def tiny_vocab(words: tuple[str, ...] = WORDS) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The vocabulary (token -> id) and merges of the tiny CLIP tokenizer: whole-word merges
    for ``words`` (the toy world passes its own colour and shape words)."""
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars]
    merges: list[tuple[str, str]] = []
    for word in words:
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        current = symbols[0]
        for symbol in symbols[1:]:
            pair = (current, symbol)
            current += symbol
            if pair not in merges:
                merges.append(pair)
            if current not in tokens:
                tokens.append(current)
    tokens += [BOS, EOS]
    return {t: i for i, t in enumerate(tokens)}, merges


def write_tokenizer_files(out_dir: Path, words: tuple[str, ...] = WORDS) -> int:
    """Write vocab.json + merges.txt into ``out_dir``; returns the vocabulary size."""
    vocab, merges = tiny_vocab(words)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (out_dir / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(vocab)


def tiny_tokenizer(words: tuple[str, ...] = WORDS) -> Any:
    """A CLIPTokenizer over the tiny vocabulary, loaded from files written to a temp dir."""
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory(prefix="lexicon-tokenizer-") as tmp:
        size = write_tokenizer_files(Path(tmp), words)
        # ``CLIPTokenizer(vocab_file=..., merges_file=...)`` ignores the files in transformers 5
        # (and gives a 2-token vocabulary); loading the folder reads them.
        tokenizer = CLIPTokenizer.from_pretrained(tmp, model_max_length=MAX_LENGTH)
    if len(tokenizer) != size:
        raise RuntimeError(
            f"the tiny CLIP tokenizer loaded {len(tokenizer)} tokens, expected {size}: "
            "its vocab.json/merges.txt were not read"
        )
    return tokenizer


def _text_encoder(tokenizer: Any, width: int, *, projection: bool, layers: int, act: str) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=width,
        intermediate_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        max_position_embeddings=MAX_LENGTH,
        projection_dim=32,
        hidden_act=act,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    cls = CLIPTextModelWithProjection if projection else CLIPTextModel
    return cls(config).eval()


def _unet(cross_attention_dim: int, *, sdxl: bool, linear: bool) -> Any:
    from diffusers import UNet2DConditionModel

    extra: dict[str, Any] = {}
    if sdxl:
        # pooled text_encoder_2 output (projection_dim) + 6 time ids x addition_time_embed_dim
        extra = {
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 8,
            "projection_class_embeddings_input_dim": 32 + 6 * 8,
        }
    return UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        cross_attention_dim=cross_attention_dim,
        use_linear_projection=linear,
        **extra,
    ).eval()


def _vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=32,
    ).eval()


def tiny_pipeline(family: str, *, seed: int = 0) -> Any:
    """A StableDiffusionPipeline (sd1, sd2) or StableDiffusionXLPipeline (sdxl) with random
    weights and real text-encoder widths. Same ``seed``, same weights."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    if family not in FAMILY_NAMES:
        raise ValueError(f"unknown family {family!r}; use one of {', '.join(FAMILY_NAMES)}")
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        scheduler = DDIMScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            clip_sample=False,
            steps_offset=1,
        )
        if family == "sdxl":
            tokenizer, tokenizer_2 = tiny_tokenizer(), tiny_tokenizer()
            text_encoder = _text_encoder(
                tokenizer, 768, projection=False, layers=2, act="quick_gelu"
            )
            text_encoder_2 = _text_encoder(tokenizer_2, 1280, projection=True, layers=2, act="gelu")
            pipe = StableDiffusionXLPipeline(
                vae=_vae(),
                text_encoder=text_encoder,
                text_encoder_2=text_encoder_2,
                tokenizer=tokenizer,
                tokenizer_2=tokenizer_2,
                unet=_unet(768 + 1280, sdxl=True, linear=True),
                scheduler=scheduler,
                add_watermarker=False,
            )
        else:
            width = TEXT_WIDTHS[family][0]
            tokenizer = tiny_tokenizer()
            act = "quick_gelu" if family == "sd1" else "gelu"
            pipe = StableDiffusionPipeline(
                vae=_vae(),
                text_encoder=_text_encoder(tokenizer, width, projection=False, layers=1, act=act),
                tokenizer=tokenizer,
                unet=_unet(width, sdxl=False, linear=family == "sd2"),
                scheduler=scheduler,
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
    finally:
        torch.random.set_rng_state(generator_state)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pipeline_class(family: str) -> Any:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    return StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline


def save_tiny_pipeline(family: str, out_dir: str | Path, *, seed: int = 0) -> Path:
    """Build a tiny pipeline and ``save_pretrained`` it, so that
    ``StableDiffusionPipeline.from_pretrained(out_dir)`` (or the SDXL class) loads it offline."""
    out = Path(out_dir)
    tiny_pipeline(family, seed=seed).save_pretrained(out)
    return out


def load_tiny_pipeline(out_dir: str | Path, family: str) -> Any:
    """Load a pipeline saved by :func:`save_tiny_pipeline`, from local files only."""
    cls = pipeline_class(family)
    kwargs: dict[str, Any] = {"local_files_only": True}
    if family != "sdxl":
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return cls.from_pretrained(str(out_dir), **kwargs)
