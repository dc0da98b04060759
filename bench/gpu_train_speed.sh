#!/usr/bin/env bash
# One prepared GPU run for a lent H100: random-weight SD1.5-size UNet/VAE/CLIP built from config
# dicts (no download), 512 px, batch 1 and 4, our loop and the reference baseline, bf16;
# at batch 4 also each speed point removed on its own (--ablate), bf16 off and compile on.
# Prints steps/s, peak CUDA memory and the ratios (target: >= 2x steps/s at <= 1/2 peak memory).
# Usage: bash bench/gpu_train_speed.sh [steps]      (about 5-8 minutes on an H100)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export HF_HUB_OFFLINE=1
STEPS=${1:-30}
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "gpu_train_speed: no CUDA device visible (torch $("$PY" -c 'import torch; print(torch.__version__)'))."
  echo "Run it on a machine with a GPU; CPU numbers come from: $PY bench/train_speed.py"
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
echo "=== sd15 config, 512 px, batch 1, $STEPS steps, bf16 ==="
"$PY" bench/train_speed.py --config sd15 --device cuda --resolution 512 \
  --batch 1 --steps "$STEPS" --loss-every 10 | grep -v '^JSON'
# batch 4: the baseline, ours, and ours with one speed point taken back at a time (full-table,
# vae-every-step, sync-every-step, bf16-off) plus ours with torch.compile(unet); one table of
# steps/s and peak CUDA memory, each as a ratio to ours and to the baseline.
# COMPILE=0 leaves the compile row out (it spends a minute or two compiling).
ONLY=ours,full-table,vae-every-step,sync-every-step,bf16-off
[ "${COMPILE:-1}" = 1 ] && ONLY=$ONLY,compile
echo "=== sd15 config, 512 px, batch 4, $STEPS steps, ablation ($ONLY) ==="
"$PY" bench/train_speed.py --config sd15 --device cuda --resolution 512 \
  --batch 4 --steps "$STEPS" --loss-every 10 --ablate --only "$ONLY" | grep -v '^JSON'
