"""Injecting embeddings into tiny SD1, SD2 and SDXL pipelines, and taking them out exactly.

Every test leaves the module's pipelines as it found them (and checks so where it unloads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

import ml_dtypes  # noqa: E402
import torch  # noqa: E402

from client.core.errors import BadName, Conflict, IncompatibleEmbedding, NotFound  # noqa: E402
from client.inject import (  # noqa: E402
    expand_prompt,
    load_embedding,
    load_embeddings,
    unload_embedding,
)
from tests.inject.inject_support import (  # noqa: E402
    PROMPT,
    assert_same,
    encode,
    make_embedding,
    row,
    slots,
    snapshot,
)

pytestmark = pytest.mark.torch

KEYS = {"sd1": ["emb_params"], "sd2": ["emb_params"], "sdxl": ["clip_l", "clip_g"]}


def _encode_prompt(pipe: Any, prompt: str) -> torch.Tensor:
    """What the pipeline itself feeds the UNet (diffusers expands multi-vector triggers)."""
    return pipe.encode_prompt(
        prompt, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=False
    )[0]


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
@pytest.mark.parametrize("count", [1, 3])
def test_load_changes_every_encoder_and_unload_restores_exactly(
    pipes: dict[str, Any], family: str, count: int
) -> None:
    pipe = pipes[family]
    before = snapshot(pipe)
    pipeline_before = _encode_prompt(pipe, f"{PROMPT} <tok>")
    embedding = make_embedding(family, count, token="<tok>")

    assert load_embedding(pipe, embedding) == ["<tok>"]

    names = ["<tok>"] + [f"<tok>_{i}" for i in range(1, count)]
    assert expand_prompt(pipe, "<tok>") == " ".join(names)
    for (tokenizer, encoder), key, length in zip(
        slots(pipe), KEYS[family], before.lengths, strict=True
    ):
        assert len(tokenizer) == length + count
        assert tokenizer.convert_tokens_to_ids(names) == list(range(length, length + count))
        for i, name in enumerate(names):  # the new rows are the embedding's vectors
            assert torch.equal(
                row(tokenizer, encoder, name), torch.from_numpy(embedding.vectors[key][i])
            )
        # a prompt holding the tokens encodes differently; the old rows did not move
        assert not torch.equal(
            encode(tokenizer, encoder, f"{PROMPT} " + " ".join(names)),
            encode(tokenizer, encoder, PROMPT),
        )
        assert torch.equal(
            encoder.get_input_embeddings().weight[:length],
            before.weights[0 if key != "clip_g" else 1],
        )
    # The pipeline expands the bare trigger itself, exactly as expand_prompt does ("<tok>" means
    # all its vectors); its expansion is not idempotent, so pipelines get the bare trigger.
    for tokenizer, _ in slots(pipe):
        prompt = f"{PROMPT} <tok>"
        assert pipe.maybe_convert_prompt(prompt, tokenizer) == expand_prompt(pipe, prompt)
    assert not torch.equal(_encode_prompt(pipe, f"{PROMPT} <tok>"), pipeline_before)

    unload_embedding(pipe, "<tok>")
    assert_same(pipe, before)
    assert torch.equal(_encode_prompt(pipe, f"{PROMPT} <tok>"), pipeline_before)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_half_precision_vectors_are_cast_to_the_encoder_dtype(sd1: Any, dtype: Any) -> None:
    before = snapshot(sd1)
    embedding = make_embedding("sd1", 2, token="<half>", dtype=dtype)
    load_embedding(sd1, embedding)
    try:
        got = row(sd1.tokenizer, sd1.text_encoder, "<half>_1")
        assert got.dtype == torch.float32
        expected = embedding.vectors["emb_params"][1].astype(np.float32)
        assert torch.equal(got, torch.from_numpy(expected))
    finally:
        unload_embedding(sd1, ["<half>"])
    assert_same(sd1, before)


@pytest.mark.parametrize(
    ("emb_family", "pipe_family", "emb_side", "pipe_side"),
    [
        ("sd1", "sd2", "sd1 (768)", "text encoder is 1024 wide (sd2)"),
        ("sd2", "sd1", "sd2 (1024)", "text encoder is 768 wide (sd1)"),
        ("sdxl", "sd1", "sdxl (768 + 1280)", "text encoder is 768 wide (sd1)"),
        ("sd1", "sdxl", "sd1 (768)", "text encoders are 768 + 1280 wide (sdxl)"),
        ("sd2", "sdxl", "sd2 (1024)", "text encoders are 768 + 1280 wide (sdxl)"),
    ],
)
def test_incompatible_family_refused_before_any_change(
    pipes: dict[str, Any], emb_family: str, pipe_family: str, emb_side: str, pipe_side: str
) -> None:
    pipe = pipes[pipe_family]
    before = snapshot(pipe)
    with pytest.raises(IncompatibleEmbedding) as err:
        load_embedding(pipe, make_embedding(emb_family, 2, token="<acme>"))
    assert emb_side in str(err.value)
    assert pipe_side in str(err.value)
    assert_same(pipe, before)


def test_a_list_is_checked_whole_then_loaded_with_one_resize(
    sdxl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import client.inject

    before = snapshot(sdxl)
    calls: list[tuple[str, int]] = []
    names = {id(sdxl.text_encoder): "text_encoder", id(sdxl.text_encoder_2): "text_encoder_2"}
    real = client.inject.set_table

    def spy(encoder: Any, table: Any) -> None:
        calls.append((names[id(encoder)], int(table.shape[0])))
        real(encoder, table)

    monkeypatch.setattr(client.inject, "set_table", spy)
    items = [make_embedding("sdxl", n, token=f"<e{n}>", seed=n) for n in (1, 2, 4)]

    assert load_embeddings(sdxl, items) == ["<e1>", "<e2>", "<e4>"]

    assert calls == [
        ("text_encoder", before.lengths[0] + 7),
        ("text_encoder_2", before.lengths[1] + 7),
    ]
    assert torch.equal(
        row(sdxl.tokenizer_2, sdxl.text_encoder_2, "<e4>_3"),
        torch.from_numpy(items[2].vectors["clip_g"][3]),
    )
    unload_embedding(sdxl, ["<e2>", "<e1>", "<e4>"])
    assert_same(sdxl, before)
    calls.clear()
    assert load_embedding(sdxl, items[:2]) == ["<e1>", "<e2>"]  # a list: one resize as well
    assert [n for _, n in calls] == [before.lengths[0] + 3, before.lengths[1] + 3]
    unload_embedding(sdxl, ["<e1>", "<e2>"])
    assert_same(sdxl, before)


def test_a_bad_item_in_a_list_loads_none_of_it(sd1: Any) -> None:
    before = snapshot(sd1)
    good = make_embedding("sd1", 2, token="<good>")
    with pytest.raises(IncompatibleEmbedding):
        load_embeddings(sd1, [good, make_embedding("sd2", token="<bad>")])
    with pytest.raises(Conflict, match="both want token '<dup>'"):
        load_embeddings(sd1, [good.with_token("<dup>"), good.with_token("<dup>")])
    assert_same(sd1, before)


def test_failure_inside_the_fence_rolls_back_both_encoders(
    sdxl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import client.inject

    before = snapshot(sdxl)
    real = client.inject.set_table

    def broken(encoder: Any, table: Any) -> None:
        if encoder is sdxl.text_encoder_2:  # the second table fails to grow
            raise RuntimeError("out of memory")
        real(encoder, table)

    monkeypatch.setattr(client.inject, "set_table", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        load_embedding(sdxl, make_embedding("sdxl", 2, token="<oom>"))
    monkeypatch.undo()
    assert_same(sdxl, before)
    assert sdxl.tokenizer.decode(sdxl.tokenizer(PROMPT).input_ids[1:-1]) == PROMPT


@pytest.mark.parametrize("token", ["cat</w>", "<|endoftext|>", "<taken>", "<taken>_1", "<multi>_2"])
def test_token_collisions_refused(sd1: Any, token: str) -> None:
    load_embeddings(
        sd1, [make_embedding("sd1", 1, token="<taken>"), make_embedding("sd1", 2, token="<multi>")]
    )
    before = snapshot(sd1)
    try:
        with pytest.raises(Conflict) as err:
            load_embedding(sd1, make_embedding("sd1", 1, seed=9), token=token)
        assert "collides" in str(err.value)
        assert_same(sd1, before)
    finally:
        unload_embedding(sd1, ["<taken>", "<multi>"])


def test_single_vector_trigger_would_swallow_a_loaded_sibling(sd1: Any) -> None:
    sd1.load_textual_inversion(torch.randn(1, 768), token="<solo>_1")
    try:
        before = snapshot(sd1)
        with pytest.raises(Conflict, match="'<solo>_1'"):
            load_embedding(sd1, make_embedding("sd1", 1), token="<solo>")
        assert_same(sd1, before)
    finally:
        sd1.unload_textual_inversion("<solo>_1")
        _restore_clip_decode(sd1)


def test_tokens_are_case_sensitive_and_whole(sd1: Any) -> None:
    before = snapshot(sd1)
    load_embedding(sd1, make_embedding("sd1", 2, token="EasyNegative"))
    try:
        assert sd1.tokenizer.tokenize("EasyNegative, a cat")[0] == "EasyNegative"
        # diffusers' own expansion finds mixed-case tokens (they are added un-normalized)
        assert (
            sd1.maybe_convert_prompt("EasyNegative", sd1.tokenizer) == "EasyNegative EasyNegative_1"
        )
    finally:
        unload_embedding(sd1, "EasyNegative_1")  # any of its tokens names the whole embedding
    assert_same(sd1, before)


def test_expand_prompt_is_idempotent(sd1: Any) -> None:
    load_embeddings(
        sd1, [make_embedding("sd1", 3, token="<a>"), make_embedding("sd1", 2, token="<ab>")]
    )
    try:
        once = expand_prompt(sd1, "<ab> and <a>, <a>")
        assert once == "<ab> <ab>_1 and <a> <a>_1 <a>_2, <a> <a>_1 <a>_2"
        assert expand_prompt(sd1, once) == once
        assert expand_prompt(sd1, [PROMPT, "<a>"]) == [PROMPT, "<a> <a>_1 <a>_2"]
    finally:
        unload_embedding(sd1, ["<a>", "<ab>"])


def test_unload_refuses_unknown_tokens_without_change(sd1: Any) -> None:
    before = snapshot(sd1)
    for token in ("<never-loaded>", "cat</w>", "<|startoftext|>"):
        with pytest.raises(NotFound, match="not an embedding token"):
            unload_embedding(sd1, token)
    assert_same(sd1, before)


def test_works_alongside_diffusers_load_textual_inversion(sd1: Any) -> None:
    before = snapshot(sd1)
    first, second = torch.randn(2, 768), torch.randn(1, 768)
    sd1.load_textual_inversion(first, token="<diff>")
    load_embedding(sd1, make_embedding("sd1", 3, token="<ours>"))
    sd1.load_textual_inversion(second, token="<later>")
    with pytest.raises(Conflict):  # our check sees diffusers' tokens too
        load_embedding(sd1, make_embedding("sd1"), token="<diff>")
    expanded = _encode_prompt(sd1, "<diff> <later> a cat")

    unload_embedding(sd1, "<ours>")

    # diffusers' tokens keep their vectors (the later one moved down with its row)
    assert torch.equal(row(sd1.tokenizer, sd1.text_encoder, "<diff>_1"), first[1])
    assert torch.equal(row(sd1.tokenizer, sd1.text_encoder, "<later>"), second[0])
    assert len(sd1.tokenizer) == before.lengths[0] + 3
    assert torch.equal(_encode_prompt(sd1, "<diff> <later> a cat"), expanded)
    sd1.unload_textual_inversion(["<diff>", "<diff>_1", "<later>"])
    assert len(sd1.tokenizer) == before.lengths[0]
    assert torch.equal(sd1.text_encoder.get_input_embeddings().weight, before.weights[0])
    _restore_clip_decode(sd1)
    assert_same(sd1, before)


def test_token_comes_from_the_argument_or_the_embedding(sd1: Any) -> None:
    before = snapshot(sd1)
    nameless = make_embedding("sd1", token=None)
    with pytest.raises(BadName, match="token="):
        load_embedding(sd1, nameless)
    with pytest.raises(BadName, match="whitespace"):
        load_embedding(sd1, nameless, token="two words")
    assert load_embedding(sd1, nameless, token="<mine>") == ["<mine>"]
    unload_embedding(sd1, "<mine>")
    assert_same(sd1, before)


def test_missing_files_and_unreachable_refs_are_clear(sd1: Any, tmp_path: Path) -> None:
    before = snapshot(sd1)
    with pytest.raises(NotFound, match="no embedding file"):
        load_embedding(sd1, tmp_path / "missing.pt")
    with pytest.raises(NotFound, match="no embedding file"):
        load_embedding(sd1, str(tmp_path / "missing.safetensors"))
    with pytest.raises(NotFound, match="nor a registry reference"):
        load_embedding(sd1, "not a/ref/at all")
    assert_same(sd1, before)


def _restore_clip_decode(pipe: Any) -> None:
    """diffusers' unload_textual_inversion swaps in a new backend without CLIPTokenizer's decode
    fix-up; put it back so later tests in this module see an unchanged tokenizer."""
    pipe.tokenizer._wrap_decode_method_backend_tokenizer()


def _formats() -> Any:
    try:
        from client.core import formats
    except ImportError:
        pytest.skip("client.core.formats (the format readers) is not written yet")
    return formats


class _Hub:
    """A registry client as load_embedding sees it: ``pull(ref) -> local path``."""

    def __init__(self, path: Path) -> None:
        self.path, self.pulled = path, []

    def pull(self, ref: str) -> Path:
        self.pulled.append(ref)
        return self.path


def test_registry_reference_pulled_through_the_hub(sd1: Any, sd2: Any, tmp_path: Path) -> None:
    _formats()
    from client.core.canonical import canonical_bytes

    embedding = make_embedding("sd1", 2, token=None, seed=4)
    path = tmp_path / "brand.safetensors"
    path.write_bytes(canonical_bytes(embedding))
    hub = _Hub(path)
    before = snapshot(sd1)
    assert load_embedding(sd1, "acme/brand@2", hub=hub) == ["<brand>"]
    assert hub.pulled == ["acme/brand@2"]
    assert torch.equal(
        row(sd1.tokenizer, sd1.text_encoder, "<brand>_1"),
        torch.from_numpy(embedding.vectors["emb_params"][1]),
    )
    unload_embedding(sd1, "<brand>")
    assert_same(sd1, before)
    with pytest.raises(
        IncompatibleEmbedding, match=r"acme/brand@2 is sd1 \(768\).*1024 wide \(sd2\)"
    ):
        load_embedding(sd2, "acme/brand@2", hub=hub)


def test_real_community_file(sd1: Any, realworld_dir: Path) -> None:
    _formats()
    before = snapshot(sd1)
    tokens = load_embedding(sd1, realworld_dir / "a1111_bad-hands-5.pt")
    try:
        assert len(tokens) == 1
        assert len(sd1.tokenizer) == before.lengths[0] + 2  # two vectors
        assert expand_prompt(sd1, tokens[0]) == f"{tokens[0]} {tokens[0]}_1"
        assert not torch.equal(
            _encode_prompt(sd1, f"{PROMPT}, {tokens[0]}"), _encode_prompt(sd1, PROMPT)
        )
    finally:
        unload_embedding(sd1, tokens)
    assert_same(sd1, before)
