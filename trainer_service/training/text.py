"""The text side of training: new vectors spliced into each text encoder's token embedding.

The trigger stands for ``n`` placeholder ids ``V .. V+n-1`` (``V`` = the tokenizer's size), the
same ids ``tokenizer.add_tokens`` would give them when a user loads the embedding, so position
and pooling behave as at inference. A :class:`SplicedEmbedding` wraps the frozen table: rows
below ``V`` come from it, placeholder rows from an ``nn.Parameter [n, d]``. The tokenizer is
not changed and the table not resized; the wrapper is removed when training ends. Only the
parameter gets gradients, so the optimizer holds ``n x d`` state instead of ``49408 x d``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from client.core.errors import BadRequest


class SplicedEmbedding(nn.Module):
    """``ids < first_id`` -> the frozen ``base`` table; ``first_id + i`` -> ``new[i]``."""

    def __init__(self, base: nn.Embedding, new: torch.Tensor, first_id: int) -> None:
        super().__init__()
        self.base = base
        self.new = new
        self.first_id = first_id

    @property
    def weight(self) -> torch.Tensor:  # callers that peek at the table see the frozen one
        return self.base.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        is_new = ids >= self.first_id
        out = self.base(torch.where(is_new, torch.zeros_like(ids), ids))
        rows = (ids - self.first_id).clamp(0, self.new.shape[0] - 1)
        return torch.where(is_new.unsqueeze(-1), self.new.to(out.dtype)[rows], out)


@dataclass
class EncoderSlot:
    name: str  # canonical encoder name: emb_params | clip_l | clip_g
    tokenizer: Any
    text_encoder: Any
    first_id: int

    @property
    def table(self) -> torch.Tensor:
        return self.text_encoder.get_input_embeddings().weight


def encoder_slots(pipe: Any) -> list[EncoderSlot]:
    """One slot per text encoder, in canonical order (SDXL: clip_l then clip_g)."""
    pairs = [("emb_params", pipe.tokenizer, pipe.text_encoder)]
    if getattr(pipe, "text_encoder_2", None) is not None:
        pairs = [("clip_l", pipe.tokenizer, pipe.text_encoder)]
        pairs.append(("clip_g", pipe.tokenizer_2, pipe.text_encoder_2))
    slots = []
    for name, tok, enc in pairs:
        rows = enc.get_input_embeddings().weight.shape[0]
        if rows < len(tok):
            raise BadRequest(f"{name}: the tokenizer has {len(tok)} tokens but the table {rows}")
        slots.append(EncoderSlot(name, tok, enc, len(tok)))
    return slots


def initial_vectors(slot: EncoderSlot, words: tuple[str, ...], n: int) -> torch.Tensor:
    """Vector ``i`` = mean of the token vectors of ``words[i % len(words)]`` (fp32)."""
    table = slot.table.detach().float()
    means = []
    for word in words:
        ids = slot.tokenizer(word, add_special_tokens=False).input_ids
        ids = [i for i in ids if i < slot.first_id]
        if not ids:
            raise BadRequest(f"initializer word {word!r} has no tokens; use an ordinary word")
        means.append(table[ids].mean(0))
    return torch.stack([means[i % len(means)] for i in range(n)]).clone()


def prompt_ids(slot: EncoderSlot, prompt: str, trigger: str, n: int) -> list[int]:
    """Token ids (padded to the tokenizer's max length) with each trigger -> n placeholder ids."""
    tok = slot.tokenizer
    placeholders = list(range(slot.first_id, slot.first_id + n))
    ids: list[int] = []
    for i, part in enumerate(prompt.split(trigger)):
        if i:
            ids += placeholders
        if part.strip():
            ids += tok(part.strip(), add_special_tokens=False).input_ids
    length = tok.model_max_length
    ids = [tok.bos_token_id, *ids[: length - 2], tok.eos_token_id]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return ids + [pad] * (length - len(ids))


@contextmanager
def spliced(slots: list[EncoderSlot], params: list[torch.Tensor]) -> Iterator[None]:
    """Install the wrappers for the duration of the block; always restore the original tables."""
    originals = [s.text_encoder.get_input_embeddings() for s in slots]
    try:
        for slot, base, new in zip(slots, originals, params, strict=True):
            slot.text_encoder.set_input_embeddings(SplicedEmbedding(base, new, slot.first_id))
        yield
    finally:
        for slot, base in zip(slots, originals, strict=True):
            slot.text_encoder.set_input_embeddings(base)


def encode(slots: list[EncoderSlot], ids: list[torch.Tensor]) -> tuple[torch.Tensor, Any]:
    """Prompt embeddings as the pipelines compute them: SD1/2 the last hidden state; SDXL the
    penultimate hidden states of both encoders concatenated, pooled from text_encoder_2."""
    if len(slots) == 1:
        return slots[0].text_encoder(ids[0])[0], None
    hidden, pooled = [], None
    for slot, tok_ids in zip(slots, ids, strict=True):
        out = slot.text_encoder(tok_ids, output_hidden_states=True)
        pooled = out[0]
        hidden.append(out.hidden_states[-2])
    return torch.cat(hidden, dim=-1), pooled
