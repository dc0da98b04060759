#!/usr/bin/env bash
# One prepared GPU run for a lent H100: random-weight SD1.5-size UNet/VAE/CLIP built from config
# dicts (no download), 512 px, batch 1 and 4, our loop and the reference baseline, bf16.
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
for BATCH in 1 4; do
  # batch 4 also runs each ablation: ours with one speed point removed at a time
  ABLATE=$([ "$BATCH" = 4 ] && echo --ablate || true)
  echo "=== sd15 config, 512 px, batch $BATCH, $STEPS steps, bf16 $ABLATE ==="
  "$PY" bench/train_speed.py --config sd15 --device cuda --resolution 512 \
    --batch "$BATCH" --steps "$STEPS" --loss-every 10 $ABLATE | grep -v '^JSON'
done
if [ "${COMPILE:-1}" = 1 ]; then
  echo "=== same, batch 4, ours with torch.compile(unet) ==="
  "$PY" bench/train_speed.py --config sd15 --device cuda --resolution 512 \
    --batch 4 --steps "$STEPS" --loss-every 10 --compile | grep -v '^JSON' || echo "compile run failed"
fi
