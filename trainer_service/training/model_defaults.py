"""Training defaults that depend on the base model, filled in by the worker that loads it.

A job that names no ``resolution`` trains at the model's own size. A fixed 512 px was wrong both
ways: the tiny test pipeline (native 32 px) spent minutes per step on attention over 256x256
latents, and SDXL (1024 px) trained at a size it was not made for."""

from __future__ import annotations

import dataclasses
from typing import Any

from client.core.training import TrainingParams


def native_resolution(pipe: Any) -> int:
    """``unet.config.sample_size x vae_scale_factor``: 512 SD1.5, 768 SD2-768, 1024 SDXL."""
    size = pipe.unet.config.sample_size
    if isinstance(size, list | tuple):
        size = min(size)
    factor = getattr(pipe, "vae_scale_factor", None)
    if factor is None:  # a pipeline class without the attribute: the VAE's downsampling
        factor = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    return int(size) * int(factor)


def fit_to_model(pipe: Any, params: TrainingParams) -> TrainingParams:
    """``params`` with every model-dependent default the job left open filled in."""
    if params.resolution is not None:
        return params
    return dataclasses.replace(params, resolution=native_resolution(pipe))
