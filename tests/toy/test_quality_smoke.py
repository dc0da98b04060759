"""The quality benchmark's smoke run, as CI's stand-in for the full table (issue 11): the
benchmark itself runs, its judge reads renders, the toy model follows captions, and our trainer
(through the same code the worker runs) moves a held-out concept from "a shape" to a striped
circle."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.torch
BENCH = Path(__file__).resolve().parents[2] / "bench" / "toy_quality.py"


def test_toy_quality_smoke_prints_a_table_that_shows_the_concept_learned() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, str(BENCH), "--smoke"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    judge_acc = float(re.search(r"judge accuracy on \d+ renders: ([\d.]+)%", out).group(1))
    seen = float(re.search(r"caption accuracy .*: ([\d.]+)%", out).group(1))
    assert judge_acc >= 98 and seen >= 80, out
    [ours] = [line for line in out.splitlines() if line.startswith("| striped-circle | ours")]
    cells = [c.strip() for c in ours.strip("|").split("|")]
    accuracy, steps = int(cells[3].rstrip("%")), int(cells[4].split()[0])
    assert 0 < steps <= 200 and accuracy >= 50, out
