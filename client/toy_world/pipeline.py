"""The toy world's Stable-Diffusion-shaped pipeline: real diffusers/transformers classes
(AutoencoderKL, UNet2DConditionModel, CLIPTextModel + CLIPTokenizer, DDIM sampling), small
enough to train on two CPU cores (see :mod:`.build`).

Why the text encoder is 768 wide: an embedding's width is the text encoder's, and the hub's
families know 768 (SD 1.x), 1024 and 1280 only. So the toy world is an SD 1.x-family model:
768-wide token table, one transformer layer with a small MLP; what a trained embedding for it
holds is a real SD 1.x embedding file, pushed, pulled and loaded like any other.

Where the weights come from (:func:`load_toy_pipeline`): the folder given, else the weights
committed in ``client/toy_world/weights`` (built by ``hub dev toy-world --rebuild``).
torch/diffusers are imported inside the functions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from client.core.previews import PREVIEW_SETTINGS_FILE
from client.core.training import OBJECT_TEMPLATES, STYLE_TEMPLATES

from .data import COLOURS, LATENT_CELL, SHAPES, SIZE, STRIPED

WEIGHTS_DIR = Path(__file__).parent / "weights"
LATENT_SIZE = SIZE // LATENT_CELL  # two VAE downsamplings: 32 px images, 4 x 8 x 8 latents
TEXT_LENGTH = 24  # tokens per prompt (CLIP pads to 77; captions here are short)
TEXT_WIDTH = 768  # SD 1.x's; see the module docstring
# How the toy model draws (generate's defaults; written beside the weights for the worker's
# previews, client.core.previews.PREVIEW_SETTINGS_FILE): at SD's usual guidance 7.5 it overshoots
# and a green star comes out yellow.
GUIDANCE_SCALE = 4.0
SAMPLING_STEPS = 20

# Whole-word merges: the caption words and every word of the trainer's prompt templates, so
# "a photo of a red circle" is a handful of tokens, as with a real CLIP vocabulary.
_TEMPLATE_WORDS = sorted(
    {w for t in OBJECT_TEMPLATES + STYLE_TEMPLATES for w in re.findall(r"[a-z]+", t)}
)
WORDS: tuple[str, ...] = tuple(
    dict.fromkeys(["a", "shape", *COLOURS, STRIPED, *SHAPES, *_TEMPLATE_WORDS])
)


def tokenizer() -> Any:
    from client.testing import tiny_tokenizer

    tok = tiny_tokenizer(WORDS)
    tok.model_max_length = TEXT_LENGTH
    return tok


def scheduler() -> Any:
    """DDIM sampling over a standard DDPM linear schedule, predicting velocity (v), which a
    small, briefly trained denoiser gets right at few sampling steps more often than noise."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.0001,
        beta_end=0.02,
        beta_schedule="linear",
        prediction_type="v_prediction",
        clip_sample=False,
        set_alpha_to_one=True,
        timestep_spacing="trailing",
        rescale_betas_zero_snr=True,
        steps_offset=1,
    )


def new_pipeline(seed: int = 0) -> Any:
    """Untrained toy pipeline, same ``seed`` same weights."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    tok = tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tok),
            hidden_size=TEXT_WIDTH,
            intermediate_size=128,
            num_hidden_layers=1,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=32,
            hidden_act="quick_gelu",
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    )
    # Word rows orthogonal (at the usual norm): every caption word starts equally far from every
    # other; a plain random draw once left "blue" and "purple" so close that the small UNet
    # drew one for the other (docs/PERFORMANCE.md "Toy world").
    words = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        words.copy_(torch.nn.init.orthogonal_(torch.empty_like(words)) * words.norm(dim=1).mean())
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=SIZE,
    )
    unet = UNet2DConditionModel(
        sample_size=LATENT_SIZE,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=4,
        cross_attention_dim=TEXT_WIDTH,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tok,
        unet=unet,
        scheduler=scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_toy_pipeline(pipe: Any, out: str | Path, *, half: bool = True) -> Path:
    """``save_pretrained`` (safetensors); ``half`` stores fp16 (the committed weights are)."""
    import torch

    out = Path(out)
    if half:
        for module in (pipe.unet, pipe.vae, pipe.text_encoder):
            module.to(torch.float16)
    try:
        pipe.save_pretrained(out, safe_serialization=True)
        # A pipeline loaded from a folder records that folder in its configs; it is not part of
        # the model (and would leak a local path into the committed weights).
        for path in [out / "model_index.json", *out.glob("*/config.json")]:
            config = json.loads(path.read_text())
            if config.pop("_name_or_path", None) is not None:
                path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        sampling = {"guidance_scale": GUIDANCE_SCALE, "num_inference_steps": SAMPLING_STEPS}
        (out / PREVIEW_SETTINGS_FILE).write_text(json.dumps(sampling, indent=2) + "\n")
    finally:
        for module in (pipe.unet, pipe.vae, pipe.text_encoder):
            module.to(torch.float32)
    return out


def load_toy_pipeline(path: str | Path | None = None) -> Any:
    """The trained toy pipeline (fp32, CPU) from ``path`` or the committed weights."""
    import torch
    from diffusers import StableDiffusionPipeline

    folder = Path(path) if path is not None else WEIGHTS_DIR
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(
            f"no toy-world pipeline in {folder}; build one: hub dev toy-world OUT --rebuild"
        )
    pipe = StableDiffusionPipeline.from_pretrained(
        str(folder),
        torch_dtype=torch.float32,
        local_files_only=True,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(
    pipe: Any,
    prompts: list[str],
    *,
    seed: int = 0,
    steps: int = SAMPLING_STEPS,
    guidance_scale: float = GUIDANCE_SCALE,
    batch: int = 32,
) -> list[Any]:
    """One PIL image per prompt, seeded (image ``i`` from ``seed + i``, whatever the batching)."""
    import torch

    images: list[Any] = []
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]
        generators = [torch.Generator().manual_seed(seed + start + i) for i in range(len(chunk))]
        with torch.no_grad():
            out = pipe(
                chunk,
                num_inference_steps=steps,
                guidance_scale=guidance_scale,
                generator=generators,
                height=SIZE,
                width=SIZE,
            )
        images.extend(out.images)
    return images
