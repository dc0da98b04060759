"""``hub train`` with the model's defaults, end to end with a real worker subprocess: no
``--resolution`` trains at the tiny pipeline's own 32 px and the version records it; early
stopping ends the job before its cap and the job (and the ``--wait`` bar) end on the real step
count with no ETA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from client.cli.main import app as hub_app
from tests.training.conftest import LiveRegistry, png
from tests.training.test_end_to_end import finish, hub_env, start_worker, versions

pytestmark = pytest.mark.torch
pytest.importorskip("diffusers")


def test_a_job_without_resolution_trains_at_the_models_size_and_stops_early(
    live_registry: LiveRegistry, sd1_model_dir: Path, tmp_path: Path
) -> None:
    reg = live_registry
    alice = reg.user("alice")
    log = tmp_path / "worker.log"
    worker = start_worker(reg, reg.worker_token("w"), sd1_model_dir, log, "--once")
    images = []
    for i in range(3):
        images.append(tmp_path / f"img{i}.png")
        images[-1].write_bytes(png(40, 48, seed=i))
    # A learning rate too small to move the vectors: the fixed-batch loss is flat, so DVAR
    # (window 10 evaluations on a 300-step cap, one every 5 steps) fires at step 100, and the job
    # trains 3 time constants of the average on (30 steps at --ema-decay 0.9): it ends at 130.
    args = ["train", *map(str, images), "--name", "alice/flat", "--trigger", "<flat>"]
    args += ["--init", "cat", "--family", "sd1", "--steps", "300", "--lr", "1e-9"]
    args += ["--batch-size", "2", "--ema-decay", "0.9", "--wait", "--poll", "0.2"]
    env = hub_env(reg, alice, tmp_path)
    result = CliRunner().invoke(hub_app, args, env=env)
    assert result.exit_code == 0, result.output + log.read_text()[-3000:]
    assert "published alice/flat@1" in result.output
    assert "step 130/130" in result.output and "/300" not in result.output
    assert finish(worker, log) == 0

    job_id = result.output.split("submitted ")[1].split()[0]
    job = json.loads(CliRunner().invoke(hub_app, ["job", job_id, "--json"], env=env).output)
    assert (job["status"], job["step"], job["total_steps"], job["eta_s"]) == (
        "succeeded",
        130,
        130,
        None,
    )
    assert job["params"]["resolution"] is None and job["params"]["batch_size"] == 2
    assert [s for s, _ in job["losses"]] == list(range(1, 131))
    assert job["params"]["ema_decay"] == 0.9

    (version,) = versions(reg, alice, "alice/flat")
    training = version["training"]
    assert training["resolution"] == 32  # the tiny pipeline's own size, not 512
    assert training["batch_size"] == 2 and training["stopped_early"] is True
    assert training["steps"] == 130 and training["ema_decay"] == 0.9
    assert {p["width"] for p in training["previews"]} == {32}


def test_hub_train_can_turn_early_stopping_off(live_registry: LiveRegistry, tmp_path) -> None:
    reg = live_registry
    alice = reg.user("alice")
    image = tmp_path / "a.png"
    image.write_bytes(png(seed=1))
    args = ["train", str(image), "--name", "alice/x", "--trigger", "<x>", "--init", "cat"]
    args += ["--family", "sd1", "--no-early-stop", "--json"]
    result = CliRunner().invoke(hub_app, args, env=hub_env(reg, alice, tmp_path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["params"]["early_stop"] is False
