"""Diffusers' own ``textual_inversion.py``, run on the toy world and judged like ours (issue 11).

``bench/baseline_ti.py`` re-implements the reference; this bench runs the real script, unmodified,
as a subprocess on the toy-world pipeline (saved fp32 to a temp folder) and the 5 training images
``bench/toy_quality.py`` uses, then loads its ``learned_embeds.safetensors`` the way a user would
(``client.inject.load_embedding``, through ``toy_quality.embedding_accuracy``), generates N images
from "a photo of a <t>" and judges them. In the same run, with the same images, steps, learning
rate, batch and seed: our trainer (``train_embedding``, early stopping off) and ``baseline_ti``.

The script is not shipped with diffusers' wheel, and third-party code stays out of this repo, so
bring your own copy (any diffusers commit whose ``check_min_version`` the installed diffusers
meets; measured with main at 1eeddd0b, which asks for 0.36.0.dev0):

    curl -L -o /tmp/textual_inversion.py https://raw.githubusercontent.com/huggingface/diffusers/\
main/examples/textual_inversion/textual_inversion.py
    HF_HUB_OFFLINE=1 .venv/bin/python bench/diffusers_reference.py \
        --script /tmp/textual_inversion.py --batch 1,4

What the script runs with, and its departures (both from a ``sitecustomize.py`` put on the
subprocess's PYTHONPATH only; the script's file is untouched):

- torchvision is not installed here (and must not be): a stand-in package gives the one thing the
  script uses, ``transforms.RandomHorizontalFlip(p)`` over PIL images (``torch.rand(1) < p``, as
  torchvision's). It becomes importable only after transformers and diffusers have checked for
  torchvision (they cache "absent"), so their own vision code never sees it;
- transformers 5 dropped ``CLIPTextModel.text_model`` (the modules sit one level up), which the
  script uses to freeze the encoder: without an alias it stops with ``AttributeError:
  'CLIPTextModel' object has no attribute 'text_model'``. The alias (a property returning the
  model itself) changes no computation; ``--no-alias`` runs without it to show the error;
- ``--report_to all`` (no tracker package installed: accelerate logs to none),
  ``--lr_scheduler constant --lr_warmup_steps 0``, saves and checkpoints past the last step,
  ``CUDA_VISIBLE_DEVICES=""``, ``HF_HUB_OFFLINE=1`` and ``OMP_NUM_THREADS`` = ``--threads``
  (ours and baseline_ti run on ``torch.set_num_threads(--threads)`` in this process).

Times: "train s" is each loop's own: the script's from its first tqdm output ("Steps:") to its
"Saving embeddings" log line, read as they arrive (tqdm's own elapsed in brackets); ours
``TrainingResult.wall_s`` (set-up and latent cache included); baseline_ti's ``wall_s`` (after its
set-up). "train CPU s": CPU seconds over the same span for the script (from /proc at the two
marks), over the whole call for ours and baseline_ti; on a shared machine it moves less with load
than wall time. "call s": the whole subprocess (imports, loading) or call. "load": 1-minute load
average after the row.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.toy_quality import embedding_accuracy, train_images  # noqa: E402
from client.core.training import TrainingParams  # noqa: E402
from client.toy_world import data  # noqa: E402
from client.toy_world.pipeline import load_toy_pipeline, save_toy_pipeline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

SITECUSTOMIZE = '''"""Loaded by the reference script's interpreter only (diffusers_reference.py)."""
import os
import sys

from transformers.utils import import_utils as _tf

_tf.is_torchvision_available()  # cached False before the stand-in can be found
_tf.is_torchvision_v2_available()
import diffusers.utils.import_utils  # noqa: E402,F401  (its torchvision check runs at import)

sys.path.append(os.path.join(os.path.dirname(__file__), "stand_ins"))
if os.environ.get("TI_TEXT_MODEL_ALIAS") == "1":
    from transformers import CLIPTextModel

    if not hasattr(CLIPTextModel, "text_model"):
        CLIPTextModel.text_model = property(lambda self: self)
