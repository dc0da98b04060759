"""Hostile embedding files: code-running pickles and torch zips with traversal members or bombs
(PNG bombs are in ``hostile_pngs.py``, malformed safetensors and bad values in
``hostile_tensors.py``).

Built by hand from bytes (no torch needed): pickles from opcodes, zips with ``zipfile``,
safetensors headers with ``json``. A pickle that ran would create a file under ``marker_dir``;
the tests assert that none ever appears.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from client.core.errors import ErrorCode as E

from .cases import NOT_SAFETENSORS, FileCase, codes

UNSAFE = codes(E.UNSAFE_PICKLE)
UNSAFE_OR_INVALID = codes(E.UNSAFE_PICKLE, E.INVALID_EMBEDDING)
INVALID = codes(E.INVALID_EMBEDDING)
BOMB = codes(E.INVALID_EMBEDDING, E.TOO_LARGE)
TORCH_MAGIC = 0x1950A86A20F9469CFC6C


def _vectors(n: int = 1, width: int = 768, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, width)).astype(np.float32)


# -- pickles ------------------------------------------------------------------------------------


def _p0(module: str, name: str, arg: str) -> bytes:
    """Protocol 0: GLOBAL module.name, REDUCE with one string argument."""
    return f"c{module}\n{name}\n(S{arg!r}\ntR.".encode()


def _p2(module: str, name: str, arg: str, *, wrap: str | None = None) -> bytes:
    """Protocol 2: GLOBAL + REDUCE, optionally as the value of ``{wrap: ...}``."""
    call = (
        b"c"
        + module.encode()
        + b"\n"
        + name.encode()
        + b"\n"
        + b"X"
        + struct.pack("<I", len(arg.encode()))
        + arg.encode()
        + b"\x85R"
    )
    if wrap is None:
        return b"\x80\x02" + call + b"."
    key = wrap.encode()
    return b"\x80\x02}X" + struct.pack("<I", len(key)) + key + call + b"s."


def _p4_stack_global(module: str, name: str, arg: str) -> bytes:
    """Protocol 4: SHORT_BINUNICODE module, name, STACK_GLOBAL, then REDUCE."""

    def s(text: str) -> bytes:
        raw = text.encode()
        return b"\x8c" + bytes([len(raw)]) + raw

    return (
        b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00"
        + s(module)
        + s(name)
        + b"\x93"
        + (b"X" + struct.pack("<I", len(arg.encode())) + arg.encode() + b"\x85R.")
    )


def _torch_zip(members: dict[str, bytes], *, deflate: bool = False) -> bytes:
    out = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            archive.writestr(info, data)
    return out.getvalue()


def _legacy(obj_pickle: bytes) -> bytes:
    """A legacy torch file: magic, protocol version, sys_info, then the object pickle."""
    head = pickle.dumps(TORCH_MAGIC, 2) + pickle.dumps(1001, 2)
    return head + pickle.dumps({"little_endian": True}, 2) + obj_pickle


def _valid_data_pkl(root_key: str = "0") -> bytes:
    """data.pkl of ``{"emb_params": tensor[1, 768]}`` as torch writes it (persistent storage
    id, ``torch._utils._rebuild_tensor_v2``), from opcodes."""
    key = root_key.encode()
    storage = (
        b"(X\x07\x00\x00\x00storage"
        + b"ctorch\nFloatStorage\n"
        + b"X"
        + struct.pack("<I", len(key))
        + key
        + b"X\x03\x00\x00\x00cpu"
        + b"M\x00\x03"  # 768
        + b"tQ"  # TUPLE, BINPERSID
    )
    rebuild = (
        b"ctorch._utils\n_rebuild_tensor_v2\n("
        + storage
        + b"K\x00"  # offset 0
        + b"K\x01M\x00\x03\x86"  # size (1, 768)
        + b"M\x00\x03K\x01\x86"  # stride (768, 1)
        + b"\x89"  # requires_grad False
        + b"ccollections\nOrderedDict\n)R"
        + b"tR"
    )
    return b"\x80\x02}X\n\x00\x00\x00emb_params" + rebuild + b"s."


def _valid_zip_members(root: str = "archive", key: str = "0") -> dict[str, bytes]:
    return {
        f"{root}/data.pkl": _valid_data_pkl(key),
        f"{root}/byteorder": b"little",
        f"{root}/data/{key}": _vectors().tobytes(),
        f"{root}/version": b"3\n",
    }


def pickle_cases(marker_dir: Path) -> Iterator[FileCase]:
    def cmd(tag: str) -> str:
        return f"touch {marker_dir / ('pwned-' + tag)}"

    py = f"open({str(marker_dir / 'pwned-py')!r}, 'w').close()"
    table = [
        ("os-system-p0", _p0("os", "system", cmd("a")), UNSAFE),
        ("posix-system-p0", _p0("posix", "system", cmd("b")), UNSAFE),
        ("nt-system-p0", _p0("nt", "system", cmd("c")), UNSAFE),
        ("os-system-p2", _p2("os", "system", cmd("d")), UNSAFE),
        ("os-popen-p2", _p2("os", "popen", cmd("e")), UNSAFE),
        ("subprocess-getoutput", _p2("subprocess", "getoutput", cmd("f")), UNSAFE),
        ("builtins-eval-p2", _p2("builtins", "eval", py), UNSAFE),
        ("builtins-exec-p0", _p0("builtins", "exec", py), UNSAFE),
        ("py2-builtin-eval", _p0("__builtin__", "eval", py), UNSAFE),
        ("stack-global-exec-p4", _p4_stack_global("builtins", "exec", py), UNSAFE),
        ("importlib-import", _p2("importlib", "import_module", "os"), UNSAFE),
        ("runpy-run-path", _p2("runpy", "run_path", "/dev/null"), UNSAFE),
        ("torch-load-nested", _p2("torch", "load", "/dev/null"), UNSAFE),
        ("torch-load-from-bytes", _p2("torch.storage", "_load_from_bytes", "x"), UNSAFE),
        ("numpy-load", _p2("numpy", "load", "/dev/null"), UNSAFE),
        ("inst-opcode", f"(S{cmd('g')!r}\nios\nsystem\n.".encode(), UNSAFE),
        ("obj-opcode", f"(cos\nsystem\nS{cmd('h')!r}\no.".encode(), UNSAFE),
        ("system-as-emb-params", _p2("os", "system", cmd("i"), wrap="emb_params"), UNSAFE),
        (
            "system-in-string-to-param",
            _p2("os", "system", cmd("j"), wrap="string_to_param"),
            UNSAFE,
        ),
        ("ext-registry-opcode", b"\x80\x02\x82\x01.", UNSAFE_OR_INVALID),
        (
            "build-poisons-storage",
            b"\x80\x02ctorch\nFloatStorage\n}X\x05\x00\x00\x00dtypeX\x01\x00\x00\x00xsb.",
            UNSAFE_OR_INVALID,
        ),
        (
            "legacy-torch-os-system",
            _legacy(_p2("os", "system", cmd("k"), wrap="emb_params")),
            UNSAFE,
        ),
        (
            "zip-torch-os-system",
            _torch_zip(
                {"archive/data.pkl": _p2("os", "system", cmd("l")), "archive/version": b"3"}
            ),
            UNSAFE,
        ),
        (
            "zip-torch-eval-beside-tensor",
            _torch_zip(
                {
                    **_valid_zip_members(),
                    "archive/data.pkl": _p2("builtins", "eval", py, wrap="emb_params"),
                }
            ),
            UNSAFE,
        ),
    ]
    for name, data, client in table:
        suffix = ".pt" if name.startswith(("zip-", "legacy-")) else ".bin"
        yield FileCase(
            f"pickle-{name}",
            "code-running pickle",
            f"{name}{suffix}",
            data,
            client,
            NOT_SAFETENSORS,
            "a pickle that asks to run code; it must be refused, never run",
        )
    # Resource exhaustion through the pickle itself.
    laughs = (
        b"\x80\x02]q\x00"
        + b"".join(b"(" + b"h%c" % i * 10 + b"lq%c0" % (i + 1) for i in range(40))
        + b"h%c." % 40
    )
    yield FileCase(
        "pickle-billion-laughs",
        "pickle bomb",
        "laughs.bin",
        laughs,
        INVALID,
        NOT_SAFETENSORS,
        "40 nested lists of 10 references each: materializing it would never end",
    )
    yield FileCase(
        "pickle-huge-string-claim",
        "pickle bomb",
        "claim.bin",
        b"\x80\x04\x8d" + struct.pack("<Q", 1 << 62) + b"x.",
        INVALID,
        NOT_SAFETENSORS,
        "BINUNICODE8 claiming 4 EiB",
    )
    yield FileCase(
        "pickle-deep-nesting",
        "pickle bomb",
        "deep.bin",
        b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b".",
        INVALID,
        NOT_SAFETENSORS,
        "200,000 nested lists",
    )


# -- torch zips: traversal members and bombs ----------------------------------------------------


def zip_cases() -> Iterator[FileCase]:
    traversal = "zip member path traversal"
    yield FileCase(
        "zip-root-is-dotdot",
        traversal,
        "dotdot.pt",
        _torch_zip(_valid_zip_members("..")),
        INVALID,
        NOT_SAFETENSORS,
        "every member under '../' (data.pkl at ../data.pkl)",
    )
    for name, member in (
        ("zip-extra-dotdot-member", "../../../tmp/lexicon-evil.sh"),
        ("zip-extra-absolute-member", "/etc/cron.d/lexicon-evil"),
        ("zip-extra-backslash-member", "..\\..\\lexicon-evil.bat"),
        ("zip-extra-nested-dotdot", "archive/data/../../../lexicon-evil"),
    ):
        members = {**_valid_zip_members(), member: b"#!/bin/sh\necho pwned\n"}
        yield FileCase(
            name,
            traversal,
            f"{name}.pt",
            _torch_zip(members),
            INVALID,
            NOT_SAFETENSORS,
            f"a valid torch file plus a member named {member!r}",
        )
    members = _valid_zip_members(key="../../0")
    yield FileCase(
        "zip-storage-key-dotdot",
        traversal,
        "key.pt",
        _torch_zip(members),
        INVALID,
        NOT_SAFETENSORS,
        "the pickle names storage '../../0'",
    )
    bomb = "zip bomb"
    members = {**_valid_zip_members(), "archive/data/0": b"\0" * (40 << 20)}
    yield FileCase(
        "zip-bomb-storage",
        bomb,
        "bomb.pt",
        _torch_zip(members, deflate=True),
        BOMB,
        NOT_SAFETENSORS,
        "a storage that inflates 40 MiB from ~40 KB",
    )
    members = {**_valid_zip_members(), "archive/data.pkl": b"\x80\x02N." + b"\0" * (40 << 20)}
    yield FileCase(
        "zip-bomb-pickle",
        bomb,
        "bombpkl.pt",
        _torch_zip(members, deflate=True),
        BOMB,
        NOT_SAFETENSORS,
        "data.pkl inflating to 40 MiB",
    )
    many = {**_valid_zip_members(), **{f"archive/junk/{i}": b"" for i in range(5000)}}
    yield FileCase(
        "zip-bomb-members",
        bomb,
        "many.pt",
        _torch_zip(many),
        BOMB,
        NOT_SAFETENSORS,
        "5,000 members",
    )
    spread = {
        **_valid_zip_members(),
        **{f"archive/data/x{i}": b"\0" * (4 << 20) for i in range(9)},
    }
    spread["archive/data.pkl"] = _valid_data_pkl("x0")
    yield FileCase(
        "zip-bomb-spread",
        bomb,
        "spread.pt",
        _torch_zip(spread, deflate=True),
        BOMB,
        NOT_SAFETENSORS,
        "36 MiB over 9 members, each under the per-member cap",
    )
