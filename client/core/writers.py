"""Write an :class:`Embedding` in the formats other tools load. Every writer emits safetensors
through :func:`client.core.canonical.serialize_safetensors` (never a pickle), so reading any file
written here gives back the same vectors and the same digest.

* ``canonical`` - our upload form: ``{"emb_params"}`` or ``{"clip_l", "clip_g"}`` with
  ``lexicon.*`` metadata (family, token, source format).
* ``a1111`` - the same tensors and no metadata: what A1111 and ComfyUI load from ``embeddings/``
  (the prompt word is the file name).
* ``kohya`` - kohya's sd-scripts save the *same tensor layout* as A1111 (``emb_params``, or
  ``clip_l`` + ``clip_g`` for SDXL); they differ only in metadata: kohya writes the SAI
  ModelSpec keys (``modelspec.architecture`` = ``<arch>/textual-inversion``, ``modelspec.title``
  ...), which we write too, without a date so the bytes stay deterministic.
* ``diffusers`` - ``{token: [n, d]}`` for ``load_textual_inversion``. SDXL is diffusers' two-file
  form, and the rule is: OUT is a *folder* holding ``learned_embeds.safetensors`` (text_encoder,
  768 wide) and ``learned_embeds_2.safetensors`` (text_encoder_2, 1280 wide). The token comes
  from ``token=``, else the embedding's own token, else ``<stem>`` of OUT.
"""

from __future__ import annotations

from pathlib import Path

from .canonical import META_PREFIX, canonical_bytes, serialize_safetensors
from .embedding import Embedding
from .errors import BadRequest

FORMATS = ("canonical", "a1111", "diffusers", "kohya")
SDXL_PAIR_FILES = {"clip_l": "learned_embeds.safetensors", "clip_g": "learned_embeds_2.safetensors"}
DEFAULT_TOKEN = "<embedding>"
KOHYA_ARCHITECTURES = {
    "sd1": "stable-diffusion-v1",
    "sd2": "stable-diffusion-v2-512",
    "sdxl": "stable-diffusion-xl-v1-base",
}
# The single-file case of :func:`embedding_to_bytes`: the bytes belong at OUT itself.
SELF = ""


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise BadRequest(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def kohya_metadata(embedding: Embedding, title: str | None = None) -> dict[str, str]:
    arch = KOHYA_ARCHITECTURES[embedding.family.name]
    return {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": f"{arch}/textual-inversion",
        "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
        "modelspec.title": title or embedding.token or "embedding",
        f"{META_PREFIX}family": embedding.family.name,
    }


def embedding_to_bytes(
    embedding: Embedding, fmt: str, *, token: str | None = None
) -> dict[str, bytes]:
    """The file(s) of ``embedding`` in ``fmt``: ``{SELF: bytes}`` for one file (written at OUT),
    or ``{file name: bytes}`` for the files of a folder (diffusers SDXL)."""
    check_format(fmt)
    if fmt == "canonical":
        return {SELF: canonical_bytes(embedding)}
    if fmt == "a1111":
        return {SELF: serialize_safetensors(embedding.vectors)}
    if fmt == "kohya":
        return {SELF: serialize_safetensors(embedding.vectors, kohya_metadata(embedding, token))}
    word = token or embedding.token or DEFAULT_TOKEN
    if embedding.family.name == "sdxl":
        return {
            SDXL_PAIR_FILES[name]: serialize_safetensors({word: array})
            for name, array in embedding.vectors.items()
        }
    return {SELF: serialize_safetensors({word: embedding.vectors["emb_params"]})}


def write_embedding(
    embedding: Embedding, out: Path, fmt: str, *, token: str | None = None
) -> list[Path]:
    """Write ``embedding`` to ``out`` in ``fmt``; returns the files written. For diffusers the
    token defaults to the embedding's token, else ``<stem of out>``."""
    out = Path(out)
    check_format(fmt)
    if fmt == "diffusers" and not (token or embedding.token):
        token = f"<{out.stem or 'embedding'}>"
    files = embedding_to_bytes(embedding, fmt, token=token)
    written: list[Path] = []
    for name, data in files.items():
        target = out / name if name else out
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(target)
        written.append(target)
    return written
