"""Toy-world quality benchmark: does an embedding trained by our trainer capture a concept?

The toy world (``client/toy_world``) is a tiny Stable-Diffusion-shaped pipeline trained on
coloured shapes; a pixel judge says what each generated image shows. Held-out concepts were drawn
in pre-training but captioned only "a shape", so no words name them. For each held-out concept:
5 renders, an embedding trained by our loop (``trainer_service.training.train_embedding``, what
the worker runs) and by the reference (``bench/baseline_ti.py``), then N images generated from
"a photo of a <token>" (the embedding loaded with ``client.inject.load_embedding``) and judged.

Reported: judge accuracy on renders; caption accuracy for seen concepts ("a red circle");
words-only accuracy for held-out concepts; per run the accuracy at the end, the first evaluated
step reaching 90% and the training seconds to it (evaluation time excluded), and what early
stopping saved. Ours is evaluated every ``--eval-every`` steps; the reference has no hook, so it
is retrained to each step of a doubling grid (50, 100, 200, ... up to the cap) and judged there.
"from" is the first evaluated step from which every later evaluation stays >= the target.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/toy_quality.py            # full table
    HF_HUB_OFFLINE=1 .venv/bin/python bench/toy_quality.py --smoke    # one short run
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from client.core.embedding import Embedding  # noqa: E402
from client.core.training import TrainingParams  # noqa: E402
from client.inject import load_embedding, unload_embedding  # noqa: E402
from client.toy_world import data, judge  # noqa: E402
from client.toy_world.pipeline import generate, load_toy_pipeline  # noqa: E402
from trainer_service.training.model_defaults import DEFAULT_BATCH  # noqa: E402

PROMPTS = {"object": "a photo of a {}", "style": "a painting in the style of {}"}
SEEN_IMAGES = 8  # per seen concept (28 x 8 = 224 images): +-2 points of sampling noise at 90%


def judged(pipe: Any, prompt: str, concept: tuple[str, str], n: int, seed: int) -> float:
    return judge.accuracy(generate(pipe, [prompt] * n, seed=seed), concept)


def embedding_accuracy(
    pipe: Any, vectors: np.ndarray, concept: tuple[str, str], n: int, kind: str = "object"
) -> tuple[float, list[Any]]:
    """Load ``vectors`` as ``<probe>`` into ``pipe``, generate ``n`` images, judge, unload."""
    emb = Embedding.from_tensors({"emb_params": vectors}, token="<probe>", source_format="bench")
    [trigger] = load_embedding(pipe, emb)
    try:
        images = generate(pipe, [PROMPTS[kind].format(trigger)] * n, seed=1000)
    finally:
        unload_embedding(pipe, trigger)
    return judge.accuracy(images, concept), images


def train_images(concept: tuple[str, str], k: int = 5) -> list[Any]:
    return data.images(data.concept_specs(concept, k, seed=100))


def run_ours(
    train_pipe: Any, eval_pipe: Any, target: tuple[str, str], args: Any, **kw: Any
) -> dict[str, Any]:
    """Our loop with a judge every ``eval_every`` steps (its time kept out of train_s)."""
    from trainer_service.training import train_embedding

    kw.setdefault("batch_size", args.batch_size)  # None: the trainer's default
    kw.setdefault("seed", args.seed)
    params = TrainingParams(
        trigger="<t>",
        initializer=args.initializer,
        steps=kw.pop("steps", args.cap),
        learning_rate=args.lr,
        loss_every=args.eval_every,
        device="cpu",
        **kw,
    )
    curve: list[tuple[int, float, float]] = []
    spent = [0.0]

    def progress(report: Any) -> None:
        started = time.perf_counter()
        vectors = report.checkpoint().published["emb_params"]
        acc, _ = embedding_accuracy(eval_pipe, vectors, target, args.n, params.concept)
        curve.append((report.step, acc, report.elapsed_s - spent[0]))
        spent[0] += time.perf_counter() - started

    result = train_embedding(train_pipe, train_images(target), params, progress=progress)
    return {
        "curve": curve,
        "steps": result.steps,
        "train_s": result.wall_s - spent[0],
        "stopped_early": result.stopped_early,
        "vectors": result.embedding.vectors["emb_params"],
    }


def run_reference(
    train_pipe: Any, eval_pipe: Any, concept: tuple[str, str], args: Any
) -> dict[str, Any]:
    """The reference retrained to each grid step up to the cap (no hook to judge it on the
    way), so its curve shows whether it stays at the concept as ours does."""
    from bench.baseline_ti import train_baseline

    pngs = []
    for image in train_images(concept):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        pngs.append(buf.getvalue())
    curve: list[tuple[int, float, float]] = []
    steps, vectors = args.eval_every, None
    while steps <= args.cap:
        out = train_baseline(
            train_pipe, pngs, trigger="<t>", initializer=args.initializer, steps=steps,
            learning_rate=args.lr, resolution=data.SIZE, seed=args.seed,
            batch_size=args.batch_size or min(DEFAULT_BATCH, len(pngs)),
        )  # fmt: skip
        vectors = out["vectors"]
        acc, _ = embedding_accuracy(eval_pipe, vectors, concept, args.n)
        curve.append((steps, acc, out["wall_s"]))
        steps *= 2
    return {"curve": curve, "steps": curve[-1][0], "train_s": curve[-1][2], "vectors": vectors}


def reached(curve: list[tuple[int, float, float]], target: float) -> tuple[str, str]:
    for step, acc, secs in curve:
        if acc >= target:
            return str(step), f"{secs:.0f}"
    return "not reached", "-"


def steady(curve: list[tuple[int, float, float]], target: float) -> str:
    """The first evaluated step from which every later evaluation is >= target."""
    since = "never"
    for step, acc, _ in curve:
        if acc < target:
            since = "never"
        elif since == "never":
            since = str(step)
    return since


def row(name: str, label: str, run: dict[str, Any], target: float) -> str:
    step, secs = reached(run["curve"], target)
    final = run["curve"][-1][1] if run["curve"] else 0.0
    early = " (early stop)" if run.get("stopped_early") else ""
    return (
        f"| {name} | {label} | {final:.0%} | {run['steps']}{early} | {run['train_s']:.0f} "
        f"| {step} | {secs} | {steady(run['curve'], target)} |"
    )


def saved(name: str, stopped: dict[str, Any], full: dict[str, Any], cap: int) -> str:
    """Steps cut (cap / stop step) and accuracy lost against the no-early-stop plateau."""
    plateau = float(np.mean([acc for _, acc, _ in full["curve"][-4:]]))
    final = stopped["curve"][-1][1] if stopped["curve"] else 0.0
    return (
        f"- {name}: stopped at step {stopped['steps']} of {cap} ({cap / stopped['steps']:.1f}x "
        f"fewer steps) at {final:.0%}; plateau {plateau:.0%} ({(plateau - final) * 100:+.0f} "
        "points lost)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pipeline", help="toy pipeline folder (default: the committed weights)")
    ap.add_argument("--concepts", default=",".join(data.HELD_OUT))
    ap.add_argument("--n", type=int, default=32, help="images judged per evaluation")
    ap.add_argument("--cap", type=int, default=800, help="step cap of the runs without DVAR")
    ap.add_argument("--es-cap", type=int, default=2000, help="step cap of the DVAR runs")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--initializer", default="shape")
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--runs", default="seen,words,ours,no-es,reference,vectors")
    ap.add_argument(
        "--batch-size", type=int, help="images per step (both loops; default: the trainer's, 4)"
    )
    ap.add_argument("--seed", type=int, default=0, help="training seed (both loops)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (both loops)")
    ap.add_argument("--previews", help="write a before/after preview grid PNG here")
    ap.add_argument("--smoke", action="store_true", help="one concept, our loop, small N")
    args = ap.parse_args()
    if args.smoke:
        # the striped circle: this toy world reaches it by step 50, the green star by ~200
        args.concepts, args.runs, args.n, args.cap = "striped-circle", "seen,ours", 8, 200
        args.es_cap = 200
    import torch

    # One thread: on a shared machine two OpenMP threads wait on each other (~10x slower).
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    runs = set(args.runs.split(","))
    started = time.perf_counter()
    train_pipe, eval_pipe = load_toy_pipeline(args.pipeline), load_toy_pipeline(args.pipeline)
    specs = data.dataset(500, seed=99)
    render_acc = np.mean([judge.judge(data.render(s)).concept == s.concept for s in specs])
    print(f"judge accuracy on {len(specs)} renders: {render_acc:.1%}")
    if "seen" in runs:
        k = SEEN_IMAGES
        per = [judged(eval_pipe, f"a {c} {s}", (c, s), k, seed=k * i) for i, (c, s) in
               enumerate(data.SEEN)]  # fmt: skip
        print(f"seen concepts, caption accuracy ({len(data.SEEN)} x {k} images): "
              f"{np.mean(per):.1%}")  # fmt: skip
    print("\n| concept | run | accuracy at end | steps | train s | first step >= "
          f"{args.target:.0%} | train s to it | >= {args.target:.0%} from |\n"
          "|---|---|---|---|---|---|---|---|")  # fmt: skip
    grids: list[list[Any]] = []
    savings: list[str] = []
    for name in args.concepts.split(","):
        concept = data.HELD_OUT[name]
        if "words" in runs:
            prompt = f"a {concept[0]} {concept[1]}"
            acc = judged(eval_pipe, prompt, concept, args.n, seed=1000)
            print(f'| {name} | words only: "{prompt}" | {acc:.0%} | - | - | - | - | - |')
        # What a job gets by default: DVAR on the default 2,000-step cap.
        ours = run_ours(train_pipe, eval_pipe, concept, args, steps=args.es_cap)
        print(row(name, f"ours (DVAR, cap {args.es_cap})", ours, args.target), flush=True)
        if "no-es" in runs:
            full = run_ours(train_pipe, eval_pipe, concept, args, early_stop=False)
            print(row(name, "ours, no early stop", full, args.target), flush=True)
            savings.append(saved(name, ours, full, args.es_cap))
        if "reference" in runs:
            ref = run_reference(train_pipe, eval_pipe, concept, args)
            print(row(name, "reference (baseline_ti)", ref, args.target), flush=True)
        if "vectors" in runs:
            for v in (2, 4):
                multi = run_ours(train_pipe, eval_pipe, concept, args, vectors=v, steps=args.es_cap)
                print(row(name, f"ours, --vectors {v}", multi, args.target), flush=True)
        if "style" in runs:
            style = run_ours(
                train_pipe, eval_pipe, concept, args, concept="style", steps=args.es_cap
            )
            print(row(name, "ours, style templates", style, args.target), flush=True)
        if args.previews:
            init = np.asarray(train_pipe.text_encoder.get_input_embeddings().weight.detach())
            shape_id = train_pipe.tokenizer(args.initializer, add_special_tokens=False).input_ids
            _, before = embedding_accuracy(eval_pipe, init[shape_id].mean(0), concept, 8)
            _, after = embedding_accuracy(eval_pipe, ours["vectors"], concept, 8)
            grids.append([np.asarray(im) for im in before] + [np.asarray(im) for im in after])
    if savings:
        print("\nWhat early stopping saved (plateau: mean of the no-early-stop run's last 4 "
              "evaluations):\n" + "\n".join(savings))  # fmt: skip
    if args.previews and grids:
        from PIL import Image

        rows = [np.concatenate(g[:8], 1) for g in grids] + [np.concatenate(g[8:], 1) for g in grids]
        Image.fromarray(np.concatenate(rows, 0)).resize(
            (8 * data.SIZE * 3, len(rows) * data.SIZE * 3), Image.Resampling.NEAREST
        ).save(args.previews)
        print(f"previews (rows: before, per concept; then after): {args.previews}")
    load = os.getloadavg()
    print(f"\nwall {time.perf_counter() - started:.0f} s; load average {load[0]:.1f}, "
          f"{load[1]:.1f}, {load[2]:.1f}; torch threads {torch.get_num_threads()}")  # fmt: skip


if __name__ == "__main__":
    main()
