"""The toy world's pipeline: the committed weights load offline and draw what a caption names;
``hub dev toy-world`` writes them out; a rebuild is seeded (the same bytes twice)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from client.cli.main import app
from client.toy_world import data, judge
from client.toy_world.build import BuildConfig, build_toy_pipeline
from client.toy_world.pipeline import WEIGHTS_DIR, generate, load_toy_pipeline


@pytest.fixture(scope="module")
def toy_pipe():
    return load_toy_pipeline()


def test_committed_weights_draw_the_named_colour_and_shape(toy_pipe) -> None:
    images = generate(toy_pipe, ["a red circle"] * 4 + ["a blue square"] * 4, seed=3)
    verdicts = [judge.judge(im) for im in images]
    assert sum(v.colour == "red" for v in verdicts[:4]) >= 3, verdicts
    assert sum(v.colour == "blue" for v in verdicts[4:]) >= 3, verdicts
    shapes_right = sum(v.shape == "circle" for v in verdicts[:4])
    shapes_right += sum(v.shape == "square" for v in verdicts[4:])
    assert shapes_right >= 6, verdicts


def test_hub_dev_toy_world_writes_a_pipeline_that_loads_offline(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    result = CliRunner().invoke(app, ["dev", "toy-world", str(out)])
    assert result.exit_code == 0, result.output
    pipe = load_toy_pipeline(out)
    [image] = generate(pipe, ["a yellow triangle"], seed=0)
    assert image.size == (data.SIZE, data.SIZE)
    # the folder the weights were loaded from is not written into the copy's configs
    configs = [out / "model_index.json", *out.glob("*/config.json")]
    assert len(configs) >= 4 and not any("_name_or_path" in c.read_text() for c in configs)
    again = CliRunner().invoke(app, ["dev", "toy-world", str(out)])
    assert again.exit_code == 2 and "not empty" in again.output


def test_a_rebuild_is_seeded() -> None:
    cfg = BuildConfig(images=64, vae_steps=2, vae_batch=4, unet_steps=2, unet_batch=4)
    first = build_toy_pipeline(cfg, log=lambda m: None).unet.state_dict()
    second = build_toy_pipeline(cfg, log=lambda m: None).unet.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert (WEIGHTS_DIR / "model_index.json").is_file()


def test_hub_dev_toy_world_refuses_an_output_it_cannot_use_by_name(tmp_path: Path) -> None:
    """A file where the folder should go, or a name the file system refuses: a clear error
    naming the output and exit 2, not a traceback."""
    a_file = tmp_path / "taken"
    a_file.write_text("keep me")
    too_long = tmp_path / ("x" * 300)
    for out in (a_file, too_long):
        result = CliRunner().invoke(app, ["dev", "toy-world", str(out)])
        assert result.exit_code == 2, result.output
        assert "error:" in result.output and out.name[:40] in result.output, result.output
    assert a_file.read_text() == "keep me"
