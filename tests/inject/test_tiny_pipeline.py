"""Tiny pipelines: real diffusers classes with random weights, built and reloaded offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

import torch  # noqa: E402

from client import testing  # noqa: E402
from tests.inject.inject_support import PROMPT, encode  # noqa: E402

pytestmark = pytest.mark.torch

VOCAB_SIZE = len(testing.tiny_vocab()[0])


def test_tokenizer_reads_its_files() -> None:
    tokenizer = testing.tiny_tokenizer()
    assert len(tokenizer) == VOCAB_SIZE > 2 * 256
    assert tokenizer.tokenize(PROMPT) == ["a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>"]
    ids = tokenizer(PROMPT).input_ids
    assert ids[0] == tokenizer.bos_token_id == VOCAB_SIZE - 2
    assert ids[-1] == tokenizer.eos_token_id == VOCAB_SIZE - 1


def test_tokenizer_that_loaded_empty_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Offline, a folder without vocab.json gives a 2-token tokenizer instead of an error.
    monkeypatch.setattr(testing, "write_tokenizer_files", lambda out_dir, *words: VOCAB_SIZE)
    with pytest.raises(RuntimeError, match="loaded 2 tokens"):
        testing.tiny_tokenizer()


@pytest.mark.parametrize(
    ("family", "cls", "widths"),
    [
        ("sd1", "StableDiffusionPipeline", [768]),
        ("sd2", "StableDiffusionPipeline", [1024]),
        ("sdxl", "StableDiffusionXLPipeline", [768, 1280]),
    ],
)
def test_real_classes_and_widths(
    pipes: dict[str, Any], family: str, cls: str, widths: list[int]
) -> None:
    pipe = pipes[family]
    assert type(pipe).__name__ == cls
    encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if family == "sdxl" else [])
    assert [e.get_input_embeddings().weight.shape[1] for e in encoders] == widths
    assert [e.get_input_embeddings().weight.shape[0] for e in encoders] == [VOCAB_SIZE] * len(
        widths
    )
    assert len(pipe.tokenizer) == VOCAB_SIZE
    assert pipe.unet.config.cross_attention_dim == sum(widths)
    if family == "sdxl":
        assert len(pipe.tokenizer_2) == VOCAB_SIZE
        assert pipe.tokenizer_2 is not pipe.tokenizer
        assert type(pipe.text_encoder_2).__name__ == "CLIPTextModelWithProjection"
        assert pipe.unet.config.addition_embed_type == "text_time"
        assert pipe.unet.config.projection_class_embeddings_input_dim == (
            pipe.text_encoder_2.config.projection_dim + 6 * pipe.unet.config.addition_time_embed_dim
        )
    # Small apart from the text encoders' widths.
    assert sum(p.numel() for p in pipe.unet.parameters()) < 5_000_000


def test_same_seed_same_weights() -> None:
    a, b, c = (testing.tiny_pipeline("sd1", seed=s) for s in (1, 1, 2))
    wa, wb, wc = (p.unet.conv_in.weight for p in (a, b, c))
    assert torch.equal(wa, wb)
    assert not torch.equal(wa, wc)


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_generates_an_image(pipes: dict[str, Any], family: str) -> None:
    out = pipes[family](
        PROMPT,
        num_inference_steps=1,
        height=32,
        width=32,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
    )
    assert out.images.shape == (1, 32, 32, 3)


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_save_and_load_back_offline(
    pipes: dict[str, Any], family: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = testing.save_tiny_pipeline(family, tmp_path / family)
    assert (out / "model_index.json").is_file()
    assert (out / "tokenizer" / "vocab.json").is_file() or (
        out / "tokenizer" / "tokenizer.json"
    ).is_file()
    loaded = testing.pipeline_class(family).from_pretrained(str(out))
    built = pipes[family]
    assert type(loaded) is type(built)
    pairs = [("tokenizer", "text_encoder")] + (
        [("tokenizer_2", "text_encoder_2")] if family == "sdxl" else []
    )
    for tok_attr, enc_attr in pairs:
        tokenizer, encoder = getattr(loaded, tok_attr), getattr(loaded, enc_attr)
        assert len(tokenizer) == VOCAB_SIZE
        assert torch.equal(
            encoder.get_input_embeddings().weight,
            getattr(built, enc_attr).get_input_embeddings().weight,
        )
        # Same weights; the reloaded model may pick another attention kernel (last-bit noise).
        torch.testing.assert_close(
            encode(tokenizer, encoder, PROMPT),
            encode(getattr(built, tok_attr), getattr(built, enc_attr), PROMPT),
        )
    for name, value in built.unet.state_dict().items():
        assert torch.equal(loaded.unet.state_dict()[name], value), name


def test_dev_cli_writes_a_loadable_pipeline(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from client.cli import dev_cmds  # noqa: F401  (registers `hub dev`)
    from client.cli.app import app

    out = tmp_path / "tiny"
    result = CliRunner().invoke(app, ["dev", "tiny-pipeline", str(out), "--family", "sd2"])
    assert result.exit_code == 0, result.output
    assert "StableDiffusionPipeline" in result.output
    loaded = testing.pipeline_class("sd2").from_pretrained(str(out))
    assert loaded.text_encoder.get_input_embeddings().weight.shape == (VOCAB_SIZE, 1024)
    again = CliRunner().invoke(app, ["dev", "tiny-pipeline", str(out)])
    assert again.exit_code == 2
    assert "not empty" in again.output
