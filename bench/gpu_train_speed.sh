#!/usr/bin/env bash
# One prepared GPU run (issue 12, target 6): random-weight SD1.5-size UNet (860M), VAE and CLIP
# ViT-L built from config dicts (no download), 512 px, batch 1 and batch 4; our loop against the
# reference baseline (bench/baseline_ti.py) both as the reference runs by default (fp32) and
# with --mixed_precision bf16; each loop timed 3 times; steps/s, peak CUDA memory
# (torch.cuda.max_memory_allocated) and the ratios. Target: >= 2x steps/s at <= 1/2 peak memory.
#
# Usage: bash bench/gpu_train_speed.sh
#        DRY_RUN=1 bash bench/gpu_train_speed.sh   # same commands, tiny pipeline on CPU, 2 steps
#        ABLATE=1 bash bench/gpu_train_speed.sh    # then each speed point removed (batch 4,
#                                                  # compile row too): up to 5 more minutes
#
# At most 8 minutes by construction: each phase runs under `timeout` (batch 1: 200 s, batch 4:
# 250 s; the per-loop result lines print as each loop ends, so a phase cut short still shows
# what it measured). Measured on an H200 (2026-11-30, docs/PERFORMANCE.md "GPU"): 108 s for
# batch 1 and 93 s for batch 4. Exit status 2 without a CUDA device.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export HF_HUB_OFFLINE=1
if [ "${DRY_RUN:-0}" = 1 ]; then
  MODEL=(--config tiny --vocab tiny --device cpu --resolution 32)
  B1=(--steps 2 --baseline-steps 2 --repeats 1)
  B4=(--steps 2 --baseline-steps 2 --repeats 1)
  LIMIT1=900 LIMIT4=900 LABEL="DRY RUN: tiny config on CPU, 32 px"  # a loaded CPU is no GPU
else
  if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_train_speed: no CUDA device visible (torch $("$PY" -c 'import torch; print(torch.__version__)'))."
    echo "Run it on a machine with a GPU (or DRY_RUN=1 to check it on CPU); CPU numbers come from: $PY bench/train_speed.py"
    exit 2
  fi
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  MODEL=(--config sd15 --device cuda --resolution 512)
  B1=(--steps 100 --baseline-steps 30 --repeats 3)
  B4=(--steps 40 --baseline-steps 15 --repeats 3)
  LIMIT1=200 LIMIT4=250 LABEL="sd15 config, 512 px"
fi
COMMON=(--baselines fp32,bf16 --no-interleave)
phase() {  # phase SECONDS TITLE ARGS...: one bench command, cut at SECONDS
  local limit=$1 title=$2
  shift 2
  echo "=== $title (limit ${limit}s) ==="
  timeout --signal=TERM --kill-after=10 "$limit" "$PY" bench/train_speed.py "$@" | grep -v '^JSON' \
    || echo "=== $title: stopped (status ${PIPESTATUS[0]}); lines above are what it measured ==="
}
phase "$LIMIT1" "$LABEL, batch 1" "${MODEL[@]}" --batch 1 "${B1[@]}" "${COMMON[@]}"
phase "$LIMIT4" "$LABEL, batch 4" "${MODEL[@]}" --batch 4 "${B4[@]}" "${COMMON[@]}"
if [ "${ABLATE:-0}" = 1 ]; then
  # ours with one speed point taken back at a time (full-table, vae-every-step,
  # sync-every-step, no-early-stop, bf16-off) plus torch.compile(unet); ratios to ours and to
  # the bf16 baseline. Not part of the 8 minutes.
  phase 300 "$LABEL, batch 4, ablation" "${MODEL[@]}" --batch 4 "${B4[@]}" \
    --baselines bf16 --no-interleave --ablate
fi
