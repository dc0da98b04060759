"""The whole path with real processes: ``hub train`` submits to a registry served over loopback,
a ``lexicon-trainer`` subprocess (tiny SD1 pipeline on the CPU) claims, trains, publishes; the
result is pulled and injected. A worker killed with SIGKILL leaves its job to the next worker,
which resumes from the checkpoint and publishes exactly one version; SIGTERM checkpoints and
releases; cancel stops a running worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from client.cli.main import app as hub_app
from tests.registry.helpers import auth
from tests.training.conftest import LiveRegistry, job_params, png

pytestmark = pytest.mark.torch
pytest.importorskip("diffusers")

TRAINER = str(Path(sys.executable).with_name("lexicon-trainer"))


def start_worker(
    reg: LiveRegistry,
    token: str,
    model: Path,
    log: Path,
    *extra: str,
    preview_steps: int | None = 2,  # None: the model folder's (a real model's previews)
) -> subprocess.Popen:
    cmd = [
        TRAINER,
        "--registry", reg.url,
        "--token", token,
        "--base-model", str(model),
        "--device", "cpu",
        "--poll", "0.2",
        "--checkpoint-every", "10",
        *(["--preview-steps", str(preview_steps)] if preview_steps else []),
        *extra,
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)


def finish(proc: subprocess.Popen, log: Path, timeout: float = 120) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"worker did not exit; its log:\n{log.read_text()[-4000:]}")


def hub_env(reg: LiveRegistry, token: str, tmp: Path) -> dict[str, str]:
    return {"LEXICON_URL": reg.url, "LEXICON_TOKEN": token, "LEXICON_CACHE": str(tmp / "cache")}


def submit(reg: LiveRegistry, token: str, **kw: Any) -> dict[str, Any]:
    files = [("params", (None, json.dumps(job_params(**kw)), "application/json"))]
    files += [("images", (f"{i}.png", png(40, 48, seed=i), "image/png")) for i in range(3)]
    r = httpx.post(f"{reg.url}/api/v1/training-jobs", files=files, headers=auth(token))
    assert r.status_code == 201, r.text
    return r.json()


def versions(reg: LiveRegistry, token: str, target: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{reg.url}/api/v1/embeddings/{target}/versions", headers=auth(token))
    return r.json()["items"] if r.status_code == 200 else []


def test_hub_train_is_claimed_trained_published_pulled_and_injected(
    live_registry: LiveRegistry, sd1_model_dir: Path, tmp_path: Path
) -> None:
    reg = live_registry
    alice, wtoken = reg.user("alice"), reg.worker_token("gpu-1")
    log = tmp_path / "worker.log"
    worker = start_worker(reg, wtoken, sd1_model_dir, log, "--once", "--name", "gpu-1")
    images = []
    for i in range(3):
        images.append(tmp_path / f"img{i}.png")
        images[-1].write_bytes(png(40, 48, seed=i))
    args = ["train", *map(str, images), "--name", "alice/toy", "--trigger", "<toy>"]
    args += ["--init", "cat", "--vectors", "2", "--family", "sd1", "--steps", "30"]
    args += ["--resolution", "32", "--lr", "0.05", "--wait", "--poll", "0.2"]
    result = CliRunner().invoke(hub_app, args, env=hub_env(reg, alice, tmp_path))
    assert result.exit_code == 0, result.output + log.read_text()[-3000:]
    assert "published alice/toy@1" in result.output
    assert finish(worker, log) == 0

    job_id = result.output.split("submitted ")[1].split()[0]
    shown = CliRunner().invoke(
        hub_app, ["job", job_id, "--json"], env=hub_env(reg, alice, tmp_path)
    )
    job = json.loads(shown.output)
    assert (job["status"], job["step"], job["attempts"]) == ("succeeded", 30, 1)
    assert job["worker"]["name"] == "gpu-1" and len(job["losses"]) == 30
    listed = CliRunner().invoke(hub_app, ["jobs"], env=hub_env(reg, alice, tmp_path))
    assert job_id in listed.output and "succeeded" in listed.output

    # Exactly one version, with its training metadata and previews.
    (version,) = versions(reg, alice, "alice/toy")
    training = version["training"]
    assert training["steps"] == 30 and training["device"] == "cpu"
    assert training["dataset"] == [i["digest"] for i in job["images"]]
    assert len(training["previews"]) == 2
    preview = httpx.get(
        f"{reg.url}/api/v1/embeddings/alice/toy/versions/1/previews/"
        f"{training['previews'][0]['digest']}",
        headers=auth(alice),
    )
    assert preview.status_code == 200 and preview.content.startswith(b"\x89PNG")

    # Pull and inject into a pipeline of the same family.
    from client.hub import Hub
    from client.inject import load_embedding
    from client.testing import tiny_pipeline

    with Hub(reg.url, alice, tmp_path / "cache") as hub:
        embedding = hub.load("alice/toy@1")
    pipe = tiny_pipeline("sd1")
    assert load_embedding(pipe, embedding) == ["<toy>"]
    ids = pipe.tokenizer.convert_tokens_to_ids(["<toy>", "<toy>_1"])
    rows = pipe.text_encoder.get_input_embeddings().weight[ids].detach().numpy()
    np.testing.assert_allclose(rows, embedding.vectors["emb_params"], rtol=1e-6)


def test_a_killed_worker_is_resumed_by_the_next_and_one_version_is_published(
    live_registry: LiveRegistry, sd1_model_dir: Path, tmp_path: Path
) -> None:
    """Three workers race for one job (started together to share their start-up time): the
    holder is SIGKILLed after its first checkpoint; the next holder resumes once the lease runs
    out and is sent SIGTERM (checkpoint + release); the last one resumes again and publishes."""
    reg = live_registry
    alice = reg.user("alice")
    job = submit(reg, alice, steps=60)
    names = ["w-a", "w-b", "w-c"]
    logs = {n: tmp_path / f"{n}.log" for n in names}
    workers = {
        n: start_worker(reg, reg.worker_token(n), sd1_model_dir, logs[n], "--name", n)
        for n in names
    }

    def holder(j: dict[str, Any]) -> str:
        return str(j["worker"]["name"])

    def tails() -> str:
        return "\n".join(f"== {n}\n{p.read_text()[-2000:]}" for n, p in logs.items())

    # The first holder: SIGKILL once it has uploaded a checkpoint; its lease then runs out.
    seen = reg.wait_job(alice, job["id"], lambda j: bool(j["checkpoint_step"]), timeout=120)
    assert seen["checkpoint_step"] and seen["worker"], tails()
    killed = holder(seen)
    workers[killed].send_signal(signal.SIGKILL)
    workers[killed].wait(timeout=10)
    killed_at = reg.job(alice, job["id"])["checkpoint_step"]

    # The second holder resumes past that checkpoint; SIGTERM makes it checkpoint and release.
    running = reg.wait_job(
        alice,
        job["id"],
        lambda j: j["attempts"] == 2 and (j["checkpoint_step"] or 0) > killed_at,
        timeout=60,
    )
    assert running["status"] == "running" and holder(running) != killed, tails()
    second = holder(running)
    workers[second].send_signal(signal.SIGTERM)
    assert finish(workers[second], logs[second], timeout=60) == 0
    assert "released at step" in logs[second].read_text()

    # The third resumes from the released checkpoint and publishes exactly one version.
    done = reg.wait_job(alice, job["id"], lambda j: j["status"] == "succeeded", timeout=90)
    assert done["status"] == "succeeded", tails()
    assert done["attempts"] == 2  # the release did not use up an attempt
    (last,) = set(names) - {killed, second}
    assert holder(done) == last if done["worker"] else True
    workers[last].send_signal(signal.SIGTERM)
    assert finish(workers[last], logs[last], timeout=30) == 0
    (version,) = versions(reg, alice, "alice/toy")
    resumed = version["training"]["resumed_from_step"]
    assert resumed is not None and resumed > killed_at
    assert version["training"]["steps"] == 60


def test_cancel_stops_a_running_worker(
    live_registry: LiveRegistry, sd1_model_dir: Path, tmp_path: Path
) -> None:
    reg = live_registry
    alice = reg.user("alice")
    job = submit(reg, alice, steps=20_000)
    log = tmp_path / "worker.log"
    worker = start_worker(reg, reg.worker_token("w"), sd1_model_dir, log, "--once")
    running = reg.wait_job(alice, job["id"], lambda j: j["step"] > 0, timeout=90)
    assert running["status"] == "running", log.read_text()[-3000:]
    out = CliRunner().invoke(hub_app, ["cancel", job["id"]], env=hub_env(reg, alice, tmp_path))
    assert out.exit_code == 0 and "cancelled" in out.output, out.output
    started = time.monotonic()
    assert finish(worker, log, timeout=60) == 0
    assert time.monotonic() - started < 30
    final = reg.job(alice, job["id"])
    assert final["status"] == "cancelled" and final["step"] < 20_000
    assert versions(reg, alice, "alice/toy") == []
