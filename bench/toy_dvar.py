"""Record what DVAR sees on the toy world: our loop on a held-out concept with a rule that never
fires (fraction 1e-9), so the whole fixed-batch evaluation-loss curve and the judge's accuracy
every ``--eval-every`` steps come back together. Written as JSON; replay candidate stop rules on it
offline (no training) to see where each would stop and at what accuracy."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from trainer_service.training.early_stop import DvarRule  # noqa: E402

EVERY = 5  # TrainingParams.early_stop_every
# Candidate rules: (label, window in evaluations, fraction, consecutive firings required)
CANDIDATES = [
    ("shipped (cap 400: window 10)", 10, 0.15, 1),
    ("window 12", 12, 0.15, 1),
    ("window 14", 14, 0.15, 1),
    ("window 16", 16, 0.15, 1),
    ("window 20 (what a default 2,000-step job uses)", 20, 0.15, 1),
    ("window 10, fires twice in a row", 10, 0.15, 2),
    ("window 10, fires 5 in a row", 10, 0.15, 5),
    ("window 10, fraction 0.10", 10, 0.10, 1),
    ("window 20, fraction 0.10 (default 2,000-step job)", 20, 0.10, 1),
]


def stop_step(evals: list[float], window: int, fraction: float, times: int) -> int | None:
    """The step at which a rule stops over ``evals`` (None: runs to the cap)."""
    rule, hits = DvarRule(window, fraction), 0
    for i, value in enumerate(evals):
        hits = hits + 1 if rule.add(value) else 0
        if hits >= times:
            return (i + 1) * EVERY
    return None


def accuracy_at(accuracy: list[list[float]], step: int) -> float:
    """The judge's accuracy at the last judged step at or before ``step``."""
    return [acc for s, acc in accuracy if s <= step][-1]


def replay(paths: list[str]) -> None:
    runs = [json.loads(Path(p).read_text()) for p in paths]
    cap = max(s for s, _ in runs[0]["accuracy"])
    print("| rule | " + " | ".join(f"seed {r['seed']}: stop, acc" for r in runs) + " |")
    print("|---|" + "---|" * len(runs))
    # one judged point is +-12 points of noise; the plateau is the mean over the second half
    late = [[a for s, a in r["accuracy"] if s >= cap // 2] for r in runs]
    print("| plateau: mean accuracy, steps >= cap/2 | " + " | ".join(
        f"{cap}, {sum(v) / len(v):.0%}" for v in late) + " |")  # fmt: skip
    for label, window, fraction, times in CANDIDATES:
        cells = []
        for r in runs:
            stop = stop_step(r["evals"], window, fraction, times)
            cells.append(f"{stop or cap}, {accuracy_at(r['accuracy'], stop or cap):.0%}")
        print(f"| {label} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--concept", default="green-star")
    ap.add_argument("--cap", type=int, default=400)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, help="images per step (default: the trainer's)")
    ap.add_argument("--out", help="JSON file to write")
    ap.add_argument("--replay", nargs="+", help="replay the candidate rules on these JSON files")
    args = ap.parse_args()
    if args.replay:
        return replay(args.replay)
    import toy_quality as tq

    from client.toy_world import data
    from client.toy_world.pipeline import load_toy_pipeline

    args.lr, args.initializer = 5e-3, "shape"
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    train_pipe, eval_pipe = load_toy_pipeline(None), load_toy_pipeline(None)
    captured: dict[str, list[float]] = {}
    from trainer_service.training import loop

    real = loop.train_embedding

    def keeping(*a, **kw):  # the result's eval_losses: the fixed-batch curve
        result = real(*a, **kw)
        captured["evals"] = list(result.eval_losses)
        return result

    import trainer_service.training as training

    training.train_embedding = keeping
    run = tq.run_ours(
        train_pipe, eval_pipe, data.HELD_OUT[args.concept], args,
        early_stop_fraction=1e-9, seed=args.seed, batch_size=args.batch_size,
    )  # fmt: skip
    out = {
        "concept": args.concept,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "early_stop_every": 5,
        "evals": captured["evals"],
        "accuracy": [(step, acc) for step, acc, _ in run["curve"]],
    }
    Path(args.out).write_text(json.dumps(out))
    print(json.dumps(out["accuracy"]))


if __name__ == "__main__":
    main()
