"""The README's end-to-end example on the toy world: ``hub train`` five renders of a held-out
concept (a green star, never named in pre-training), a real ``lexicon-trainer`` subprocess
trains on the toy pipeline that ``hub dev toy-world`` wrote, publishes; the embedding is pulled,
loaded with ``load_embedding`` and the images it generates show a green star. The job page and
the embedding page of that job are the README's screenshots (issue 11 part 5: the demo data is
the toy world's, its previews and losses real)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from client.cli.main import app as hub_app
from client.toy_world import data, judge
from client.toy_world.pipeline import generate, load_toy_pipeline
from tests.services import wait_until
from tests.training.conftest import LiveRegistry, live_registry  # noqa: F401
from tests.training.test_end_to_end import finish, hub_env, start_worker
from tests.web.conftest import PASSWORD
from tests.web.test_pages import _sign_in
from tests.web.test_training_pages import _loaded_images

pytestmark = pytest.mark.torch
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"  # the README's


def test_a_held_out_concept_trained_on_a_worker_is_drawn_after_pull(
    live_registry: LiveRegistry,  # noqa: F811
    browser: Any,
    tmp_path: Path,
) -> None:
    reg = live_registry
    model = tmp_path / "toy"
    made = CliRunner().invoke(hub_app, ["dev", "toy-world", str(model)])
    assert made.exit_code == 0, made.output
    alice, wtoken = reg.user("alice", password=PASSWORD), reg.worker_token("cpu-1")
    log = tmp_path / "worker.log"
    worker = start_worker(reg, wtoken, model, log, "--once", "--name", "cpu-1", preview_steps=None)
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

    # The pages a user sees for this job (the README's screenshots): the finished job with its
    # previews (drawn by the worker from the toy pipeline), the embedding page with its training
    # and gallery, the home page and a search that finds it.
    job_id = re.search(r"tj_[0-9a-f]+", result.output).group(0)
    context = browser.new_context(base_url=reg.url)
    page = context.new_page()
    _sign_in(page, "alice", f"/jobs/{job_id}")
    page.wait_for_url(re.compile(rf"/jobs/{job_id}$"))
    assert page.locator("#job-status").inner_text() == "succeeded"
    assert _loaded_images(page, ".gallery img") >= 1
    # The worker's previews depict the concept: drawn as the toy model draws (its folder's
    # lexicon_preview.json: guidance 4, 20 steps; at 7.5 they were yellow and red stars).
    previews = []
    for src in page.locator(".gallery img").evaluate_all("els => els.map(e => e.src)"):
        got = page.request.get(src)
        assert got.ok, src
        previews.append(Image.open(io.BytesIO(got.body())).convert("RGB"))
    assert len(previews) == 2 and judge.accuracy(previews, ("green", "star")) >= 0.5
    page.screenshot(path=str(SHOTS / "job.png"), full_page=True)
    page.goto("/embeddings/alice/green-star")
    assert _loaded_images(page, ".gallery img") >= 1
    assert "Trained on this hub from 5 images" in page.locator("#trained-here").inner_text()
    assert page.locator("#code-a1111").inner_text() == "a photo of a gs"  # an object's prompt
    page.screenshot(path=str(SHOTS / "embedding.png"), full_page=True)
    page.goto("/")
    assert page.get_by_role("link", name="alice/green-star").first.is_visible()
    page.screenshot(path=str(SHOTS / "home.png"), full_page=True)
    page.goto("/search?q=star")
    assert page.locator(".card h3 a").all_inner_texts() == ["alice/green-star"]
    page.screenshot(path=str(SHOTS / "search.png"), full_page=True)
    context.close()
