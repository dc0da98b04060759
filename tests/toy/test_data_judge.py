"""The toy world's data and judge: renders are what their captions say, the judge reads them
back (its accuracy on renders is the floor every benchmark number stands on), and held-out
concepts are never named."""

from __future__ import annotations

import numpy as np
import pytest

from client.toy_world import data, judge


def test_judge_reads_back_renders_of_every_concept() -> None:
    specs = data.dataset(300, seed=7)
    verdicts = [judge.judge(data.render(s)) for s in specs]
    correct = sum(v.concept == s.concept for v, s in zip(verdicts, specs, strict=True))
    assert correct / len(specs) >= 0.98
    assert {s.concept for s in specs} == set(data.all_concepts())


@pytest.mark.parametrize("concept", list(data.HELD_OUT.values()))
def test_held_out_concepts_are_captioned_only_as_a_shape(concept: tuple[str, str]) -> None:
    specs = data.concept_specs(concept, 5, seed=3)
    assert {s.caption for s in specs} == {data.GENERIC_CAPTION}
    named = {s.caption for s in data.dataset(600)}
    assert "a green star" not in named and "a striped circle" not in named
    # the words themselves are seen, on other shapes and colours
    assert {"a green circle", "a yellow star", "a striped square", "a red circle"} <= named


def test_judge_tells_apart_what_a_wrong_model_would_confuse() -> None:
    base = data.Spec("circle", "red", radius=10)
    assert judge.judge(data.render(base)).concept == ("red", "circle")
    for shape in ("ring", "square", "star", "triangle"):
        assert judge.judge(data.render(data.Spec(shape, "red", radius=10))).shape == shape
    striped = data.with_colour(base, data.STRIPED)
    assert judge.judge(data.render(striped)).colour == data.STRIPED
    blank = np.full((32, 32, 3), 230, np.uint8)
    assert judge.judge(blank).concept == (judge.NONE, judge.NONE)
    noise = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    assert judge.judge(noise).concept not in data.all_concepts()


def test_renders_are_seeded() -> None:
    first = [data.render(s) for s in data.dataset(20, seed=5)]
    again = [data.render(s) for s in data.dataset(20, seed=5)]
    other = [data.render(s) for s in data.dataset(20, seed=6)]
    assert all((a == b).all() for a, b in zip(first, again, strict=True))
    assert not all((a == b).all() for a, b in zip(first, other, strict=True))


def test_red_and_yellow_blotches_are_not_stripes() -> None:
    """Striped means bands: rows that each hold one colour, alternating down the shape. A circle
    mottled red and yellow (what an undertrained model draws) holds both colours, but no bands;
    it is not a striped circle, whatever its colour shares."""
    base = data.Spec("circle", "red", radius=10)
    mask = data.shape_mask("circle", base.cx, base.cy, base.radius)[..., None]
    y, x = np.indices((data.SIZE, data.SIZE))
    patches = (y // 6 + x // 6) % 2 == 0  # 6 px blotches, red and yellow in every row
    red, yellow = (np.array(data.COLOURS[c], np.float32) for c in data.STRIPE_COLOURS)
    fill = np.where(patches[..., None], red, yellow)
    mottled = np.rint(mask * fill + (1 - mask) * 235).astype(np.uint8)
    verdict = judge.judge(mottled)
    assert verdict.shape == "circle" and verdict.colour in ("red", "yellow"), verdict
    # and a striped render, blurred as a small decoder blurs it, still reads as stripes
    from PIL import Image, ImageFilter

    striped = Image.fromarray(data.render(data.with_colour(base, data.STRIPED)))
    soft = striped.filter(ImageFilter.GaussianBlur(0.7))
    assert judge.judge(soft).concept == (data.STRIPED, "circle")