'''

TRANSFORMS = '''"""Stand-in for torchvision.transforms: only what textual_inversion.py uses."""
import torch
from PIL import Image


class RandomHorizontalFlip:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        if torch.rand(1) < self.p:
            return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return img
'''


def write_stand_ins(folder: Path) -> Path:
    (folder / "stand_ins" / "torchvision").mkdir(parents=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (folder / "stand_ins" / "torchvision" / "__init__.py").write_text("")
    (folder / "stand_ins" / "torchvision" / "transforms.py").write_text(TRANSFORMS)
    return folder


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc; nan elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_script(args: Any, work: Path, model: Path, images: Path, batch: int) -> dict[str, Any]:
    """The reference as a subprocess; returns its vectors, loop and process seconds."""
    from safetensors.numpy import load_file

    out = work / f"out-b{batch}"
    cmd = [
        sys.executable, str(args.script),
        "--pretrained_model_name_or_path", str(model), "--train_data_dir", str(images),
        "--placeholder_token", "<t>", "--initializer_token", args.initializer,
        "--resolution", str(data.SIZE), "--train_batch_size", str(batch),
        "--max_train_steps", str(args.steps), "--learning_rate", str(args.lr),
        "--lr_scheduler", "constant", "--lr_warmup_steps", "0", "--output_dir", str(out),
        "--seed", str(args.seed), "--report_to", "all", "--save_steps", "1000000",
        "--checkpointing_steps", "1000000", "--dataloader_num_workers", "0",
    ]  # fmt: skip
    env = dict(
        os.environ,
        PYTHONPATH=str(work / "shim"),
        CUDA_VISIBLE_DEVICES="",
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS=str(args.threads),
        PYTHONUNBUFFERED="1",
        TI_TEXT_MODEL_ALIAS="0" if args.no_alias else "1",
    )
    marks: dict[bytes, tuple[float, float] | None] = {b"Steps:": None, b"Saving embeddings": None}
    log = bytearray()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    while chunk := os.read(proc.stdout.fileno(), 65536):
        log += chunk
        now = (time.perf_counter(), cpu_seconds(proc.pid))
        for mark, seen in marks.items():
            if seen is None and mark in log:
                marks[mark] = now
    rc = proc.wait()
    process_s = time.perf_counter() - started
    (work / f"log-b{batch}.txt").write_bytes(log)
    if rc != 0:
        tail = log.decode(errors="replace").replace("\r", "\n").strip().splitlines()[-6:]
        sys.exit(f"textual_inversion.py failed (exit {rc}); its last lines:\n" + "\n".join(tail))
    start, end = marks[b"Steps:"], marks[b"Saving embeddings"]
    if start is None or end is None:
        sys.exit(f"no tqdm/log marks in the script's output; see {work}/log-b{batch}.txt")
    tqdm = re.findall(rf"{args.steps}/{args.steps} \[(\d+):(\d+)<".encode(), log)
    vectors = load_file(str(out / "learned_embeds.safetensors"))["<t>"]
    return {
        "vectors": vectors,
        "train_s": end[0] - start[0],
        "cpu_s": end[1] - start[1],
        "tqdm_s": int(tqdm[-1][0]) * 60 + int(tqdm[-1][1]) if tqdm else None,
        "call_s": process_s,
    }


def run_ours(args: Any, pipe: Any, concept: tuple[str, str], batch: int) -> dict[str, Any]:
    from trainer_service.training import train_embedding

    params = TrainingParams(
        trigger="<t>", initializer=args.initializer, steps=args.steps, learning_rate=args.lr,
        batch_size=batch, seed=args.seed, early_stop=False, device="cpu",
    )  # fmt: skip
    started, cpu = time.perf_counter(), time.process_time()
    result = train_embedding(pipe, train_images(concept), params)
    return {
        "vectors": result.embedding.vectors["emb_params"],
        "train_s": result.wall_s,
        "cpu_s": time.process_time() - cpu,
        "call_s": time.perf_counter() - started,
    }


def run_baseline(args: Any, pipe: Any, concept: tuple[str, str], batch: int) -> dict[str, Any]:
    from bench.baseline_ti import train_baseline

    pngs = []
    for image in train_images(concept):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        pngs.append(buf.getvalue())
    started, cpu = time.perf_counter(), time.process_time()
    out = train_baseline(
        pipe, pngs, trigger="<t>", initializer=args.initializer, steps=args.steps,
        learning_rate=args.lr, batch_size=batch, resolution=data.SIZE, seed=args.seed,
    )  # fmt: skip
    return {
        "vectors": out["vectors"],
        "train_s": out["wall_s"],
        "cpu_s": time.process_time() - cpu,
        "call_s": time.perf_counter() - started,
    }


def weights_version() -> str:
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run(
        [*git, "log", "-1", "--format=%h", "--", "client/toy_world/weights"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "client/toy_world/weights"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    return f"{commit or 'unknown'}{' (uncommitted changes)' if dirty else ''}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--script", type=Path, help="your copy of diffusers' textual_inversion.py")
    ap.add_argument("--pipeline", help="toy pipeline folder (default: the committed weights)")
    ap.add_argument("--concept", default="green-star", choices=sorted(data.HELD_OUT))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--batch", default="1", help="batch sizes, comma-separated (e.g. 1,4)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=32, help="images judged per trainer")
    ap.add_argument("--initializer", default="shape")
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads, all trainers")
    ap.add_argument("--runs", default="script,ours,baseline")
    ap.add_argument("--no-alias", action="store_true", help="no CLIPTextModel.text_model alias")
    args = ap.parse_args()
    if args.script is None or not args.script.is_file():
        sys.exit(
            f"no textual_inversion.py at {args.script}: diffusers' wheel does not ship it. Copy "
            "examples/textual_inversion/textual_inversion.py from the diffusers repository "
            "(see this file's docstring for the curl line) and pass it as --script PATH."
        )
    import torch

    torch.set_num_threads(args.threads)
    concept = data.HELD_OUT[args.concept]
    runs = args.runs.split(",")
    train_pipe, eval_pipe = load_toy_pipeline(args.pipeline), load_toy_pipeline(args.pipeline)
    print(f"toy-world weights: {args.pipeline or 'committed, ' + weights_version()}; "
          f"concept {args.concept}; {args.steps} steps, lr {args.lr}, seed {args.seed}, "
          f"N {args.n}, threads {args.threads}")  # fmt: skip
    print("\n| trainer | batch | steps | judge accuracy | train s | train CPU s | call s | load |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="diffusers-ti-") as tmp:
        work = Path(tmp)
        write_stand_ins(work / "shim")
        save_toy_pipeline(load_toy_pipeline(args.pipeline), work / "model", half=False)
        (work / "images").mkdir()
        for i, image in enumerate(train_images(concept)):
            image.save(work / "images" / f"{i}.png")
        trainers = {
            "script": ("diffusers textual_inversion.py", lambda b: run_script(
                args, work, work / "model", work / "images", b)),
            "ours": ("ours (train_embedding, no early stop)", lambda b: run_ours(
                args, train_pipe, concept, b)),
            "baseline": ("baseline_ti", lambda b: run_baseline(args, train_pipe, concept, b)),
        }  # fmt: skip
        for batch in [int(b) for b in args.batch.split(",")]:
            for key in runs:
                name, train = trainers[key]
                res = train(batch)
                acc, _ = embedding_accuracy(eval_pipe, res["vectors"], concept, args.n)
                extra = f" (tqdm {res['tqdm_s']} s)" if res.get("tqdm_s") is not None else ""
                load = os.getloadavg()[0]
                print(f"| {name} | {batch} | {args.steps} | {acc:.0%} | {res['train_s']:.1f}"
                      f"{extra} | {res['cpu_s']:.1f} | {res['call_s']:.1f} | {load:.1f} |",
                      flush=True)  # fmt: skip
    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}; "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip


if __name__ == "__main__":
    main()
