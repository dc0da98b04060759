"""``lexicon-trainer``: a worker that loads one base model and serves the registry's training
jobs for it until stopped (SIGTERM/SIGINT: finish the current step, checkpoint, release).

    lexicon-trainer --registry URL --token T --base-model PATH_OR_HF_ID [--device auto|cuda|cpu]
                    [--once] [--name NAME]

The token is a worker token (``lexicon-registry create-worker-token NAME`` prints one); it may
also come from ``LEXICON_WORKER_TOKEN``. The base model loads from a local folder or the Hugging
Face cache (``HF_HUB_OFFLINE=1`` works once it is cached); its family is read from the text
encoders' widths, so a worker claims only jobs it can run.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from client.core.errors import LexiconError
from client.core.previews import PREVIEW_DEFAULTS, PREVIEW_SETTINGS_FILE, preview_settings

app = typer.Typer(
    name="lexicon-trainer",
    help="Lexicon Hub training worker.",
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _model_index(base_model: str) -> dict[str, Any]:
    path = Path(base_model)
    if path.is_dir():
        index = path / "model_index.json"
    else:
        from huggingface_hub import hf_hub_download

        index = Path(hf_hub_download(base_model, "model_index.json"))
    return json.loads(index.read_text())


def load_pipeline(base_model: str) -> Any:
    """The pipeline from a local folder or the HF cache, on the CPU (the trainer moves it)."""
    from diffusers import DiffusionPipeline

    kwargs: dict[str, Any] = {}
    if "safety_checker" in _model_index(base_model):
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe = DiffusionPipeline.from_pretrained(base_model, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _encoder_config(base_model: str, subfolder: str) -> dict[str, Any] | None:
    path = Path(base_model)
    if path.is_dir():
        config = path / subfolder / "config.json"
        return json.loads(config.read_text()) if config.is_file() else None
    from huggingface_hub import hf_hub_download

    try:
        return json.loads(Path(hf_hub_download(base_model, f"{subfolder}/config.json")).read_text())
    except Exception:  # noqa: BLE001 - no such file: the loaded pipeline decides
        return None


def _family_for(first: int, second: int | None) -> str:
    """The family of text encoders this wide (client.core.families' one table); ``second`` is
    SDXL's text_encoder_2."""
    from client.core.families import family_for_widths

    if second is None:
        return family_for_widths({"emb_params": first}).name
    return family_for_widths({"clip_l": first, "clip_g": second}).name


def family_from_configs(base_model: str) -> str | None:
    """The family from the text encoders' ``config.json`` (``hidden_size`` is the width of the
    token table), read before the weights load so the worker registers within a second of
    starting instead of after the load (~9 s for the toy world on a busy CPU): a ``hub train``
    without ``--family`` needs a live worker. None when a config is missing or unknown."""
    first = _encoder_config(base_model, "text_encoder")
    if first is None or "hidden_size" not in first:
        return None
    second = _encoder_config(base_model, "text_encoder_2")
    try:
        return _family_for(
            int(first["hidden_size"]), None if second is None else int(second.get("hidden_size", 0))
        )
    except LexiconError:
        return None


def detect_family(pipe: Any) -> str:
    """The family from the loaded text encoders' token-table widths."""

    def width(encoder: Any) -> int:
        return int(encoder.get_input_embeddings().weight.shape[1])

    second = getattr(pipe, "text_encoder_2", None)
    return _family_for(width(pipe.text_encoder), None if second is None else width(second))


def resolve_device(device: str) -> tuple[str, int | None]:
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise typer.BadParameter("--device cuda but no CUDA device is visible")
        index = torch.device(device).index or 0
        return device, int(torch.cuda.get_device_properties(index).total_memory)
    return device, None


@app.command()
def main_command(
    registry: Annotated[str, typer.Option("--registry", help="Registry URL.")],
    base_model: Annotated[
        str, typer.Option("--base-model", help="Local pipeline folder or Hugging Face model id.")
    ],
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="LEXICON_WORKER_TOKEN", help="Worker token."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cuda, cuda:N or cpu.")] = "auto",
    once: Annotated[bool, typer.Option("--once", help="Handle one job, then exit.")] = False,
    name: Annotated[str | None, typer.Option(help="Worker name shown on jobs.")] = None,
    model_id: Annotated[
        list[str] | None,
        typer.Option(
            "--model-id",
            help="Base-model id(s) this folder is (e.g. runwayml/stable-diffusion-v1-5), so jobs "
            "that name one are claimed; a Hugging Face id given as --base-model counts already.",
        ),
    ] = None,
    poll: Annotated[float, typer.Option(help="Seconds between claims when idle.")] = 2.0,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 100,
    preview_steps: Annotated[
        int | None,
        typer.Option(
            help=f"Denoising steps per preview (default: {PREVIEW_SETTINGS_FILE} in "
            "the base-model folder, else 25)."
        ),
    ] = None,
    preview_guidance: Annotated[
        float | None,
        typer.Option(
            help=f"Classifier-free guidance of the previews (default: "
            f"{PREVIEW_SETTINGS_FILE} in the base-model folder, else 7.5)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Python log level.")] = "INFO",
) -> None:
    """Serve training jobs for one base model."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per heartbeat is noise
    if not token:
        raise typer.BadParameter("give --token or LEXICON_WORKER_TOKEN (a worker token)")
    from trainer_service.registry_api import Capabilities, RegistryAPI
    from trainer_service.worker import Worker, WorkerOptions

    resolved, memory = resolve_device(device)
    ids = list(model_id or [])
    if not Path(base_model).is_dir() and base_model not in ids:
        ids.append(base_model)

    def capabilities(family: str) -> Capabilities:
        return Capabilities(
            name=name or f"{socket.gethostname()}-{os.getpid()}",
            families=[family],
            base_models=ids,
            device=resolved,
            memory_bytes=memory,
        )

    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        logging.getLogger("lexicon.trainer").info("signal %d: finishing the current step", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    api = RegistryAPI(registry, token)
    # Previews are drawn as the base model was made to draw (its folder may say), unless told.
    drawn = preview_settings(base_model) if Path(base_model).is_dir() else dict(PREVIEW_DEFAULTS)
    options = WorkerOptions(
        poll_s=poll,
        checkpoint_every=max(1, checkpoint_every),
        preview_steps=max(1, preview_steps or int(drawn["num_inference_steps"])),
        preview_guidance=preview_guidance or float(drawn["guidance_scale"]),
        device=resolved,
    )
    try:
        early = family_from_configs(base_model)
        worker = Worker(api, None, capabilities(early), options, stop) if early else None
        if worker is not None:
            worker.register()  # a job may be submitted now; it is claimed after the load
        pipe = load_pipeline(base_model)
        family = detect_family(pipe)
        if worker is None:
            worker = Worker(api, pipe, capabilities(family), options, stop)
        elif family != early:
            raise typer.BadParameter(
                f"the text encoders' config.json say {early} but the loaded weights are {family}"
            )
        worker.pipe = pipe
        worker.run(once=once)
    except LexiconError as exc:
        typer.echo(f"lexicon-trainer: {exc} ({exc.fix})", err=True)
        raise typer.Exit(1) from None
    finally:
        api.close()


def main() -> None:
    app(prog_name="lexicon-trainer")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
