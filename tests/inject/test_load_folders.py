"""``load_embedding`` takes what ``hub pull --format diffusers`` writes for SDXL (issue 9.6): the
folder, or its two files in either order, as ONE embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from client.core.writers import write_embedding
from client.inject import load_embedding, load_embeddings, unload_embedding
from tests.inject.inject_support import assert_same, make_embedding, row, snapshot


def _pair(tmp_path: Path, count: int = 2) -> tuple[Any, Path, list[Path]]:
    embedding = make_embedding("sdxl", count, token="<pair>", seed=count)
    folder = tmp_path / "pair"
    files = write_embedding(embedding, folder, "diffusers")
    return embedding, folder, files


def _check_rows(sdxl: Any, embedding: Any) -> None:
    got_l = row(sdxl.tokenizer, sdxl.text_encoder, "<pair>").numpy()
    got_g = row(sdxl.tokenizer_2, sdxl.text_encoder_2, "<pair>").numpy()
    np.testing.assert_array_equal(got_l, embedding.vectors["clip_l"][0])
    np.testing.assert_array_equal(got_g, embedding.vectors["clip_g"][0])


@pytest.mark.parametrize("as_str", [False, True])
def test_the_sdxl_diffusers_folder_loads(sdxl: Any, tmp_path: Path, as_str: bool) -> None:
    before = snapshot(sdxl)
    embedding, folder, _ = _pair(tmp_path)
    assert load_embedding(sdxl, str(folder) if as_str else folder) == ["<pair>"]
    _check_rows(sdxl, embedding)
    unload_embedding(sdxl, "<pair>")
    assert_same(sdxl, before)


@pytest.mark.parametrize("order", ["as written", "reversed"])
def test_the_two_files_as_a_list_are_one_embedding(sdxl: Any, tmp_path: Path, order: str) -> None:
    before = snapshot(sdxl)
    embedding, _, files = _pair(tmp_path, count=1)  # single vectors: the 1-D files we write
    if order == "reversed":
        files = files[::-1]
    assert load_embedding(sdxl, files) == ["<pair>"]
    _check_rows(sdxl, embedding)
    unload_embedding(sdxl, "<pair>")
    assert load_embedding(sdxl, [str(f) for f in files], token="<mine>") == ["<mine>"]
    unload_embedding(sdxl, "<mine>")
    assert_same(sdxl, before)


def test_a_pair_is_one_item_among_others(sdxl: Any, tmp_path: Path) -> None:
    before = snapshot(sdxl)
    _, _, files = _pair(tmp_path)
    other = make_embedding("sdxl", 1, token="<other>", seed=9)
    assert load_embeddings(sdxl, [tuple(files), other]) == ["<pair>", "<other>"]
    unload_embedding(sdxl, ["<pair>", "<other>"])
    assert_same(sdxl, before)


def test_two_separate_sd1_files_in_a_list_are_still_two_embeddings(
    sd1: Any, tmp_path: Path
) -> None:
    first = write_embedding(
        make_embedding("sd1", token="<a>"), tmp_path / "brandalpha.safetensors", "a1111"
    )
    second = write_embedding(
        make_embedding("sd1", token="<b>"), tmp_path / "brandbeta.safetensors", "a1111"
    )
    assert load_embedding(sd1, [*first, *second]) == [
        "brandalpha",
        "brandbeta",
    ]  # A1111 files: the file stem
    unload_embedding(sd1, ["brandalpha", "brandbeta"])
