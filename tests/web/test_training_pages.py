"""Training in the browser (issue 10): the form submits a job through the API's service and
shows its refusals by name; the job page follows the worker's progress live (job.js polls), draws
the loss chart, can be cancelled, and is a 404 to anyone who may not see the job. Progress comes
from the worker protocol over HTTP, as a GPU worker would send it."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from client.core.canonical import canonical_bytes
from client.core.embedding import Embedding as Vectors
from tests.web.conftest import Site
from tests.web.test_pages import _sign_in


def _png(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, "PNG")
    return {"name": f"cat-{seed}.png", "mimeType": "image/png", "buffer": buf.getvalue()}


def _fill_form(page: Any, name: str, files: list[dict[str, Any]]) -> None:
    page.goto("/train")
    page.get_by_label("Embedding name").fill(name)
    page.get_by_label("Trigger word").fill("<my-cat>")
    page.get_by_label("Starts from the word(s)").fill("cat")
    page.get_by_label("Steps at most (optional)").fill("20")
    page.get_by_label("Images (PNG, JPEG or WebP)").set_input_files(files)
    page.get_by_role("button", name="Start training").click()


def _worker(site: Site) -> tuple[httpx.Client, str]:
    client = httpx.Client(
        base_url=site.url, headers={"Authorization": f"Bearer {site.tokens['worker']}"}
    )
    r = client.post("/api/v1/workers/register", json={"name": "gpu-1", "families": ["sd1"]})
    assert r.status_code == 201, r.text
    return client, r.json()["id"]


def test_the_form_refuses_a_bad_image_by_name_and_keeps_what_was_typed(
    page: Any, site: Site
) -> None:
    _sign_in(page, "alice", "/train")
    fake = {"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image at all"}
    _fill_form(page, "refused-cat", [_png(1), fake, _png(2)])
    alert = page.get_by_role("alert").inner_text()
    assert "image 2 ('notes.png') is not a PNG, JPEG or WebP image" in alert
    assert page.get_by_label("Embedding name").input_value() == "refused-cat"
    _fill_form(page, "Bad Name!", [_png(1), _png(2), _png(3)])
    assert "embedding name" in page.get_by_role("alert").inner_text()
    _fill_form(page, "two-cats", [_png(1), _png(2)])
    assert "2 image(s) chosen; train from 3-50 pictures" in page.get_by_role("alert").inner_text()


def test_the_form_starts_a_job_and_its_page_shows_live_progress(
    page: Any, browser: Any, site: Site
) -> None:
    _sign_in(page, "alice", "/train")
    _fill_form(page, "my-cat", [_png(1), _png(2), _png(3)])
    page.wait_for_url(re.compile(r"/jobs/tj_[0-9a-f]+$"))
    job_id = page.url.rsplit("/", 1)[1]
    assert page.locator("#job-progress").inner_text() == "waiting for a worker"
    assert page.locator("#job-status").inner_text() == "queued"

    # A worker claims the job and reports progress; the open page follows by itself.
    worker, worker_id = _worker(site)
    claim = worker.post(f"/api/v1/workers/{worker_id}/claim")
    assert claim.status_code == 200 and claim.json()["job"]["id"] == job_id
    lease = claim.json()["lease"]
    losses = [0.9, 0.7, 0.55, 0.5, 0.42]
    beat = worker.post(
        f"/api/v1/training-jobs/{job_id}/heartbeat",
        json={"lease": lease, "step": 5, "losses": losses, "eta_s": 30.0},
    )
    assert beat.status_code == 200 and beat.json()["cancel"] is False
    progress = page.locator("#job-progress")
    progress.filter(has_text="step 5/20").wait_for(timeout=6000)
    assert page.locator("#job-status").inner_text() == "running"
    assert page.locator("#loss-figure").is_visible()
    points = page.locator("#loss-line").get_attribute("points").split()
    assert len(points) == len(losses)
    assert "0.9" in page.locator("#loss-caption").inner_text()
    assert page.locator("script:not([src])").count() == 0  # CSP: no inline script

    # Private: an outsider, signed in or not, gets the 404 page (page and its JSON).
    outsider = browser.new_context(base_url=site.url)
    stranger = outsider.new_page()
    assert stranger.goto(f"/jobs/{job_id}").status == 404
    assert stranger.goto(f"/jobs/{job_id}/progress").status == 404
    _sign_in(stranger, "oscar")
    assert stranger.goto(f"/jobs/{job_id}").status == 404
    outsider.close()

    # Cancel: the page says so, and the worker is told at its next heartbeat.
    page.get_by_role("button", name="Cancel training").click()
    page.wait_for_url(re.compile(rf"/jobs/{job_id}$"))
    assert page.locator("#job-status").inner_text() == "cancelled"
    assert page.get_by_role("button", name="Cancel training").count() == 0
    beat = worker.post(f"/api/v1/training-jobs/{job_id}/heartbeat", json={"lease": lease})
    assert beat.json()["cancel"] is True
    worker.close()


def test_the_training_form_needs_a_signed_in_user(page: Any, site: Site) -> None:
    page.goto("/train")
    assert page.url.endswith("/signin?next=/train")
    forged = httpx.post(f"{site.url}/train", files={"name": (None, "x")})
    assert forged.status_code == 403  # no CSRF token: refused before any rule runs


def test_the_job_screenshot_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "docs/screenshots/job.png" in readme


def _result(trigger: str) -> bytes:
    vectors = np.random.default_rng(3).standard_normal((1, 768)).astype(np.float32)
    return canonical_bytes(
        Vectors.from_tensors({"emb_params": vectors}, token=trigger, source_format="test")
    )


def _loaded_images(page: Any, selector: str) -> int:
    page.wait_for_load_state("load")
    return page.evaluate(
        f"[...document.querySelectorAll({selector!r})].filter(i => i.naturalWidth > 0).length"
    )


def test_a_finished_job_shows_previews_and_the_embedding_page_its_training(
    page: Any, site: Site
) -> None:
    images = [("images", (f"{i}.png", _png(i)["buffer"], "image/png")) for i in range(3)]
    params = {"target": "alice/tabby", "trigger": "<tabby>", "family": "sd1", "steps": 20}
    submitted = httpx.post(
        f"{site.url}/api/v1/training-jobs",
        files=[("params", (None, json.dumps(params), "application/json")), *images],
        headers={"Authorization": f"Bearer {site.tokens['alice']}"},
    )
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["id"]
    worker, worker_id = _worker(site)
    claim = worker.post(f"/api/v1/workers/{worker_id}/claim").json()
    assert claim["job"]["id"] == job_id
    prompts = ["a photo of a <tabby>", "a rendering of a <tabby>"]
    done = worker.post(
        f"/api/v1/training-jobs/{job_id}/complete",
        data={
            "lease": claim["lease"],
            "idempotency_key": "tabby-done-1",
            "metadata": json.dumps({"steps": 20, "preview_prompts": prompts}),
        },
        files=[
            ("file", ("tabby.safetensors", _result("<tabby>"))),
            *[("previews", (f"p{i}.png", _png(10 + i)["buffer"], "image/png")) for i in (0, 1)],
        ],
    )
    worker.close()
    assert done.status_code == 200, done.text

    _sign_in(page, "alice", f"/jobs/{job_id}")
    assert page.locator("#job-status").inner_text() == "succeeded"
    assert page.get_by_role("link", name="alice/tabby@1").is_visible()
    assert _loaded_images(page, ".gallery img") == 2

    page.goto("/embeddings/alice/tabby")
    assert _loaded_images(page, ".gallery img") == 2  # served by the preview route
    assert page.get_by_role("img", name=prompts[0]).is_visible()
    trained = page.locator("#trained-here").inner_text()
    assert trained == "Trained on this hub from 3 images in 20 steps."
