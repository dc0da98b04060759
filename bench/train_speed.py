"""Training speed: our loop (``trainer_service.training``) against a faithful baseline of the
diffusers reference (``bench/baseline_ti.py``), same model config, images, batch, resolution,
seed and steps, in one invocation. Each loop runs in its own child process so peak memory is
its own: ``torch.cuda.max_memory_allocated`` on GPU; on CPU the child's max RSS (and the RSS
before training, for the delta) plus the optimizer-state size.

    .venv/bin/python bench/train_speed.py                      # CPU, tiny SD1 pipeline
    .venv/bin/python bench/train_speed.py --config sd15 --device cuda --resolution 512 --batch 4

steps/s is end to end: our figure includes caching the VAE latents (the baseline has no setup
to cache). A warm-up run of 2 steps precedes the timed run in each child.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _images(n: int, size: int, seed: int) -> list[bytes]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        # smooth random images (a blurred noise field) rather than white noise
        small = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        image.save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def _full_tokenizer() -> Any:
    """The tiny BPE padded to CLIP's 49408 ids (BOS/EOS last), so the embedding table and the
    baseline's optimizer state have SD1.5's real size."""
    from transformers import CLIPTokenizer

    from client.testing import BOS, EOS, tiny_vocab

    vocab, merges = tiny_vocab()
    tokens = [t for t in vocab if t not in (BOS, EOS)]
    tokens += [f"<unused{i}>" for i in range(49406 - len(tokens))] + [BOS, EOS]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
        Path(tmp, "merges.txt").write_text(
            "\n".join(["#version: 0.2"] + [f"{a} {b}" for a, b in merges]) + "\n"
        )
        tok = CLIPTokenizer.from_pretrained(tmp, model_max_length=77)
    assert len(tok) == 49408, len(tok)
    return tok


def sd15_pipeline(device: str) -> Any:
    """Random-weight SD1.5-size UNet (860M), VAE (84M) and CLIP ViT-L text encoder (123M),
    built from config dicts on the device; nothing is downloaded."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDPMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    tok = _full_tokenizer()
    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel(
            sample_size=64,
            cross_attention_dim=768,
            attention_head_dim=8,
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        )
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            layers_per_block=2,
            sample_size=512,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=49408,
                hidden_size=768,
                intermediate_size=3072,
                num_hidden_layers=12,
                num_attention_heads=12,
                max_position_embeddings=77,
                hidden_act="quick_gelu",
                bos_token_id=tok.bos_token_id,
                eos_token_id=2,  # as SD1.5's config (pooling by argmax)
                pad_token_id=1,
            )
        )
    scheduler = DDPMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000
    )
    return StableDiffusionPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tok,
        unet=unet.eval(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _child(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    cuda = args.device == "cuda"
    if args.config == "sd15":
        pipe = sd15_pipeline(args.device)
    else:
        from client.testing import tiny_pipeline

        pipe = tiny_pipeline("sd1").to(args.device)
        if args.vocab == "full":  # SD1.5's 49408-row table, so the baseline's AdamW is real size
            pipe.tokenizer = _full_tokenizer()
            pipe.text_encoder.resize_token_embeddings(len(pipe.tokenizer))
    if cuda and args.variant != "bf16-off":  # as the reference: frozen UNet/VAE in bf16
        pipe.unet.to(torch.bfloat16)
        pipe.vae.to(torch.bfloat16)
        # ours trains no text-encoder weight, so it may be bf16 too; loops that train the
        # table (the baseline, full-table) keep it fp32 as the reference must
        if args.child == "ours" and args.variant != "full-table":
            pipe.text_encoder.to(torch.bfloat16)
    images = _images(args.images, args.resolution, seed=1)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    common = dict(vectors=args.vectors, learning_rate=args.lr, batch_size=args.batch)

    def run(steps: int) -> dict[str, Any]:
        if args.child == "baseline":
            from baseline_ti import train_baseline

            return train_baseline(
                pipe,
                images,
                steps=steps,
                resolution=args.resolution,
                seed=args.seed,
                mixed_precision=cuda,
                **common,
            )
        from ablations import install

        from trainer_service.training import TrainingParams, train_embedding

        overrides = install(args.variant)
        params = TrainingParams(
            trigger="<toy>",
            initializer="cat",
            steps=steps,
            resolution=args.resolution,
            seed=args.seed,
            early_stop=False,
            device=args.device,
            **{"loss_every": args.loss_every, "compile": args.compile, **overrides},
            **common,
        )
        t0 = time.perf_counter()
        result = train_embedding(pipe, images, params)
        wall = time.perf_counter() - t0
        n, d = result.embedding.vectors["emb_params"].shape
        if args.variant == "full-table":  # the whole table is in AdamW too
            n += pipe.text_encoder.get_input_embeddings().weight.shape[0]
        return {
            "losses": result.losses,
            "vectors": result.embedding.vectors["emb_params"],
            "optimizer_state_bytes": 2 * n * d * 4,  # AdamW exp_avg + exp_avg_sq, fp32
            "wall_s": wall,
        }

    run(2)  # warm-up: allocator, kernels, lazy imports
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    out = run(args.steps)
    if cuda:
        torch.cuda.synchronize()
    return {
        "loop": args.child if args.child == "baseline" else args.variant,
        "steps": args.steps,
        "wall_s": out["wall_s"],
        "steps_per_s": args.steps / out["wall_s"],
        "losses": [round(x, 5) for x in out["losses"]],
        "optimizer_state_bytes": out["optimizer_state_bytes"],
        "peak_cuda_bytes": torch.cuda.max_memory_allocated() if cuda else None,
        "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_before_train_kb": rss_before,
        "device": torch.cuda.get_device_name() if cuda else f"cpu x{torch.get_num_threads()}",
    }


def _fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n / 2**10:,.1f} KiB" if n < 2**20 else f"{n / 2**20:,.1f} MiB"


def _ablation_table(results: dict[str, dict[str, Any]]) -> None:
    """One row per loop: steps/s and memory, each as a ratio to ours and to the baseline
    (memory: peak CUDA on GPU, the child's max RSS on CPU)."""
    from ablations import WHAT

    b, o = results["baseline"], results["ours"]
    cuda = bool(o["peak_cuda_bytes"])
    key = "peak_cuda_bytes" if cuda else "max_rss_kb"
    unit = 2**20 if cuda else 1024
    mem = "peak CUDA" if cuda else "max RSS"
    print(
        f"  {'loop':16s} {'takes back':45s} {'steps/s':>8s} {'/ours':>6s} {'/base':>6s} "
        f"{mem + ' MiB':>14s} {'/ours':>6s} {'/base':>6s} {'optim state':>12s}"
    )
    for name, r in results.items():
        m, rate = r[key], r["steps_per_s"]
        print(
            f"  {name:16s} {WHAT.get(name, '?')[:45]:45s} {r['steps_per_s']:8.2f} "
            f"{rate / o['steps_per_s']:5.2f}x {rate / b['steps_per_s']:5.2f}x "
            f"{m / unit:14,.0f} {m / o[key]:6.2f} {m / b[key]:6.2f} "
            f"{_fmt_bytes(r['optimizer_state_bytes']):>12s}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", choices=["tiny", "sd15"], default="tiny")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--vocab", choices=["tiny", "full"], default="full", help="tiny config only")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--vectors", type=int, default=1)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--loss-every", type=int, default=20)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument(
        "--ablate", action="store_true", help="also run ours with each speed point removed"
    )
    ap.add_argument("--child", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--variant", default="ours", help=argparse.SUPPRESS)
    ap.add_argument("--only", help="with --ablate: comma-separated variants to run (GPU time)")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args)))
        return
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            sys.exit("train_speed: --device cuda asked for, but no CUDA device is visible")
    from ablations import GPU_VARIANTS, VARIANTS

    variants = (GPU_VARIANTS if args.device == "cuda" else VARIANTS) if args.ablate else ["ours"]
    if args.ablate and args.only:
        variants = [v for v in variants if v == "ours" or v in args.only.split(",")]
    results = {}
    runs = [("baseline", "ours")] + [("ours", v) for v in variants]
    started = time.perf_counter()
    for child, variant in runs:
        cmd = [sys.executable, __file__, *sys.argv[1:], "--child", child, "--variant", variant]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        name = child if child == "baseline" else variant
        if proc.returncode:
            sys.exit(f"{name} loop failed:\n{proc.stderr[-4000:]}")
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    total_s = time.perf_counter() - started
    b, o = results["baseline"], results["ours"]
    vocab = args.vocab if args.config == "tiny" else "full"
    print(
        f"config={args.config} vocab={vocab} device={o['device']} resolution={args.resolution} "
        f"batch={args.batch} steps={args.steps} vectors={args.vectors}"
    )
    for r in results.values():
        print(
            f"  {r['loop']:16s} {r['steps_per_s']:7.2f} steps/s  wall {r['wall_s']:6.2f} s  "
            f"optimizer state {_fmt_bytes(r['optimizer_state_bytes'])}  "
            f"peak cuda {_fmt_bytes(r['peak_cuda_bytes'])}  "
            f"max RSS {r['max_rss_kb'] / 1024:,.0f} MiB "
            f"(+{(r['max_rss_kb'] - r['rss_before_train_kb']) / 1024:,.0f} in training)"
        )
        k = max(1, len(r["losses"]) // 10)
        print(f"    loss every {k}: {' '.join(f'{x:.4f}' for x in r['losses'][::k])}")
    print(f"  ratio ours/baseline steps/s: {o['steps_per_s'] / b['steps_per_s']:.2f}x")
    if o["peak_cuda_bytes"]:
        print(
            "  ratio ours/baseline peak CUDA memory: "
            f"{o['peak_cuda_bytes'] / b['peak_cuda_bytes']:.2f}"
        )
    print(
        "  ratio ours/baseline optimizer state: "
        f"{o['optimizer_state_bytes'] / b['optimizer_state_bytes']:.5f}"
    )
    print(f"  ratio ours/baseline max RSS: {o['max_rss_kb'] / b['max_rss_kb']:.2f}")
    if args.ablate:
        _ablation_table(results)
    print(f"  total wall (all children, incl. start-up and warm-up): {total_s:.0f} s")
    print("JSON " + json.dumps({"args": vars(args), **results}))


if __name__ == "__main__":
    main()
