"""``lexicon.lock``: the exact embedding versions a project uses, so every machine pulls the
same bytes. TOML (read with ``tomllib``, written here by hand), sorted by reference so the file
diffs cleanly; one table per reference as the user wrote it (normalised by ``Ref``)::

    # This file is written by `hub`; edit it with `hub lock` / `hub pull`, not by hand.
    lock-version = 1

    ["alice/cat:latest"]
    namespace = "alice"
    name = "cat"
    version = 3
    digest = "sha256:…"
    family = "sd15"
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.core.errors import BadRequest, DigestMismatch, LexiconError

from .core.files import atomic_write
from .refs import Ref, parse_ref, validate_digest

LOCK_VERSION = 1
DEFAULT_NAME = "lexicon.lock"
HEADER = "# This file is written by `hub`; edit it with `hub lock` / `hub pull`, not by hand.\n"


class LockfileError(BadRequest):
    """``lexicon.lock`` cannot be read or does not match what is being pinned."""


@dataclass(frozen=True)
class LockEntry:
    namespace: str
    name: str
    version: int
    digest: str
    family: str

    @property
    def ref(self) -> Ref:
        """The exact version this entry pins (by digest: the bytes cannot change under it)."""
        return Ref(self.namespace, self.name, digest=self.digest)


class Lockfile:
    """The pins of one project; ``load`` then ``pin``/``remove`` then ``save``."""

    def __init__(self, path: Path | str, entries: Mapping[str, LockEntry] | None = None) -> None:
        self.path = Path(path)
        self._entries: dict[str, LockEntry] = dict(entries or {})

    @classmethod
    def load(cls, path: Path | str = DEFAULT_NAME) -> Lockfile:
        """Read ``path``; a missing file is an empty lockfile (the first ``save`` creates it)."""
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise LockfileError(f"{path} is not valid TOML ({exc}); {_FIX}") from None
        version = raw.pop("lock-version", None)
        if version != LOCK_VERSION:
            raise LockfileError(
                f"{path} has lock-version {version!r}; this client reads version {LOCK_VERSION}. "
                "Upgrade lexicon-hub, or regenerate the file with `hub lock`"
            )
        entries = {}
        for key, value in raw.items():
            entry = _entry(path, key, value)
            entries[str(Ref.parse(key))] = entry  # `a/b` and `a/b:latest` are one pin
        return cls(path, entries)

    def entries(self) -> dict[str, LockEntry]:
        """Reference string -> pin, sorted by reference."""
        return dict(sorted(self._entries.items()))

    def get(self, ref: str | Ref) -> LockEntry | None:
        return self._entries.get(str(parse_ref(ref)))

    def pin(self, ref: str | Ref, version_info: Mapping[str, Any]) -> LockEntry:
        """Record what ``ref`` resolved to; ``version_info`` is the registry's version JSON.
        Refuses a version that is not the one ``ref`` names, so a lockfile never lies."""
        ref = parse_ref(ref)
        try:
            entry = LockEntry(
                namespace=str(version_info["namespace"]),
                name=str(version_info["name"]),
                version=int(version_info.get("number", version_info.get("version"))),
                digest=validate_digest(str(version_info["digest"])),
                family=str(version_info["family"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LockfileError(f"version data for {ref} lacks {exc}; cannot pin it") from None
        if (entry.namespace, entry.name) != (ref.namespace, ref.name):
            raise LockfileError(f"cannot pin {ref} to a version of {entry.namespace}/{entry.name}")
        if ref.version is not None and ref.version != entry.version:
            raise LockfileError(f"cannot pin {ref} to version {entry.version}")
        if ref.digest is not None and ref.digest != entry.digest:
            raise DigestMismatch(f"{ref} resolved to {entry.digest}; refusing to pin it")
        self._entries[str(ref)] = entry
        return entry

    def remove(self, ref: str | Ref) -> bool:
        return self._entries.pop(str(parse_ref(ref)), None) is not None

    def dumps(self) -> str:
        """Stable text: same pins, same bytes, whatever order they were added in."""
        lines = [HEADER, f"lock-version = {LOCK_VERSION}\n"]
        for key, e in self.entries().items():
            lines.append(f"\n[{_toml_str(key)}]\n")
            lines.append(f"namespace = {_toml_str(e.namespace)}\n")
            lines.append(f"name = {_toml_str(e.name)}\n")
            lines.append(f"version = {e.version}\n")
            lines.append(f"digest = {_toml_str(e.digest)}\n")
            lines.append(f"family = {_toml_str(e.family)}\n")
        return "".join(lines)

    def save(self) -> Path:
        atomic_write(self.path, self.dumps().encode("utf-8"))
        return self.path


_FIX = "fix it, or delete it and run `hub lock` again"


def _entry(path: Path, key: str, value: Any) -> LockEntry:
    """Validate one table: names, version and digest are checked as if typed by a user."""
    try:
        ref = Ref.parse(key)
        if not isinstance(value, dict):
            raise TypeError("not a table")
        entry = LockEntry(
            namespace=value["namespace"],
            name=value["name"],
            version=value["version"],
            digest=validate_digest(value["digest"]),
            family=value["family"],
        )
        Ref(entry.namespace, entry.name, version=entry.version)
        if not isinstance(entry.family, str) or (ref.namespace, ref.name) != (
            entry.namespace,
            entry.name,
        ):
            raise ValueError("namespace/name/family do not match the reference")
    except (KeyError, TypeError, ValueError, LexiconError) as exc:
        raise LockfileError(f"{path}: entry [{key!r}] is invalid ({exc}); {_FIX}") from None
    return entry


def _toml_str(value: str) -> str:
    """A TOML basic string: escapes quotes, backslashes and every control character."""
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
