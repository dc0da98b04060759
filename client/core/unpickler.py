"""A restricted reader for torch pickles (``.pt``/``.bin``) that never runs pickled code.

``torch.load`` and ``pickle.load`` execute whatever callables a pickle names, so a community
``.pt`` file can run arbitrary code. Here a :class:`pickle.Unpickler` subclass admits only the
handful of globals that plain tensors need (tensor rebuild functions, typed storage classes,
``OrderedDict``); every other global is refused with :class:`UnsafePickle` naming it, *before*
anything is called. Storages are read as numpy arrays, so tensors come back as numpy arrays and
torch is never imported. The containers around the pickle (zip and legacy torch files) are read
in :mod:`client.core.torchfile`.

Anything read is capped: the pickle by the caller's file-size limit, the number of storages,
elements per tensor, and nesting depth and object count of the result.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import pickletools
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np

from .errors import InvalidEmbedding, LexiconError, UnsafePickle

MAX_STORAGES = 256
MAX_TENSOR_ELEMENTS = 8 * 1024 * 1024
MAX_DEPTH = 32
MAX_NODES = 100_000
MAX_MEMO = MAX_NODES  # memo slots; honest pickles number them 0, 1, 2...

_STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype(np.float32),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "DoubleStorage": np.dtype(np.float64),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
    "UntypedStorage": np.dtype(np.uint8),
}
_TORCH_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype(np.float32),
    "float": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
    "half": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float64": np.dtype(np.float64),
    "double": np.dtype(np.float64),
    "int64": np.dtype(np.int64),
    "long": np.dtype(np.int64),
    "int32": np.dtype(np.int32),
    "int16": np.dtype(np.int16),
    "int8": np.dtype(np.int8),
    "uint8": np.dtype(np.uint8),
    "bool": np.dtype(np.bool_),
}


@dataclass(frozen=True, slots=True)
class StorageType:
    """Stands in for ``torch.FloatStorage`` & co.: only its dtype matters."""

    name: str
    dtype: np.dtype

    def __setstate__(self, state: Any) -> None:
        raise InvalidEmbedding(f"the pickle tries to change torch.{self.name}")


@dataclass(frozen=True, slots=True)
class TorchDtype:
    """Stands in for ``torch.float32`` & co."""

    name: str
    dtype: np.dtype

    def __setstate__(self, state: Any) -> None:
        raise InvalidEmbedding(f"the pickle tries to change torch.{self.name}")


@dataclass
class Storage:
    """A storage's dtype and (once read) its elements; ``view_of``/``view_offset`` for legacy
    storage views."""

    key: str
    dtype: np.dtype
    numel: int
    array: np.ndarray | None = None
    view_of: Storage | None = None
    view_offset: int = 0

    def elements(self) -> np.ndarray:
        if self.view_of is not None:
            root = self.view_of.elements()
            return root[self.view_offset : self.view_offset + self.numel]
        if self.array is None:
            raise InvalidEmbedding(f"storage {self.key!r} has no data in the file")
        return self.array


@dataclass
class Tensor:
    """A tensor waiting for its storage (legacy files store data after the pickle)."""

    storage: Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: np.dtype | None = None

    def __setstate__(self, state: Any) -> None:  # BUILD on a tensor: ignore extra state
        return None

    def numpy(self) -> np.ndarray:
        data = self.storage.elements()
        if self.dtype is not None and self.dtype != data.dtype:
            raise InvalidEmbedding(
                f"tensor dtype {self.dtype} does not match its storage dtype {data.dtype}"
            )
        count = math.prod(self.size)
        if count > MAX_TENSOR_ELEMENTS:
            raise InvalidEmbedding(f"a tensor of shape {list(self.size)} is far too large")
        if count == 0:
            return np.zeros(self.size, dtype=data.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        if self.offset < 0 or any(s < 0 for s in self.stride) or last >= len(data):
            raise InvalidEmbedding(
                f"a tensor of shape {list(self.size)} reaches past the end of its storage "
                f"({len(data)} elements); the file is corrupt"
            )
        # A stride along a dimension of size 1 addresses nothing; numpy still needs it to fit
        # in 64 bits, so it becomes 0 (a pickled (1,) tensor with stride 2**62 is not corrupt).
        pairs = zip(self.size, self.stride, strict=True)
        strides = [s * data.itemsize if n > 1 else 0 for n, s in pairs]
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=self.size, strides=strides, writeable=False
        )
        return np.array(view, copy=True)


class ModuleStub:
    """Stands in for ``torch.nn.ParameterDict``: records the pickled state, runs nothing."""

    def __init__(self, *args: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def parameters(self) -> dict[str, Any]:
        state = getattr(self, "state", None)
        state = state if isinstance(state, dict) else {}
        params = state.get("_parameters")
        return dict(params) if isinstance(params, dict) else {}


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise InvalidEmbedding(f"tensor {what} {value!r} is not a tuple of integers")
    if len(value) > 8:
        raise InvalidEmbedding(f"tensor has {len(value)} dimensions")
    return tuple(value)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> Tensor:
    if not isinstance(storage, Storage):
        raise InvalidEmbedding("a tensor in the pickle does not point at a storage")
    if not isinstance(storage_offset, int):
        raise InvalidEmbedding("a tensor in the pickle has a non-integer storage offset")
    size_t, stride_t = _ints(size, "size"), _ints(stride, "stride")
    if len(size_t) != len(stride_t):
        raise InvalidEmbedding("a tensor in the pickle has mismatched size and stride")
    if any(n < 0 or n > MAX_TENSOR_ELEMENTS for n in size_t):  # numpy raises on either
        raise InvalidEmbedding(f"a tensor in the pickle has an impossible size {list(size_t)}")
    return Tensor(storage, storage_offset, size_t, stride_t)


def _rebuild_tensor_v2(
    storage: Any, storage_offset: Any, size: Any, stride: Any, *_rest: Any
) -> Tensor:
    return _rebuild_tensor(storage, storage_offset, size, stride)


class _ReinterpretedStorage(Storage):
    """An untyped (byte) storage read as elements of ``dtype`` (``_rebuild_tensor_v3``)."""

    def __init__(self, base: Storage, dtype: np.dtype) -> None:
        super().__init__(base.key, dtype, base.numel // dtype.itemsize)
        self.base = base

    def elements(self) -> np.ndarray:
        raw = self.base.elements()
        usable = len(raw) - len(raw) % self.dtype.itemsize
        return raw[:usable].view(self.dtype)


def _rebuild_tensor_v3(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    _grad: Any,
    _hooks: Any,
    dtype: Any,
    *_rest: Any,
) -> Tensor:
    tensor = _rebuild_tensor(storage, storage_offset, size, stride)
    if not isinstance(dtype, TorchDtype):
        raise InvalidEmbedding("a tensor in the pickle names no known dtype")
    if storage.dtype != dtype.dtype:
        if storage.dtype != np.dtype(np.uint8):
            raise InvalidEmbedding("a tensor's dtype does not match its storage")
        tensor.storage = _ReinterpretedStorage(storage, dtype.dtype)
    return tensor


def _rebuild_parameter(data: Any, *_rest: Any) -> Any:
    if not isinstance(data, Tensor):
        raise InvalidEmbedding("a parameter in the pickle holds no tensor")
    return data


def _set(items: Any = ()) -> set[Any]:
    """``builtins.set`` as protocol-2 pickles of modules use it (``_non_persistent_buffers_set``);
    only strings and numbers may go in."""
    values = list(items)
    if not all(isinstance(v, str | int | float) for v in values):
        raise InvalidEmbedding("a set in the pickle holds something other than names")
    return set(values)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch.nn.modules.container", "ParameterDict"): ModuleStub,
        ("builtins", "set"): _set,
        ("__builtin__", "set"): _set,
    }
    for name, dtype in _STORAGE_DTYPES.items():
        for module in ("torch", "torch.cuda", "torch.storage"):
            allowed[(module, name)] = StorageType(name, dtype)
    for name, dtype in _TORCH_DTYPES.items():
        allowed[("torch", name)] = TorchDtype(name, dtype)
    return allowed


ALLOWED_GLOBALS = _allowed_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """Admits only :data:`ALLOWED_GLOBALS`; storages come from ``load_storage``."""

    def __init__(self, file: io.BytesIO, load_storage: Any = None) -> None:
        super().__init__(file)
        self._load_storage = load_storage
        self.storages: dict[str, Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            found = ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickle(
                f"refused pickle global {module}.{name}: the file asks to run code, "
                "not just to hold tensors"
            ) from None
        # A fresh stand-in per load (and slotted, so BUILD cannot rewrite it): one hostile
        # pickle must not change how the next file is read.
        if isinstance(found, StorageType | TorchDtype):
            return type(found)(found.name, found.dtype)
        return found

    def persistent_load(self, pid: Any) -> Any:
        if self._load_storage is None:
            raise InvalidEmbedding("the pickle refers to external storages but is no torch file")
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] in ("storage", b"storage")):
            raise InvalidEmbedding(f"the pickle holds an unknown persistent id {pid!r:.60}")
        storage_type, key, location, numel = pid[1:5]
        if not isinstance(storage_type, StorageType):
            raise InvalidEmbedding("a storage in the pickle names no storage type")
        if isinstance(key, bytes):
            key = key.decode("ascii", "replace")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise InvalidEmbedding("a storage in the pickle has a malformed key or size")
        if not isinstance(location, str | bytes):  # "cpu", "cuda:0"... all read to the CPU
            raise InvalidEmbedding("a storage in the pickle has a malformed location")
        storage = self.storages.get(key)
        if storage is None:
            if len(self.storages) >= MAX_STORAGES:
                raise InvalidEmbedding(f"the pickle holds more than {MAX_STORAGES} storages")
            storage = Storage(key, storage_type.dtype, numel)
            self._load_storage(storage)
            self.storages[key] = storage
        view = pid[5] if len(pid) > 5 else None
        if view is not None:  # legacy (view_key, offset, size)
            try:
                view_key, offset, size = view
            except (TypeError, ValueError):
                raise InvalidEmbedding("a storage view in the pickle is malformed") from None
            if not (
                isinstance(offset, int) and isinstance(size, int) and offset >= 0 and size >= 0
            ):
                raise InvalidEmbedding("a storage view in the pickle has a bad offset or size")
            return Storage(str(view_key), storage.dtype, size, view_of=storage, view_offset=offset)
        return storage


def materialize(obj: Any, depth: int = 0, count: list[int] | None = None) -> Any:
    """The loaded object with every :class:`Tensor` turned into a numpy array."""
    count = count if count is not None else [0]
    count[0] += 1
    if depth > MAX_DEPTH or count[0] > MAX_NODES:
        raise InvalidEmbedding("the pickle nests too deeply or holds too many objects")
    if isinstance(obj, Tensor):
        return obj.numpy()
    if isinstance(obj, ModuleStub):
        obj = obj.parameters()
    if isinstance(obj, dict):
        return {k: materialize(v, depth + 1, count) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(materialize(v, depth + 1, count) for v in obj)
    return obj


def _check_opcodes(data: bytes) -> None:
    """Walk the opcodes with :mod:`pickletools` (pure Python; it builds and runs nothing) before
    CPython's unpickler sees them: that one sizes its memo array to the largest PUT index and
    allocates a length-prefixed string before reading it, so one damaged byte
    (``LONG_BINPUT 1175087203``) cost 9 GB and two minutes (found by tests/core fuzzing)."""
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and not 0 <= arg < MAX_MEMO:
                raise InvalidEmbedding(
                    f"the pickle stores an object at memo slot {arg}; honest pickles number "
                    f"their memo from 0 (at most {MAX_MEMO}), so the file is corrupt or hostile"
                )
            if opcode.name == "FRAME" and arg > len(data):
                raise InvalidEmbedding(f"the pickle announces a {arg}-byte frame; it is corrupt")
    except LexiconError:
        raise
    except Exception as exc:  # noqa: BLE001 - pickletools names the damage in a ValueError
        raise InvalidEmbedding(f"the pickle is truncated or corrupt ({exc})"[:200]) from None


def unpickle(data: bytes, load_storage: Any = None) -> tuple[Any, RestrictedUnpickler, int]:
    _check_opcodes(data)
    stream = io.BytesIO(data)
    unpickler = RestrictedUnpickler(stream, load_storage)
    try:
        obj = unpickler.load()
    except LexiconError:
        raise
    except RecursionError:
        raise InvalidEmbedding("the pickle nests too deeply") from None
    except Exception as exc:  # noqa: BLE001 - every malformed pickle gets one named error
        raise InvalidEmbedding(
            f"the pickle is truncated or corrupt ({type(exc).__name__}: {exc})"[:200]
        ) from None
    return obj, unpickler, stream.tell()


__all__ = [
    "ALLOWED_GLOBALS",
    "ModuleStub",
    "RestrictedUnpickler",
    "Storage",
    "StorageType",
    "Tensor",
    "materialize",
    "unpickle",
]
