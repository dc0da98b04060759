"""Rebuild the toy world's committed weights, or check that a rebuild gives the same bytes.

    .venv/bin/python scripts/toy_world_weights.py --check   # rebuild, compare, write nothing
    .venv/bin/python scripts/toy_world_weights.py --write   # rebuild into client/toy_world/weights
    .venv/bin/python scripts/toy_world_weights.py --check --from DIR   # compare the output of
                                                # `hub dev toy-world DIR --rebuild` instead

The committed weights are the rebuild (``client.toy_world.build``, default ``BuildConfig``: seed
0, one torch thread, deterministic algorithms) saved in fp16; ``SHA256SUMS.txt`` holds the
digests of their three safetensors files. A rebuild takes about 11 minutes of one idle core; the
same torch version and CPU kind give the same bytes (a different CPU instruction set may not).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from client.toy_world.pipeline import WEIGHTS_DIR  # noqa: E402

SUMS = "SHA256SUMS.txt"
FILES = (
    "text_encoder/model.safetensors",
    "unet/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
)


def digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


def committed_digests() -> dict[str, str]:
    out = {}
    for line in (WEIGHTS_DIR / SUMS).read_text().splitlines():
        digest, name = line.split()
        out[name.removeprefix("./")] = digest
    return out


def rebuilt_pipeline(source: str | None):
    """The pipeline from a finished rebuild folder, or rebuilt here and now."""
    from client.toy_world.build import BuildConfig, build_toy_pipeline
    from client.toy_world.pipeline import load_toy_pipeline

    if source:
        return load_toy_pipeline(source)
    return build_toy_pipeline(BuildConfig(), log=lambda m: print(m, file=sys.stderr, flush=True))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="compare with SHA256SUMS.txt")
    mode.add_argument("--write", action="store_true", help="replace the committed weights")
    ap.add_argument("--from", dest="source", help="a `hub dev toy-world --rebuild` output folder")
    args = ap.parse_args()
    from client.toy_world.pipeline import save_toy_pipeline

    pipe = rebuilt_pipeline(args.source)
    if args.write:
        save_toy_pipeline(pipe, WEIGHTS_DIR, half=True)
        sums = digests(WEIGHTS_DIR)
        (WEIGHTS_DIR / SUMS).write_text("".join(f"{d}  ./{n}\n" for n, d in sums.items()))
        print(f"wrote {WEIGHTS_DIR} and {SUMS}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        save_toy_pipeline(pipe, tmp, half=True)
        got, want = digests(Path(tmp)), committed_digests()
    for name in FILES:
        same = "same" if got[name] == want.get(name) else f"DIFFERENT (committed {want.get(name)})"
        print(f"{name}: {got[name]} {same}")
    return 0 if got == want else 1


if __name__ == "__main__":
    raise SystemExit(main())
