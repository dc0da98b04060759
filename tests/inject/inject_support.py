"""Helpers for the injection tests: embeddings built in memory, prompt encoding, and a snapshot
of everything an injection may change (tokenizer vocabulary, token tables, encoder outputs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from client.core.embedding import Embedding
from client.core.families import FAMILIES

PROMPT = "a photo of a cat"
SLOTS = (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2"))


def make_embedding(
    family: str,
    count: int = 1,
    *,
    token: str | None = "<tok>",
    seed: int = 0,
    dtype: Any = np.float32,
) -> Embedding:
    rng = np.random.default_rng(seed)
    tensors = {
        name: rng.standard_normal((count, width)).astype(np.float32).astype(dtype)
        for name, width in FAMILIES[family].encoders.items()
    }
    return Embedding.from_tensors(tensors, token=token, source_format="test")


def slots(pipe: Any) -> list[tuple[Any, Any]]:
    found = []
    for tok_attr, enc_attr in SLOTS:
        tokenizer, encoder = getattr(pipe, tok_attr, None), getattr(pipe, enc_attr, None)
        if tokenizer is not None and encoder is not None:
            found.append((tokenizer, encoder))
    return found


def encode(tokenizer: Any, encoder: Any, prompt: str) -> torch.Tensor:
    """The text encoder's last hidden state for ``prompt`` (padded to 77 tokens)."""
    ids = tokenizer(prompt, padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        return encoder(ids)[0]


def row(tokenizer: Any, encoder: Any, token: str) -> torch.Tensor:
    token_id = tokenizer.convert_tokens_to_ids(token)
    return encoder.get_input_embeddings().weight[token_id].detach().clone()


@dataclass
class Snapshot:
    lengths: list[int]
    vocabs: list[dict[str, int]]
    weights: list[torch.Tensor]
    outputs: list[torch.Tensor]


def snapshot(pipe: Any, prompt: str = PROMPT) -> Snapshot:
    pairs = slots(pipe)
    return Snapshot(
        lengths=[len(t) for t, _ in pairs],
        vocabs=[dict(t.get_vocab()) for t, _ in pairs],
        weights=[e.get_input_embeddings().weight.detach().clone() for _, e in pairs],
        outputs=[encode(t, e, prompt) for t, e in pairs],
    )


def assert_same(pipe: Any, before: Snapshot, prompt: str = PROMPT) -> None:
    """Tokenizer vocabulary, token table and text-encoder output exactly as before."""
    after = snapshot(pipe, prompt)
    assert after.lengths == before.lengths
    assert after.vocabs == before.vocabs
    for now, then in zip(after.weights, before.weights, strict=True):
        assert now.shape == then.shape
        assert torch.equal(now, then)
    for now, then in zip(after.outputs, before.outputs, strict=True):
        assert torch.equal(now, then)
