"""The hostile-input corpus: every class of attack on the registry and the client, as data.

    python -m tests.attack.hostile_corpus OUT_DIR

writes each hostile file to ``OUT_DIR/files/``, each hostile request to
``OUT_DIR/requests/<name>.json`` (multipart parts beside it), and ``OUT_DIR/manifest.json``
(every case with the error codes it must be refused with). ``tests/attack/test_hostile_corpus.py``
imports :func:`build_corpus` and pushes every case through the client and raw to the API.

A code-running pickle in the corpus would create ``<marker_dir>/pwned-*``; nothing may.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .cases import FileCase, RequestCase
from .hostile_files import pickle_cases, zip_cases
from .hostile_pngs import png_cases
from .hostile_requests import request_cases
from .hostile_tensors import junk_cases, malformed_cases, value_cases
from .hostile_training import training_cases


@dataclass(frozen=True)
class Corpus:
    files: list[FileCase]
    requests: list[RequestCase]
    marker_dir: Path

    def __len__(self) -> int:
        return len(self.files) + len(self.requests)

    def kinds(self) -> dict[str, int]:
        return dict(Counter(c.kind for c in [*self.files, *self.requests]))


def build_corpus(marker_dir: Path) -> Corpus:
    """Every case; pickles that would run code point their payload into ``marker_dir``."""
    files = [
        *pickle_cases(marker_dir),
        *zip_cases(),
        *png_cases(),
        *malformed_cases(),
        *value_cases(),
        *junk_cases(),
    ]
    corpus = Corpus(files, [*request_cases(), *training_cases()], marker_dir)
    names = [c.name for c in [*corpus.files, *corpus.requests]]
    duplicates = sorted(n for n, k in Counter(names).items() if k > 1)
    if duplicates:
        raise ValueError(f"case names must be unique: {duplicates}")
    return corpus


@cache
def shared_corpus() -> Corpus:
    """One corpus per test process (building it compresses ~200 MiB of bombs), its markers in a
    fresh temporary folder."""
    return build_corpus(Path(tempfile.mkdtemp(prefix="lexicon-attack-markers-")))


def write_corpus(out_dir: Path) -> Corpus:
    corpus = build_corpus(out_dir)
    (out_dir / "files").mkdir(parents=True, exist_ok=True)
    (out_dir / "requests").mkdir(parents=True, exist_ok=True)
    for case in corpus.files:
        (out_dir / "files" / f"{case.name}--{case.filename}").write_bytes(case.data)
    for case in corpus.requests:
        for i, part in enumerate(case.parts):
            (out_dir / "requests" / f"{case.name}.part{i}-{part.field}").write_bytes(part.data)
        if case.body is not None:
            (out_dir / "requests" / f"{case.name}.body").write_bytes(case.body)
        (out_dir / "requests" / f"{case.name}.json").write_text(json.dumps(case.manifest()))
    manifest = {
        "cases": len(corpus),
        "kinds": corpus.kinds(),
        "files": [c.manifest() for c in corpus.files],
        "requests": [c.manifest() for c in corpus.requests],
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return corpus


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.attack.hostile_corpus OUT_DIR", file=sys.stderr)
        return 2
    corpus = write_corpus(Path(argv[0]))
    print(f"{len(corpus)} cases ({len(corpus.files)} files, {len(corpus.requests)} requests)")
    for kind, count in sorted(corpus.kinds().items()):
        print(f"  {count:4d}  {kind}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
