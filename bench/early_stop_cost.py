"""What DVAR's evaluation costs per training step, and when it stops, in one run.

    .venv/bin/python bench/early_stop_cost.py [--resolution 32] [--repeats 5] [--device cpu]

Cost: the median time of a training step (batch ``--batch``) and of one evaluation of the fixed
batch (2 images, the shipped ``EVAL_BATCH``; 4, the old size), each over ``--steps`` calls,
repeated ``--repeats`` times; the overhead per step is ``eval / step / early_stop_every``.
Stopping: the step at which the shipped rule (window from the cap) and the old one (fixed window
of 60) stop on the issue's curve, a fixed-batch loss flat by step ~120 on a 2,000-step job.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time

import numpy as np
import torch


def _images(n: int, size: int) -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(1)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def _median_s(fn, calls: int, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def cost(args: argparse.Namespace) -> None:
    from client.core.training import TrainingParams
    from client.testing import tiny_pipeline
    from trainer_service.training import Trainer

    pipe = tiny_pipeline("sd1")
    params = TrainingParams(
        trigger="<t>",
        initializer="cat",
        resolution=args.resolution,
        batch_size=args.batch,
        device=args.device,
    )
    trainer = Trainer(pipe, _images(4, args.resolution), params)
    with trainer.installed():
        step = _median_s(
            lambda: trainer.train_step(trainer.sample_batch()), args.steps, args.repeats
        )
        print(f"resolution {args.resolution} batch {args.batch}: step {step * 1e3:.2f} ms")
        for size in (2, 4):
            batch = trainer.fixed_batch(size)
            ev = _median_s(lambda b=batch: trainer.eval_loss(b), args.steps, args.repeats)
            share = ev / step / params.early_stop_every
            print(f"  eval batch {size}: {ev * 1e3:.2f} ms = {share:.1%} per step (every 5)")


def stopping() -> None:
    from client.core.training import TrainingParams
    from trainer_service.training.early_stop import DvarRule

    rng = np.random.default_rng(0)
    at = np.arange(5, 2001, 5)
    values = (0.1 + 0.2 * np.exp(-at / 30) + 0.002 * rng.standard_normal(len(at))).tolist()
    for label, window in (("shipped", None), ("old", 60)):
        p = TrainingParams(trigger="<t>", steps=2000, early_stop_window=window)
        index = DvarRule(p.dvar_window, p.early_stop_fraction).first_stop(values)
        stop = None if index is None else (index + 1) * p.early_stop_every
        print(f"{label} rule (window {p.dvar_window}): stops at step {stop} of 2000")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at start {load} (1/5/15 min; {os.cpu_count()} CPUs)")
    stopping()
    cost(args)
    print("load average at end " + "/".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
