"""Put textual-inversion embeddings into a diffusers pipeline, and take them out again exactly.

An embedding is a few rows for the text encoder's token table plus the tokens that select them.
:func:`load_embedding` / :func:`load_embeddings` check everything first (family against the
pipeline's encoder widths, token names against both tokenizers), then, in one fenced block, add
the tokens, resize each token table once and write the rows. A refusal leaves the pipeline as it
was; so does a failure inside the block (it is rolled back).

Tokens. An embedding of ``n`` vectors with trigger ``<t>`` adds the tokens ``<t>``, ``<t>_1`` …
``<t>_{n-1}`` (diffusers' own convention). The load functions return the *triggers*: write
``<t>`` in a prompt. Pipelines with diffusers' TextualInversionLoaderMixin (StableDiffusion*,
StableDiffusionXL*) expand a trigger into all its tokens in ``encode_prompt``; when you call the
tokenizer and text encoder yourself, pass the prompt through :func:`expand_prompt` first. Tokens
are matched case-sensitively (they are added un-normalized, so ``EasyNegative`` stays one token
and diffusers' expansion finds it).

SDXL: ``clip_l`` goes to ``text_encoder`` and ``clip_g`` to ``text_encoder_2``, in one call.
torch is imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from client.core.embedding import Embedding
from client.core.errors import (
    BadName,
    BadShape,
    Conflict,
    IncompatibleEmbedding,
    LexiconError,
    NotFound,
)
from client.core.families import family_for_widths
from client.inject_sources import Item, Puller, is_sdxl_pair, resolve_item
from client.inject_tables import drop_added_tokens, remove_tokens, set_table

_SIBLING = re.compile(r"^(.+)_(\d+)$")


@dataclass(frozen=True)
class _Slot:
    """One tokenizer/text-encoder pair of the pipeline."""

    attr: str  # "text_encoder" or "text_encoder_2"
    tokenizer: Any
    encoder: Any

    @property
    def width(self) -> int:
        return int(self.encoder.get_input_embeddings().weight.shape[1])

    @property
    def rows(self) -> int:
        return int(self.encoder.get_input_embeddings().weight.shape[0])


@dataclass(frozen=True)
class _Planned:
    label: str
    embedding: Embedding
    trigger: str
    plan: dict[str, str]  # slot attr -> embedding encoder key

    @property
    def tokens(self) -> list[str]:
        return token_names(self.trigger, self.embedding.num_vectors)


def token_names(trigger: str, count: int) -> list[str]:
    """The tokens an embedding of ``count`` vectors adds: ``<t>``, ``<t>_1`` … ``<t>_{n-1}``."""
    return [trigger] + [f"{trigger}_{i}" for i in range(1, count)]


# ---------------------------------------------------------------------------------------------
# Public API


def load_embedding(
    pipe: Any,
    ref_or_path: Item | Sequence[Item],
    *,
    token: str | None = None,
    hub: Puller | None = None,
) -> list[str]:
    """Load one embedding (an :class:`Embedding`, a local file in any supported format, or a
    registry reference such as ``ns/name@3``) into ``pipe``; returns ``[trigger]``, the token to
    write in prompts. ``token`` overrides the name the file carries. A folder, or a list of the
    two files of a diffusers SDXL embedding (either order), is one embedding; any other list or
    tuple of items goes to :func:`load_embeddings`."""
    if isinstance(ref_or_path, list | tuple) and is_sdxl_pair(ref_or_path):
        return load_embeddings(pipe, [tuple(ref_or_path)], tokens=[token], hub=hub)
    if isinstance(ref_or_path, list | tuple):
        if token is not None:
            raise BadName("token= names one embedding; use load_embeddings(..., tokens=[...])")
        return load_embeddings(pipe, ref_or_path, hub=hub)
    return load_embeddings(pipe, [ref_or_path], tokens=[token], hub=hub)


def load_embeddings(
    pipe: Any,
    items: Sequence[Item],
    *,
    tokens: Sequence[str | None] | None = None,
    hub: Puller | None = None,
) -> list[str]:
    """Load several embeddings at once (each token table is resized once); returns one trigger
    per item, in order. Nothing changes unless every item fits."""
    if tokens is not None and len(tokens) != len(items):
        raise BadName(f"{len(items)} embeddings but {len(tokens)} tokens; give one token per item")
    slots = _slots(pipe)
    planned = [
        _plan(item, (tokens or [None] * len(items))[i], slots, hub) for i, item in enumerate(items)
    ]
    _check_tokens(planned, slots)
    _apply(planned, slots)
    return [p.trigger for p in planned]


def unload_embedding(pipe: Any, tokens: str | Iterable[str]) -> None:
    """Remove embeddings by trigger (with all their ``_1``… tokens), restoring each tokenizer's
    vocabulary and token table to what they were without them. Tokens loaded by other means
    (e.g. diffusers' ``load_textual_inversion``) keep their vectors."""
    triggers = [tokens] if isinstance(tokens, str) else list(dict.fromkeys(tokens))
    slots = _slots(pipe)
    removals: list[tuple[_Slot, set[str]]] = []
    for slot in slots:
        added = slot.tokenizer.added_tokens_encoder
        base = int(slot.tokenizer.vocab_size)
        loaded = sorted(t for t, i in added.items() if i >= base)
        remove: set[str] = set()
        for trigger in triggers:
            sibling = _SIBLING.match(trigger)
            if sibling and added.get(sibling.group(1), -1) >= base:
                trigger = sibling.group(1)  # "<t>_1" names <t>'s embedding: remove all of it
            if added.get(trigger, -1) < base:
                raise NotFound(
                    f"{trigger!r} is not an embedding token of this pipeline's {slot.attr}; "
                    f"loaded: {', '.join(loaded) or 'none'}"
                )
            remove.update(_with_siblings(trigger, added))
        if slot.rows != len(slot.tokenizer):
            raise _table_mismatch(slot)
        if not hasattr(slot.tokenizer, "backend_tokenizer"):
            raise LexiconError(
                f"{slot.attr}'s tokenizer is not a fast (tokenizers-backed) tokenizer; "
                "unloading needs one (load the pipeline with its default CLIPTokenizer)"
            )
        removals.append((slot, remove))
    for slot, remove in removals:  # ---- mutation: validated above ----
        remove_tokens(slot.tokenizer, slot.encoder, remove, slot.attr)


def expand_prompt(pipe_or_tokenizer: Any, prompt: str | list[str]) -> str | list[str]:
    """Replace each multi-vector trigger ``<t>`` in ``prompt`` with ``<t> <t>_1 … <t>_{n-1}``
    (already expanded triggers are left alone). Needed only when you tokenize prompts yourself:
    diffusers' pipelines expand triggers in ``encode_prompt``, so pass them the bare trigger."""
    if isinstance(prompt, list):
        return [expand_prompt(pipe_or_tokenizer, p) for p in prompt]  # type: ignore[misc]
    tokenizer = getattr(pipe_or_tokenizer, "tokenizer", None) or getattr(
        pipe_or_tokenizer, "tokenizer_2", pipe_or_tokenizer
    )
    added = tokenizer.added_tokens_encoder
    expansions = {t: _with_siblings(t, added) for t in added if f"{t}_1" in added}
    if not expansions:
        return prompt
    ordered = sorted(expansions, key=len, reverse=True)  # longest first: "<ab>" before "<a>"
    alternatives = []
    for i, trigger in enumerate(ordered):
        rest = "".join(r"\s+" + re.escape(t) for t in expansions[trigger][1:])
        alternatives.append(f"(?P<t{i}>{re.escape(trigger)}(?:{rest})?)")
    pattern = re.compile("(?:" + "|".join(alternatives) + r")(?!_\d)")

    def replace(match: re.Match[str]) -> str:
        return " ".join(expansions[ordered[int(str(match.lastgroup)[1:])]])

    return pattern.sub(replace, prompt)


# ---------------------------------------------------------------------------------------------
# Validation (nothing here changes the pipeline)


def _slots(pipe: Any) -> list[_Slot]:
    slots = []
    for tok_attr, enc_attr in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")):
        tokenizer, encoder = getattr(pipe, tok_attr, None), getattr(pipe, enc_attr, None)
        if tokenizer is None and encoder is None:
            continue
        if tokenizer is None or encoder is None:
            missing = tok_attr if tokenizer is None else enc_attr
            raise IncompatibleEmbedding(
                f"this pipeline has no {missing} beside its "
                f"{enc_attr if tokenizer is None else tok_attr}; load it with both"
            )
        slots.append(_Slot(enc_attr, tokenizer, encoder))
    if not slots:
        raise IncompatibleEmbedding(
            f"{type(pipe).__name__} has no tokenizer/text_encoder; textual-inversion embeddings "
            "need a pipeline with a CLIP text encoder (StableDiffusion*, StableDiffusionXL*)"
        )
    return slots


def describe_pipeline(pipe: Any) -> str:
    """E.g. "this pipeline's text encoder is 1024 wide (sd2)"."""
    return _describe(_slots(pipe))


def _describe(slots: list[_Slot]) -> str:
    names = [s.attr for s in slots]
    widths = {s.attr: s.width for s in slots}
    family = "no known family"
    keys = {"text_encoder": "emb_params"}
    if names == ["text_encoder", "text_encoder_2"]:
        keys = {"text_encoder": "clip_l", "text_encoder_2": "clip_g"}
    if names == ["text_encoder_2"] and widths["text_encoder_2"] == 1280:
        family = "sdxl refiner, clip_g only"
    else:
        with contextlib.suppress(BadShape, KeyError):
            family = family_for_widths({keys[n]: widths[n] for n in names}).name
    noun = "text encoder is" if len(slots) == 1 else "text encoders are"
    shown = " + ".join(str(widths[n]) for n in names)
    return f"this pipeline's {noun} {shown} wide ({family})"


def _plan(item: Item, token: str | None, slots: list[_Slot], hub: Puller | None) -> _Planned:
    embedding, label, name = resolve_item(item, hub)
    family = embedding.family
    attrs = [s.attr for s in slots]
    if family.name == "sdxl":
        wanted = {"text_encoder": "clip_l", "text_encoder_2": "clip_g"}
        fits = "text_encoder_2" in attrs and set(attrs) <= wanted.keys()
    else:
        wanted = {"text_encoder": "emb_params"}
        fits = attrs == ["text_encoder"]
    fits = fits and all(s.width == family.encoders[wanted[s.attr]] for s in slots)
    if not fits:
        raise IncompatibleEmbedding(
            f"{label} is {family.describe()}, {_describe(slots)}; use a {family.title} "
            "pipeline, or an embedding made for this pipeline's base model"
        )
    trigger = token or embedding.token or (f"<{name}>" if name else None)
    if not trigger:
        raise BadName(f"{label} names no token; pass token='<my-token>'")
    if not trigger.strip() or any(c.isspace() for c in trigger):
        raise BadName(f"token {trigger!r} is empty or holds whitespace; pass token='<my-token>'")
    return _Planned(label, embedding, trigger, {s.attr: wanted[s.attr] for s in slots})


def _with_siblings(trigger: str, vocab: dict[str, int]) -> list[str]:
    names, i = [trigger], 1
    while f"{trigger}_{i}" in vocab:
        names.append(f"{trigger}_{i}")
        i += 1
    return names


def _check_tokens(planned: list[_Planned], slots: list[_Slot]) -> None:
    seen: dict[str, str] = {}
    for p in planned:
        for name in p.tokens:
            if name in seen:
                raise Conflict(
                    f"{p.label} and {seen[name]} both want token {name!r}; give one another token"
                )
            seen[name] = p.label
    for slot in slots:
        if slot.rows != len(slot.tokenizer):
            raise _table_mismatch(slot)
        token_id = _token_ids(slot.tokenizer)
        base = int(slot.tokenizer.vocab_size)
        for p in planned:
            taken = [t for t in p.tokens if token_id(t) is not None]
            # a loaded "<t>_N" would be pulled into <t>'s expansion; "<t>_N" would join "<t>"'s
            extra = f"{p.trigger}_{p.embedding.num_vectors}"
            sibling = _SIBLING.match(p.trigger)
            if token_id(extra) is not None:
                taken.append(extra)
            if sibling and (token_id(sibling.group(1)) or -1) >= base:
                taken.append(sibling.group(1))
            if taken:
                loaded = (token_id(taken[0]) or 0) >= base
                what = "already loaded" if loaded else "a word of its vocabulary"
                raise Conflict(
                    f"token {taken[0]!r} for {p.label} collides in this pipeline's {slot.attr} "
                    f"tokenizer ({what}); pass token='<another-name>', or "
                    f"unload_embedding(pipe, {taken[0]!r}) first"
                )


def _token_ids(tokenizer: Any) -> Callable[[str], int | None]:
    """A token's id, None when the tokenizer lacks it. The fast tokenizer answers per token;
    ``get_vocab()`` would build a dict of CLIP's 49,408 tokens on every load (issue 12)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return backend.token_to_id  # type: ignore[no-any-return]
    return tokenizer.get_vocab().get  # type: ignore[no-any-return]


def _table_mismatch(slot: _Slot) -> LexiconError:
    return IncompatibleEmbedding(
        f"this pipeline's {slot.attr} has {slot.rows} token rows but its tokenizer has "
        f"{len(slot.tokenizer)} tokens; tokens cannot be added or removed safely (reload the "
        "pipeline)"
    )


# ---------------------------------------------------------------------------------------------
# Mutation (only after every check passed)


def _apply(planned: list[_Planned], slots: list[_Slot]) -> None:
    import torch
    from tokenizers import AddedToken

    names = [t for p in planned for t in p.tokens]
    undo: list[tuple[_Slot, int, int]] = []  # slot, tokens before, table rows before
    try:
        # ======== fenced: tokenizer + text encoder(s) change together, or not at all ========
        for slot in slots:
            tokenizer, encoder = slot.tokenizer, slot.encoder
            before = len(tokenizer)
            undo.append((slot, before, slot.rows))
            # normalized=False: matched case-sensitively, before CLIP's lower-casing
            added = tokenizer.add_tokens([AddedToken(t, normalized=False) for t in names])
            ids = tokenizer.convert_tokens_to_ids(names)
            if added != len(names) or ids != list(range(before, before + len(names))):
                raise LexiconError(f"{slot.attr}'s tokenizer gave unexpected ids {ids}")
            weight = encoder.get_input_embeddings().weight
            rows = np.concatenate(
                [p.embedding.vectors[p.plan[slot.attr]].astype(np.float32) for p in planned]
            )
            new_rows = torch.from_numpy(rows).to(dtype=weight.dtype, device=weight.device)
            set_table(encoder, torch.cat([weight.detach(), new_rows]))
        # ======== end of fence ========
    except BaseException:
        for slot, before, table_rows in reversed(undo):
            if len(slot.tokenizer) != before:
                drop_added_tokens(slot.tokenizer, before)
            if slot.rows != table_rows:
                weight = slot.encoder.get_input_embeddings().weight
                set_table(slot.encoder, weight.detach()[:table_rows].clone())
        raise
