"""How :mod:`client.inject` changes a tokenizer and its text encoder's token table: grow or
shrink the table in place, remove added tokens, swap a tokenizer's backend. Validation lives in
:mod:`client.inject`; these functions only mutate. torch and tokenizers load when called."""

from __future__ import annotations

import json
from typing import Any

from client.core.errors import LexiconError


def set_table(encoder: Any, table: Any) -> None:
    """Make ``table`` the encoder's token table, in place (the module and its Parameter stay,
    as in transformers' ``resize_token_embeddings``). That function also fills a whole new
    49,408-row table with random numbers twice before copying the old rows over it: 90% of the
    time of a load (issue 12); the rows here are all written already."""
    embeddings = encoder.get_input_embeddings()
    embeddings.weight.data = table
    embeddings.num_embeddings = int(table.shape[0])
    encoder.config.get_text_config().vocab_size = int(table.shape[0])


def drop_added_tokens(tokenizer: Any, keep: int) -> None:
    """Undo ``add_tokens``: keep only the tokens with ids below ``keep``. Serializing a CLIP
    tokenizer costs ~30 ms, so this is paid on the failure path only."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return
    data = json.loads(backend.to_str())
    data["added_tokens"] = [e for e in data.get("added_tokens", []) if e["id"] < keep]
    set_backend(tokenizer, json.dumps(data, ensure_ascii=False))


def set_backend(tokenizer: Any, serialized: str) -> None:
    from tokenizers import Tokenizer

    tokenizer._tokenizer = Tokenizer.from_str(serialized)
    # CLIPTokenizer wraps its backend's decode (strips "</w>"); a new backend needs it again.
    wrap = getattr(tokenizer, "_wrap_decode_method_backend_tokenizer", None)
    if wrap is not None:
        wrap()


def remove_tokens(tokenizer: Any, encoder: Any, remove: set[str], attr: str) -> None:
    """Drop ``remove`` from the tokenizer (later added tokens move down, as the tokenizers
    library renumbers them) and the matching rows from the token table."""
    import torch

    base = int(tokenizer.vocab_size)
    saved = tokenizer.backend_tokenizer.to_str()
    data = json.loads(saved)
    kept_rows: list[int] = list(range(base))
    entries = []
    for entry in sorted(data.get("added_tokens", []), key=lambda e: e["id"]):
        if entry["content"] in remove:
            continue
        if entry["id"] >= base:
            kept_rows.append(entry["id"])
            entry["id"] = len(kept_rows) - 1
        entries.append(entry)
    data["added_tokens"] = entries
    weight = encoder.get_input_embeddings().weight
    rows = weight.detach().index_select(0, torch.tensor(kept_rows, device=weight.device)).clone()
    set_backend(tokenizer, json.dumps(data, ensure_ascii=False))
    try:
        expected = {e["content"]: e["id"] for e in entries}
        got = {t: tokenizer.convert_tokens_to_ids(t) for t in expected}
        if got != expected or len(tokenizer) != len(kept_rows):
            raise LexiconError(f"{attr}'s tokenizer renumbered its tokens unexpectedly")
    except BaseException:
        set_backend(tokenizer, saved)
        raise
    set_table(encoder, rows)
