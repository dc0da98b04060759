"""The README's end-to-end example on the toy world: ``hub train`` five renders of a held-out
concept (a green star, never named in pre-training), a real ``lexicon-trainer`` subprocess
trains on the toy pipeline that ``hub dev toy-world`` wrote, publishes; the embedding is pulled,
loaded with ``load_embedding`` and the images it generates show a green star."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from client.cli.main import app as hub_app
from client.toy_world import data, judge
from client.toy_world.pipeline import generate, load_toy_pipeline
from tests.services import wait_until
from tests.training.conftest import LiveRegistry, live_registry  # noqa: F401
from tests.training.test_end_to_end import finish, hub_env, start_worker

pytestmark = pytest.mark.torch


def test_a_held_out_concept_trained_on_a_worker_is_drawn_after_pull(
    live_registry: LiveRegistry,  # noqa: F811
    tmp_path: Path,
) -> None:
    reg = live_registry
    model = tmp_path / "toy"
    made = CliRunner().invoke(hub_app, ["dev", "toy-world", str(model)])
    assert made.exit_code == 0, made.output
    alice, wtoken = reg.user("alice"), reg.worker_token("cpu-1")
    log = tmp_path / "worker.log"
    worker = start_worker(reg, wtoken, model, log, "--once", "--name", "cpu-1")
    # As the README says: once the worker has registered, a job needs no --family (it takes
    # the family the live workers serve).
    wait_until(lambda: "registered as" in log.read_text(), timeout=120, what="worker registered")
    images = []
    for i, image in enumerate(data.images(data.concept_specs(("green", "star"), 5, seed=100))):
        images.append(tmp_path / f"green-star-{i}.png")
        image.save(images[-1])
    args = ["train", *map(str, images), "--name", "alice/green-star", "--trigger", "<gs>"]
    args += ["--init", "shape", "--wait", "--poll", "0.5"]  # the trainer's defaults
    result = CliRunner().invoke(hub_app, args, env=hub_env(reg, alice, tmp_path))
    assert result.exit_code == 0, result.output + log.read_text()[-3000:]
    assert finish(worker, log, timeout=300) == 0
    # Early stopping ended the 2,000-step job (the bar ends on its real last step).
    last = result.output.rsplit("step ", 1)[1].split()[0]
    done, total = map(int, last.split("/"))
    assert done == total < 1000, result.output[-500:]

    pulled = tmp_path / "gs.safetensors"
    got = CliRunner().invoke(
        hub_app, ["pull", "alice/green-star", "-o", str(pulled)], env=hub_env(reg, alice, tmp_path)
    )
    assert got.exit_code == 0, got.output
    from client.inject import load_embedding

    pipe = load_toy_pipeline(model)
    before = judge.accuracy(generate(pipe, ["a photo of a shape"] * 16), ("green", "star"))
    [trigger] = load_embedding(pipe, str(pulled))
    after = judge.accuracy(generate(pipe, [f"a photo of a {trigger}"] * 16), ("green", "star"))
    assert after >= 0.8 and after >= before + 0.5, (before, after)
