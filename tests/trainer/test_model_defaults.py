"""Defaults that depend on the base model or the images: a job that names no resolution trains at
the model's own size (``unet.config.sample_size x vae_scale_factor``), never at a fixed 512 px;
one that names no batch size averages each step over up to 4 of its images."""

from __future__ import annotations

import pytest

from client.core.training import TrainingParams
from trainer_service.training import Trainer, native_resolution, train_embedding

pytestmark = pytest.mark.torch


def test_without_a_resolution_the_trainer_uses_the_models_own(tiny_pipes, images) -> None:
    pipe = tiny_pipes["sd1"]
    params = TrainingParams(trigger="<toy>", initializer="cat", steps=2, early_stop=False)
    assert params.resolution is None  # "the model's own"
    trainer = Trainer(pipe, images, params)
    assert trainer.params.resolution == 32 == native_resolution(pipe)
    # 32 px through the tiny VAE (scale factor 2): 16x16 latents, not 256x256.
    assert tuple(trainer.cache.mean.shape[-2:]) == (16, 16)
    result = train_embedding(pipe, images, params)
    assert result.params.resolution == 32 and result.steps == 2


def test_a_given_resolution_is_kept(tiny_pipes, images) -> None:
    pipe = tiny_pipes["sd1"]
    params = TrainingParams(trigger="<toy>", initializer="cat", steps=1, resolution=48)
    trainer = Trainer(pipe, images, params)
    assert trainer.params.resolution == 48
    assert tuple(trainer.cache.mean.shape[-2:]) == (24, 24)


@pytest.mark.parametrize(("given", "count", "expected"), [(None, 3, 3), (None, 9, 4), (2, 9, 2)])
def test_the_batch_follows_the_images_unless_given(tiny_pipes, images, given, count, expected):
    params = TrainingParams(trigger="<toy>", initializer="cat", steps=1, batch_size=given)
    trainer = Trainer(tiny_pipes["sd1"], (images * 3)[:count], params)
    assert trainer.params.batch_size == expected
    assert trainer.sample_batch().latents.shape[0] == expected


@pytest.mark.parametrize(
    ("sample_size", "factor", "expected"),
    [(64, 8, 512), (96, 8, 768), (128, 8, 1024), ((16, 16), 2, 32)],
)
def test_native_resolution_of_sd15_sd2_768_and_sdxl(sample_size, factor, expected) -> None:
    """The rule on the real models' config values (SD1.5, SD2-768, SDXL) without loading them."""

    class Config:
        pass

    class Unet:
        config = Config()

    class Pipe:
        unet = Unet()
        vae_scale_factor = factor

    Pipe.unet.config.sample_size = sample_size
    assert native_resolution(Pipe()) == expected
