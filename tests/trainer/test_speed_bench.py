"""Smoke test of the training speed bench (``bench/train_speed.py``, ``bench/baseline_ti.py``):
a few steps, one repeat, tiny pipelines. Nothing here is timed; it checks that the bench runs
and that the baseline does what the reference does where that changes what is measured."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(autouse=True)
def bench_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from trainer_service.training import loop

    monkeypatch.syspath_prepend(str(BENCH))
    # the bench swaps its own rule/Trainer into the loop module; put the shipped ones back
    monkeypatch.setattr(loop, "DvarRule", loop.DvarRule)
    monkeypatch.setattr(loop, "Trainer", loop.Trainer)


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def test_baseline_squashes_a_wide_image_as_the_reference_does() -> None:
    """The reference resizes the whole image to a square (no center crop by default): a red
    band at the left edge of a 2:1 image must survive, squashed, not be cropped away."""
    from baseline_ti import _Dataset

    from client.testing import tiny_tokenizer

    wide = np.full((32, 64, 3), 255, dtype=np.uint8)
    wide[:, :12] = (255, 0, 0)
    ds = _Dataset(
        [_png(wide)], [tiny_tokenizer()], "cat", 32, "object", sdxl=False, center_crop=False
    )
    for _ in range(8):  # either flip: a red band at one edge
        pixels = ds[0]["pixel_values"].numpy()  # [3, 32, 32] in [-1, 1]
        edges = [pixels[:, :, :3].mean(axis=(1, 2)), pixels[:, :, -3:].mean(axis=(1, 2))]
        red = [e[0] > 0.9 and e[1] < -0.9 for e in edges]
        assert any(red), edges


def test_sdxl_baseline_trains_both_tables_and_restores_every_other_row(tiny_pipes) -> None:
    from baseline_ti import train_baseline

    pipe = tiny_pipes["sdxl"]
    rows = [pipe.text_encoder, pipe.text_encoder_2]
    before = [e.get_input_embeddings().weight.detach().clone() for e in rows]
    images = [
        _png(np.random.default_rng(i).integers(0, 255, (32, 32, 3), np.uint8)) for i in (0, 1)
    ]
    out = train_baseline(pipe, images, steps=2, resolution=32, learning_rate=0.1)
    assert len(out["losses"]) == 2
    # AdamW's two moments over both whole tables (the new row included), as the reference's
    widths = [e.config.hidden_size for e in rows]
    n = [b.shape[0] + 1 for b in before]
    assert out["optimizer_state_bytes"] >= 2 * 4 * sum(
        a * b for a, b in zip(n, widths, strict=True)
    )
    initial = before[0][pipe.tokenizer.convert_tokens_to_ids("cat")].numpy()
    assert not np.allclose(out["vectors"][0], initial)  # the placeholder row moved
    for e, b in zip(rows, before, strict=True):  # the pipeline's own encoders are untouched
        assert e.get_input_embeddings().weight.dtype == b.dtype
        assert np.array_equal(e.get_input_embeddings().weight.detach().numpy(), b.numpy())


def test_speed_child_times_each_repeat_and_pays_for_early_stop_checks() -> None:
    """Ours' child (the baseline's loop is run by the SDXL test above)."""
    import train_speed

    argv = ["--vocab", "tiny", "--steps", "3", "--repeats", "2", "--images", "2"]
    ours = train_speed.run_child(train_speed.parse_args([*argv, "--child", "ours"]))
    assert ours["loop"] == "ours" and len(ours["steps_per_s"]) == 2
    assert len(ours["would_stop_at"]) == 2  # DVAR judged (never stopping) in every timed run
    assert len(ours["losses"]) == 3  # every step ran: the bench never stops early
    # Averaging off changes what is published, not the steps: the same losses, step for step.
    flat = train_speed.run_child(
        train_speed.parse_args([*argv, "--child", "ours", "--variant", "no-average"])
    )
    assert flat["loop"] == "no-average" and flat["losses"] == ours["losses"]


def test_baseline_reports_the_vectors_a_run_stopped_there_would_have(tiny_pipes) -> None:
    """The toy-world bench judges the reference through this hook instead of retraining it to
    each step: what it reports at step k must be what a k-step run returns."""
    import torch
    from baseline_ti import train_baseline

    pipe = tiny_pipes["sd1"]
    images = [
        _png(np.random.default_rng(i).integers(0, 255, (32, 32, 3), np.uint8)) for i in (0, 1)
    ]
    seen: dict[int, np.ndarray] = {}

    def report(step: int, vectors: np.ndarray, _: float) -> None:
        torch.rand(8)  # judging draws from the global RNGs (as generating images may)
        random.random()
        seen[step] = vectors.copy()

    kw = {"resolution": 32, "learning_rate": 0.05, "seed": 3}
    judged = train_baseline(pipe, images, steps=4, report=report, report_every=2, **kw)
    assert sorted(seen) == [2, 4]
    for step in (2, 4):  # unjudged runs stopped at each reported step
        assert np.array_equal(seen[step], train_baseline(pipe, images, steps=step, **kw)["vectors"])
    assert np.array_equal(seen[4], judged["vectors"])
    assert not np.array_equal(seen[2], seen[4])
