"""A worker knows its family from the text encoders' config.json before the weights load, so
it registers within a second of starting (a ``hub train`` without ``--family`` needs a live
worker); the loaded weights must agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.testing import save_tiny_pipeline
from client.toy_world.pipeline import WEIGHTS_DIR
from trainer_service.cli import detect_family, family_from_configs, load_pipeline

pytestmark = pytest.mark.torch


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_the_configs_name_the_family_the_weights_have(tmp_path: Path, family: str) -> None:
    folder = save_tiny_pipeline(family, tmp_path / family)
    assert family_from_configs(str(folder)) == family
    assert detect_family(load_pipeline(str(folder))) == family


def test_the_toy_world_is_sd1_and_a_folder_without_configs_is_left_to_the_weights(
    tmp_path: Path,
) -> None:
    assert family_from_configs(str(WEIGHTS_DIR)) == "sd1"
    assert family_from_configs(str(tmp_path)) is None
