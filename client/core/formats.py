"""Read every textual-inversion format the community publishes into one :class:`Embedding`.

Detection looks at the bytes (PNG signature, safetensors header, zip or pickle), then at the
layout of the tensors inside. ``source_format`` names what was found, with one short stable name:

=======================  ==============================================================
``diffusers-bin``        torch pickle ``{token: [768] or [n, d]}`` (diffusers' learned_embeds.bin)
``diffusers-safetensors`` safetensors ``{token: [n, d]}``
``a1111-pt``             torch pickle ``{'string_to_param': {'*': t}, 'name', 'step', ...}``
``a1111-safetensors``    safetensors ``{'emb_params': [n, d]}`` (or SDXL ``clip_l`` + ``clip_g``)
``kohya``                the same tensors with kohya's ``modelspec.*`` metadata
``pickle-single-key``    torch pickle ``{'emb_params': t}`` (or ``'*'``, or a bare tensor)
``sdxl-single-file``     ``{'clip_l': [n, 768], 'clip_g': [n, 1280]}`` (.safetensors or .pt)
``diffusers-sdxl-pair``  two ``{token: t}`` files, 768 wide (text_encoder) and 1280 wide
                         (text_encoder_2); told apart by width, never by name
``a1111-png``            PNG with an ``sd-ti-embedding`` text chunk
``canonical``            our canonical safetensors (``lexicon.*`` metadata)
=======================  ==============================================================

Pickles are read only through :mod:`client.core.unpickler`; no pickled code ever runs.

The token (the trigger) is what the tools that use a file type key it by (issue 9): A1111 and
ComfyUI key ``.pt``/``.bin``/``.safetensors`` embeddings by *file name*, so for the formats in
:data:`NAMED_BY_FILE` the token is the file's stem (``badhandv4.pt`` -> ``badhandv4``, although
its pickle says ``name: badhandv3``), and an A1111 internal name is kept in ``info["name"]``.
A1111 PNGs are keyed by their internal name (A1111 reads ``name`` from the image); diffusers
files by their dict key; canonical files by ``lexicon.token``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .canonical import DEFAULT_MAX_BYTES, META_PREFIX, looks_like_safetensors, parse_safetensors
from .embedding import DTYPE_NAMES, Embedding
from .errors import BadDtype, BadShape, InvalidEmbedding, LexiconError, TooLarge
from .families import check_base_model, get_family
from .png import is_png, read_png_embedding_data
from .torchfile import is_torch_zip, load_torch, looks_like_pickle

DEFAULT_MAX_PNG_BYTES = 20 * 1024 * 1024  # preview images are far larger than the vectors
EMBEDDING_SUFFIXES = (".safetensors", ".bin", ".pt", ".ckpt", ".png")
KOHYA_ARCH_KEY = "modelspec.architecture"
SDXL_WIDTHS = {768: "clip_l", 1280: "clip_g"}
_NOT_TOKENS = ("emb_params", "*")
# Formats A1111 and ComfyUI load from embeddings/ and key by file name (see module docstring).
NAMED_BY_FILE = frozenset(
    {"a1111-pt", "a1111-safetensors", "kohya", "pickle-single-key", "sdxl-single-file"}
)

Source = Path | str | bytes | Sequence[Path | str]


class NotAPair(BadShape):
    """Two files that are not the 768 + 1280 halves of a diffusers SDXL embedding."""


def read_embedding(
    source: Source,
    *,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_png_bytes: int = DEFAULT_MAX_PNG_BYTES,
    base_model: str | None = None,
) -> Embedding:
    """Detect and read an embedding from a file, a folder (SDXL pair), two files (SDXL pair) or
    bytes. For bytes, ``filename`` (the upload's name) prefixes every refusal so the user sees
    which file it was about; paths are left to the caller to name. ``base_model``, when given,
    must belong to the embedding's family."""
    limits = (max_bytes, max_png_bytes)
    if isinstance(source, bytes | bytearray | memoryview):
        try:
            embedding = _read_bytes(bytes(source), limits)
        except LexiconError as exc:
            if not filename:
                raise
            raise type(exc)(f"{filename}: {exc}") from None
        embedding = named_by_file(embedding, Path(filename).stem if filename else None)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        embedding = (
            _read_folder(path, limits)
            if path.is_dir()
            else named_by_file(_read_bytes(_load(path, limits), limits), path.stem)
        )
    else:
        paths = [Path(p) for p in source]
        if len(paths) == 1:
            return read_embedding(
                paths[0], max_bytes=max_bytes, max_png_bytes=max_png_bytes, base_model=base_model
            )
        if len(paths) != 2:
            raise InvalidEmbedding(
                f"got {len(paths)} files; give one embedding file, or the two files of a "
                "diffusers SDXL embedding"
            )
        embedding = _read_pair(paths, limits)
    check_base_model(embedding.family, base_model)
    return embedding


def named_by_file(embedding: Embedding, stem: str | None) -> Embedding:
    """``embedding`` with the token A1111 and ComfyUI would give its file: the file stem, for
    the formats they key by file name (:data:`NAMED_BY_FILE`); others are returned as read."""
    stem = (stem or "").strip()
    if not stem or embedding.source_format not in NAMED_BY_FILE:
        return embedding
    return replace(embedding, token=stem)


def read_path(path: Path | str, **kwargs: Any) -> Embedding:
    """:func:`read_embedding` for one path (file or folder)."""
    return read_embedding(Path(path), **kwargs)


# -- bytes --------------------------------------------------------------------------------------


def _limit_for(head: bytes, limits: tuple[int, int]) -> int:
    return limits[1] if is_png(head) else limits[0]


def _too_large(size: int, limit: int) -> TooLarge:
    return TooLarge(
        f"the file is {size} bytes; an embedding file is at most {limit} "
        "(is this a model checkpoint or a LoRA?)"
    )


def _load(path: Path, limits: tuple[int, int]) -> bytes:
    """The file's bytes, refused by size before reading past the first few bytes."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(8)
            limit = _limit_for(head, limits)
            if size > limit:
                raise _too_large(size, limit)
            data = head + handle.read(limit + 1 - len(head))
    except FileNotFoundError:
        raise InvalidEmbedding("no such file") from None
    except IsADirectoryError:
        raise InvalidEmbedding("is a folder, not a file") from None
    except PermissionError:
        raise InvalidEmbedding("the file cannot be read (permission denied)") from None
    if len(data) > limit:
        raise _too_large(len(data), limit)
    return data


def _read_bytes(data: bytes, limits: tuple[int, int]) -> Embedding:
    if len(data) > _limit_for(data[:8], limits):
        raise _too_large(len(data), _limit_for(data[:8], limits))
    if not data:
        raise InvalidEmbedding("the file is empty")
    if is_png(data):
        return _from_a1111_dict(read_png_embedding_data(data), "a1111-png")
    if looks_like_safetensors(data):
        tensors, metadata = parse_safetensors(data)
        return _from_tensors(tensors, pickled=False, metadata=metadata)
    if is_torch_zip(data) or looks_like_pickle(data):
        return _from_object(load_torch(data))
    raise InvalidEmbedding(
        f"not a known embedding format (the file starts with {data[:8]!r}); expected "
        "safetensors, a torch .pt/.bin or an A1111 PNG"
    )


# -- layouts ------------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"a {list(value.shape)} tensor"
    return f"a {type(value).__name__}"


def _from_object(obj: Any) -> Embedding:
    """An unpickled object (tensors as numpy arrays) as an embedding."""
    if isinstance(obj, np.ndarray):
        return _from_tensors({"emb_params": obj}, pickled=True)
    if not isinstance(obj, dict):
        raise InvalidEmbedding(f"the pickle holds {_kind(obj)}, not an embedding")
    if not obj:
        raise InvalidEmbedding("the pickle holds an empty dict, not an embedding")
    if "string_to_param" in obj:
        stray = [k for k, v in obj.items() if isinstance(v, np.ndarray)]
        if stray:
            raise InvalidEmbedding(
                f"stray tensor {stray[0]!r} next to the A1111 'string_to_param'; an embedding "
                "file holds only its vectors"
            )
        return _from_a1111_dict(obj, "a1111-pt")
    tensors: dict[str, np.ndarray] = {}
    info: dict[str, str] = {}
    for key, value in obj.items():
        if isinstance(value, np.ndarray):
            tensors[str(key)] = value
        elif isinstance(value, str | int | float):
            info[str(key)] = str(value)
        elif value is not None:
            raise InvalidEmbedding(
                f"the pickle holds {key!r} with {_kind(value)}, not an embedding's tensors "
                "(a model checkpoint or an optimizer state?)"
            )
    if not tensors:
        shown = ", ".join(repr(k) for k in list(obj)[:3])
        raise InvalidEmbedding(f"the pickle holds no tensors (keys {shown})")
    return _from_tensors(tensors, pickled=True, info=info)


def _from_a1111_dict(data: dict[str, Any], source_format: str) -> Embedding:
    """A1111's ``{'string_to_param': {'*': t}, 'name': ..., 'step': ...}`` (pickle or PNG)."""
    params = data.get("string_to_param")
    if not isinstance(params, dict):
        raise InvalidEmbedding(f"'string_to_param' holds {_kind(params)}, not a dict of tensors")
    tensors = {str(k): v for k, v in params.items() if isinstance(v, np.ndarray)}
    if len(tensors) != 1 or len(params) != 1:
        keys = ", ".join(repr(k) for k in list(params)[:4]) or "nothing"
        raise InvalidEmbedding(
            f"'string_to_param' holds {keys}; an A1111 embedding holds one tensor under '*'"
        )
    array = _float_tensor(next(iter(tensors)), next(iter(tensors.values())))
    name = data.get("name")
    # "name" is kept as the internal name: the token becomes the file stem (named_by_file).
    info = {
        key: str(data[key])
        for key in ("name", "step", "sd_checkpoint", "sd_checkpoint_name")
        if data.get(key) is not None and (key != "name" or source_format == "a1111-pt")
    }
    return Embedding.from_tensors(
        {"emb_params": array},
        token=name if isinstance(name, str) else None,
        source_format=source_format,
        info=info,
    )


def _float_tensor(name: str, array: np.ndarray) -> np.ndarray:
    if array.dtype == np.float64:
        raise BadDtype(
            f"tensor {name!r} is float64; save it as float32 (torch: tensor.float()) - "
            "embeddings are float32, float16 or bfloat16"
        )
    if array.dtype not in DTYPE_NAMES:
        raise BadDtype(f"tensor {name!r} is {array.dtype}, not float vectors; save as float32")
    return array


def _safetensors_flavour(metadata: dict[str, str]) -> str:
    if f"{META_PREFIX}format" in metadata:
        return "canonical"
    if metadata.get(KOHYA_ARCH_KEY, "").endswith("/textual-inversion"):
        return "kohya"
    return "a1111-safetensors"


def _from_tensors(
    tensors: dict[str, np.ndarray],
    *,
    pickled: bool,
    metadata: dict[str, str] | None = None,
    info: dict[str, str] | None = None,
) -> Embedding:
    """A dict of named tensors (safetensors or pickle) as an embedding, by its keys."""
    metadata = metadata or {}
    keys = sorted(tensors)
    token: str | None = None
    if not keys:
        raise InvalidEmbedding("the file holds no tensors")
    if len(keys) > 2:
        shown = ", ".join(repr(k) for k in keys[:2])
        raise InvalidEmbedding(
            f"found {len(keys)} tensors (e.g. {shown}); an embedding holds 1 or 2 "
            "(is this a LoRA or a model checkpoint?)"
        )
    if keys == ["clip_g", "clip_l"]:
        source_format = "sdxl-single-file" if pickled else _safetensors_flavour(metadata)
        if source_format == "a1111-safetensors":
            source_format = "sdxl-single-file"
        vectors = dict(tensors)
    elif len(keys) == 2:
        known = [k for k in keys if k in ("emb_params", "clip_l", "clip_g")]
        if known:
            stray = next(k for k in keys if k != known[0])
            raise InvalidEmbedding(
                f"stray tensor {stray!r} next to the embedding's {known[0]!r}; an embedding "
                "file holds only its vectors"
            )
        raise InvalidEmbedding(
            f"found 2 tensors {keys}; an embedding holds one ('emb_params' or a token) or "
            "SDXL's 'clip_l' + 'clip_g' (for a diffusers SDXL pair give both files)"
        )
    else:
        (key,) = keys
        array = tensors[key]
        if key in ("clip_l", "clip_g"):
            raise BadShape(f"the file holds only {key!r}; an SDXL embedding has clip_l + clip_g")
        if key in _NOT_TOKENS:
            source_format = "pickle-single-key" if pickled else _safetensors_flavour(metadata)
        else:
            token = key
            source_format = "diffusers-bin" if pickled else "diffusers-safetensors"
        if array.ndim >= 1 and array.shape[-1] == 1280:
            raise BadShape(
                f"tensor {key!r} is 1280 wide: the text_encoder_2 half of a diffusers SDXL "
                "embedding; give both files (or their folder)"
            )
        vectors = {"emb_params": array}
    for name, array in vectors.items():
        _float_tensor(name, array)
    if source_format == "canonical":
        token = metadata.get(f"{META_PREFIX}token") or token
    embedding = Embedding.from_tensors(vectors, token=token, source_format=source_format, info=info)
    declared = metadata.get(f"{META_PREFIX}family") if source_format == "canonical" else None
    if declared and get_family(declared).name != embedding.family.name:
        raise InvalidEmbedding(
            f"header says family {declared!r} but the vectors are {embedding.family.describe()}"
        )
    return embedding


# -- SDXL pairs ---------------------------------------------------------------------------------


def _single_tensor(path: Path, limits: tuple[int, int]) -> tuple[str, np.ndarray]:
    data = _load(path, limits)
    if looks_like_safetensors(data):
        tensors, _ = parse_safetensors(data)
    elif is_torch_zip(data) or looks_like_pickle(data):
        obj = load_torch(data)
        if not isinstance(obj, dict) or not obj:
            raise InvalidEmbedding(f"{path.name}: the pickle holds {_kind(obj)}, not a tensor")
        tensors = {str(k): v for k, v in obj.items()}
    else:
        raise InvalidEmbedding(f"{path.name} is neither safetensors nor a torch file")
    if len(tensors) != 1 or not isinstance(next(iter(tensors.values())), np.ndarray):
        raise NotAPair(
            f"{path.name} holds {len(tensors)} entries; each file of a diffusers SDXL pair "
            "holds one {token: tensor}"
        )
    key, array = next(iter(tensors.items()))
    return key, _float_tensor(key, array)


def _read_pair(paths: list[Path], limits: tuple[int, int]) -> Embedding:
    """The diffusers SDXL two-file form, halves told apart by width (768 -> clip_l,
    1280 -> clip_g)."""
    halves = [(p, *_single_tensor(p, limits)) for p in paths]
    widths = sorted(int(a.shape[-1]) for _, _, a in halves)
    if widths != [768, 1280]:
        raise NotAPair(
            f"the two files are {widths[0]} and {widths[1]} wide; a diffusers SDXL embedding is "
            "one 768-wide file (text_encoder) and one 1280-wide file (text_encoder_2)"
        )
    vectors = {SDXL_WIDTHS[int(a.shape[-1])]: a for _, _, a in halves}
    tokens = {SDXL_WIDTHS[int(a.shape[-1])]: k for _, k, a in halves if k not in _NOT_TOKENS}
    token = tokens.get("clip_l") or tokens.get("clip_g")
    return Embedding.from_tensors(vectors, token=token, source_format="diffusers-sdxl-pair")


def embedding_files(folder: Path) -> list[Path]:
    """The files in ``folder`` that hold the embedding: its .safetensors files if it has any,
    else its .bin/.pt/.ckpt/.png files."""
    found = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in EMBEDDING_SUFFIXES
    )
    safetensors = [p for p in found if p.suffix.lower() == ".safetensors"]
    return safetensors or found


def _read_folder(folder: Path, limits: tuple[int, int]) -> Embedding:
    files = embedding_files(folder)
    if not files:
        raise InvalidEmbedding(
            f"the folder holds no embedding file ({', '.join(EMBEDDING_SUFFIXES)})"
        )
    if len(files) == 1:
        return named_by_file(_read_bytes(_load(files[0], limits), limits), files[0].stem)
    if len(files) == 2:
        return _read_pair(files, limits)
    names = ", ".join(p.name for p in files[:4])
    raise InvalidEmbedding(
        f"the folder holds {len(files)} candidate files ({names}...); give the file to read"
    )
