"""Write an :class:`Embedding` in the formats other tools load: safetensors through
:func:`client.core.canonical.serialize_safetensors`, or (A1111 ``.pt``) a torch file whose pickle
is written opcode by opcode; reading any file written here gives back the same vectors and the
same digest, and the same embedding always gives the same bytes.

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
  from ``token=``, else the embedding's own token, else ``<stem>`` of OUT. A single vector is
  written 1-D (``[d]``), as diffusers' own training script saved it: InvokeAI's probe reads the
  width from ``shape[0]`` and refuses ``[1, d]`` (issue 9); diffusers, A1111, ComfyUI and kohya
  load both. Every loader reads it back as one vector, so the digest does not change.

The bytes always match the file name (issue 9): ``--to a1111`` with a ``.pt``/``.bin`` name
writes a real torch file (:mod:`client.core.torch_writer`: A1111's ``string_to_param`` dict, what
``torch.load`` expects of that name); any other format, and SDXL (A1111 loads SDXL only from
safetensors), refuses a torch or PNG name and names the extension to use.
"""

from __future__ import annotations

from pathlib import Path

from .canonical import META_PREFIX, canonical_bytes, serialize_safetensors
from .embedding import Embedding
from .errors import BadRequest
from .torch_writer import a1111_pt_bytes

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
SAFETENSORS, TORCH = "safetensors", "torch"
# Names that promise torch.load-able bytes (A1111 and ComfyUI torch.load .pt and .bin).
TORCH_SUFFIXES = (".pt", ".bin")
# Names that promise some other container: refused unless they match what is written.
FILE_SUFFIXES = (".safetensors", *TORCH_SUFFIXES, ".pth", ".ckpt", ".png")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise BadRequest(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def prompt_word(token: str | None, fallback: str = "embedding") -> str:
    """The word A1111/ComfyUI users type for an embedding, usable as a file name: the trigger
    without ``<>``, anything but letters, digits, ``-``, ``_`` and ``.`` replaced by ``_``."""
    word = (token or "").strip().strip("<>").strip() or fallback
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in word)


def container_for(embedding: Embedding, fmt: str, out: Path) -> str:
    """``safetensors`` or ``torch``: what the name ``out`` promises for ``fmt``; a name that
    promises bytes this format cannot be refuses, naming the extension to use."""
    check_format(fmt)
    suffix = Path(out).suffix.lower()
    stem = Path(out).stem or "embedding"
    if fmt == "diffusers" and embedding.family.name == "sdxl":
        if suffix in FILE_SUFFIXES:
            raise BadRequest(
                "diffusers SDXL embeddings are a folder of two files "
                f"({' + '.join(SDXL_PAIR_FILES.values())}); give a folder name without "
                f"{suffix}, e.g. {stem}"
            )
        return SAFETENSORS
    if suffix in TORCH_SUFFIXES and fmt == "a1111":
        if embedding.family.name == "sdxl":
            raise BadRequest(
                f"A1111 has no {suffix} form for SDXL embeddings (it loads SDXL clip_l + clip_g "
                f"from safetensors only); name the output {stem}.safetensors"
            )
        return TORCH
    if suffix in FILE_SUFFIXES and suffix != ".safetensors":
        also = " (only --to a1111 writes a torch .pt)" if fmt != "a1111" else f" (or {stem}.pt)"
        raise BadRequest(
            f"{fmt} files are safetensors, which a {suffix} name does not promise; name the "
            f"output {stem}.safetensors{also}"
        )
    return SAFETENSORS


def kohya_metadata(embedding: Embedding, title: str | None = None) -> dict[str, str]:
    arch = KOHYA_ARCHITECTURES[embedding.family.name]
    return {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": f"{arch}/textual-inversion",
        "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
        "modelspec.title": title or embedding.token or "embedding",
        f"{META_PREFIX}family": embedding.family.name,
    }


def _a1111_pt(embedding: Embedding, token: str | None) -> bytes:
    """A1111's own dict; ``step``/``sd_checkpoint*`` are kept when the source file had them."""
    if embedding.family.name == "sdxl":
        raise BadRequest("A1111 has no .pt form for SDXL embeddings; write .safetensors")
    info = embedding.info
    step = info.get("step", "")
    return a1111_pt_bytes(
        embedding.vectors["emb_params"],
        name=prompt_word(token or embedding.token),
        step=int(step) if step.isdigit() else None,
        sd_checkpoint=info.get("sd_checkpoint") or None,
        sd_checkpoint_name=info.get("sd_checkpoint_name") or None,
    )


def embedding_to_bytes(
    embedding: Embedding, fmt: str, *, token: str | None = None, container: str = SAFETENSORS
) -> dict[str, bytes]:
    """The file(s) of ``embedding`` in ``fmt``: ``{SELF: bytes}`` for one file (written at OUT),
    or ``{file name: bytes}`` for the files of a folder (diffusers SDXL). ``container`` is
    :data:`TORCH` only for ``a1111`` (see :func:`container_for`)."""
    check_format(fmt)
    if container == TORCH:
        if fmt != "a1111":
            raise BadRequest(f"{fmt} files are safetensors; only a1111 has a torch .pt form")
        return {SELF: _a1111_pt(embedding, token)}
    if fmt == "canonical":
        return {SELF: canonical_bytes(embedding)}
    if fmt == "a1111":
        return {SELF: serialize_safetensors(embedding.vectors)}
    if fmt == "kohya":
        return {SELF: serialize_safetensors(embedding.vectors, kohya_metadata(embedding, token))}
    word = token or embedding.token or DEFAULT_TOKEN
    # One vector is written 1-D, as diffusers' training script did (InvokeAI reads shape[0]).
    flat = {k: v[0] if v.shape[0] == 1 else v for k, v in embedding.vectors.items()}
    if embedding.family.name == "sdxl":
        return {
            SDXL_PAIR_FILES[name]: serialize_safetensors({word: array})
            for name, array in flat.items()
        }
    return {SELF: serialize_safetensors({word: flat["emb_params"]})}


def write_embedding(
    embedding: Embedding, out: Path, fmt: str, *, token: str | None = None
) -> list[Path]:
    """Write ``embedding`` to ``out`` in ``fmt``, in the container ``out``'s name promises
    (:func:`container_for`); returns the files written. For diffusers the token defaults to the
    embedding's token, else ``<stem of out>``."""
    out = Path(out)
    container = container_for(embedding, fmt, out)
    if fmt == "diffusers" and not (token or embedding.token):
        token = f"<{out.stem or 'embedding'}>"
    files = embedding_to_bytes(embedding, fmt, token=token, container=container)
    written: list[Path] = []
    for name, data in files.items():
        target = out / name if name else out
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(target)
        written.append(target)
    return written
