"""``hub train``, ``hub jobs``, ``hub job``, ``hub cancel``: training jobs on the registry.
``hub train --wait`` follows the job with a live bar (step, loss, ETA) and prints the
published reference."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import app
from .errors import USER_ERROR, handles_errors


class Concept(StrEnum):
    object = "object"
    style = "style"


class FamilyName(StrEnum):
    sd1 = "sd1"
    sd2 = "sd2"
    sdxl = "sdxl"


def _jobs():  # type: ignore[no-untyped-def]
    from ..hub import Hub
    from ..jobs import TrainingJobs

    hub = Hub()
    return hub, TrainingJobs(hub.transport)


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _last_loss(job: dict[str, Any]) -> str:
    """The latest loss of the job's curve (``[[step, loss], ...]``)."""
    last = (job.get("losses") or [None])[-1]
    if isinstance(last, list | tuple) and len(last) == 2:
        last = last[1]
    return f"{last:.4f}" if isinstance(last, int | float) else "-"


def _summary(job: dict[str, Any]) -> str:
    line = (
        f"{job['id']}  {job['status']:<9}  {job['target']}  "
        f"step {job['step']}/{job['total_steps']}  loss {_last_loss(job)}  "
        f"eta {_fmt_eta(job.get('eta_s'))}"
    )
    if job.get("result"):
        line += f"  -> {job['result']['ref']}"
    if job.get("error") and job["status"] != "succeeded":
        line += f"  ({job['error']})"
    return line


def _follow(jobs: Any, job: dict[str, Any], poll: float) -> dict[str, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("step {task.completed:.0f}/{task.total:.0f}"),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("eta {task.fields[eta]}"),
        TimeElapsedColumn(),
        console=console,
    )
    with bar:
        task = bar.add_task(job["status"], total=job["total_steps"], loss="-", eta="-")

        def update(j: dict[str, Any]) -> None:
            # The total follows the job: early stopping shrinks it to the step it stopped at,
            # so a finished bar reads "600/600", not "600/2000 eta 2:24".
            bar.update(
                task,
                total=j["total_steps"],
                completed=j["step"],
                description=j["status"],
                loss=_last_loss(j),
                eta=_fmt_eta(j.get("eta_s")),
            )

        return jobs.wait(job["id"], on_update=update, poll_s=poll)


@app.command("train")
@handles_errors
def train(
    images: Annotated[list[Path], typer.Argument(help="1-50 PNG, JPEG or WebP images.")],
    name: Annotated[str, typer.Option("--name", help="Where to publish: NAMESPACE/NAME.")],
    trigger: Annotated[str, typer.Option("--trigger", help="The new token, e.g. <my-cat>.")],
    init: Annotated[
        str, typer.Option("--init", help="Initializer word(s), e.g. 'cat' or 'cat, toy'.")
    ],
    vectors: Annotated[int, typer.Option(help="Vectors per token (1-16).")] = 1,
    type_: Annotated[Concept, typer.Option("--type", help="object or style.")] = Concept.object,
    family: Annotated[
        FamilyName | None,
        typer.Option(help="Base-model family; default: the family the registry's workers serve."),
    ] = None,
    base_model: Annotated[
        str | None,
        typer.Option("--base-model", help="Base-model id (implies its family); default: any."),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Training steps (cap).")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="Learning rate.")] = None,
    resolution: Annotated[
        int | None,
        typer.Option(help="Training resolution (px); default: the base model's own."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size", help="Images per step (1-16); default: 4, or all images if fewer."
        ),
    ] = None,
    early_stop: Annotated[
        bool,
        typer.Option(
            "--early-stop/--no-early-stop",
            help="Stop once the loss has flattened (DVAR), after 300 settling steps with the "
            "rate annealed to 0 (3 --ema-decay time constants); or always run to --steps.",
        ),
    ] = True,
    ema_decay: Annotated[
        float | None,
        typer.Option(
            "--ema-decay",
            help="Publish the average of the vectors over the steps, with this decay "
            "(0-1; default 0.99, time constant 100 steps); 0 publishes the last step's.",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    preview: Annotated[
        list[str] | None, typer.Option("--preview", help="A preview prompt (repeatable).")
    ] = None,
    private: Annotated[bool, typer.Option("--private", help="Publish as private.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Follow until published.")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between status polls.", hidden=True)] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as JSON.")] = False,
) -> None:
    """Submit a training job: IMAGES become a new version of --name once a worker trains it."""
    params: dict[str, Any] = {
        "target": name,
        "trigger": trigger,
        "initializer": init,
        "vectors": vectors,
        "concept": type_.value,
        "family": family.value if family else None,
        "base_model": base_model,
        "steps": steps,
        "learning_rate": learning_rate,
        "resolution": resolution,
        "batch_size": batch_size,
        "early_stop": None if early_stop else False,
        "ema_decay": ema_decay,
        "seed": seed,
        "preview_prompts": preview or None,
        "visibility": "private" if private else None,
    }
    params = {k: v for k, v in params.items() if v is not None}
    hub, jobs = _jobs()
    with hub:
        job = jobs.submit(images, params)
        if not wait:
            print(json.dumps(job, indent=2) if as_json else f"submitted {job['id']}")
            return
        print(f"submitted {job['id']}", flush=True)
        job = _follow(jobs, job, poll)
    if as_json:
        print(json.dumps(job, indent=2))
    if job["status"] != "succeeded":
        print(f"error: job {job['id']} {job['status']}: {job.get('error') or ''}".rstrip(": "))
        raise typer.Exit(USER_ERROR)
    print(f"published {job['result']['ref']}")


@app.command("jobs")
@handles_errors
def jobs_cmd(
    status: Annotated[str | None, typer.Option(help="Only jobs in this status.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """My training jobs and my organisations'."""
    hub, jobs = _jobs()
    with hub:
        items = jobs.list(status)
    if as_json:
        print(json.dumps(items, indent=2))
        return
    if not items:
        print("no training jobs")
    for job in items:
        print(_summary(job))


@app.command("job")
@handles_errors
def job_cmd(
    job_id: Annotated[str, typer.Argument(help="Job id (tj_…).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One training job: status, progress, worker, result or error."""
    hub, jobs = _jobs()
    with hub:
        job = jobs.get(job_id)
    if as_json:
        print(json.dumps(job, indent=2))
        return
    print(_summary(job))
    worker = job.get("worker") or {}
    print(f"  attempts {job['attempts']}/{job['max_attempts']}  worker {worker.get('name', '-')}")


@app.command("cancel")
@handles_errors
def cancel_cmd(job_id: Annotated[str, typer.Argument(help="Job id (tj_…).")]) -> None:
    """Cancel a queued or running training job."""
    hub, jobs = _jobs()
    with hub:
        job = jobs.cancel(job_id)
    print(f"{job['id']} {job['status']}")
