"""The training loop on tiny CPU pipelines: what trains, what stays frozen, that it learns,
reproduces, resumes, cancels, and refuses bad parameters by name."""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from client.core.errors import BadRequest
from client.core.previews import PREVIEW_SETTINGS_FILE, preview_settings
from client.toy_world import pipeline as toy_pipeline
from trainer_service.training import (
    Checkpoint,
    DvarRule,
    Trainer,
    TrainingParams,
    render_previews,
    train_embedding,
)
from trainer_service.training import text as text_mod
from trainer_service.training.loop import settling_rate

pytestmark = pytest.mark.torch


def params(**kw) -> TrainingParams:
    base = dict(
        trigger="<toy>",
        initializer="cat",
        vectors=2,
        steps=6,
        resolution=32,
        learning_rate=5e-2,
        loss_every=2,
        early_stop=False,
    )
    base.update(kw)
    return TrainingParams(**base)


# -- parameters -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("trigger", "two words"),
        ("trigger", ""),
        ("initializer", ""),
        ("vectors", 0),
        ("vectors", 17),
        ("concept", "person"),
        ("steps", 0),
        ("learning_rate", 0),
        ("learning_rate", 5.0),
        ("batch_size", 99),
        ("resolution", 100),
        ("seed", -1),
        ("early_stop_fraction", 1.5),
        ("ema_decay", 1.0),
        ("ema_decay", -0.1),
        ("ema_decay", float("nan")),
        ("ema_decay", "0.9"),
        ("ema_decay", True),
        ("loss_every", 0),
        ("device", "tpu"),
        ("preview_prompts", ("",)),
        pytest.param("initializer", "i" * 100_000, id="initializer-100k"),
        pytest.param("concept", "c" * 100_000, id="concept-100k"),
        pytest.param("seed", 10**5000, id="seed-5000-digits"),
        pytest.param("initializer", "cat\x01", id="initializer-control-char"),
        pytest.param("initializer", "cat\tdog", id="initializer-tab"),
        pytest.param("preview_prompts", ("a <t>\x1b[2J",), id="preview-escape"),
        pytest.param("preview_prompts", ("a <t>\nsecond line",), id="preview-newline"),
        pytest.param("extra", {"k\x07": "v"}, id="extra-key-control-char"),
    ],
)
def test_bad_params_are_refused_by_name(field: str, value: object) -> None:
    """By name, with the bad value cut short: a 100,000-character value is not echoed back."""
    with pytest.raises(BadRequest) as exc:
        params(**{field: value})
    assert repr(field) in str(exc.value)
    assert "allowed" in str(exc.value)
    assert len(str(exc.value)) < 300


def test_a_base_model_folder_says_how_its_previews_are_drawn(tmp_path) -> None:
    """The worker draws previews with the folder's lexicon_preview.json (the toy world's: 4.0,
    20 steps), else SD's usual 7.5 and 25; a malformed file is refused by name, not ignored."""
    assert preview_settings(tmp_path) == {"guidance_scale": 7.5, "num_inference_steps": 25}
    toy = preview_settings(Path(toy_pipeline.__file__).parent / "weights")
    assert toy == {"guidance_scale": 4.0, "num_inference_steps": 20}
    settings = tmp_path / PREVIEW_SETTINGS_FILE
    for text, named in [
        ("{not json", "not JSON"),
        ("[4]", "must hold an object"),
        ('{"guidance": 4}', "'guidance'"),
        ('{"guidance_scale": 500}', "'guidance_scale'"),
        ('{"num_inference_steps": 2.5}', "'num_inference_steps'"),
    ]:
        settings.write_text(text)
        with pytest.raises(BadRequest, match=re.escape(named)):
            preview_settings(tmp_path)


def test_params_from_dict_names_unknown_keys_and_splits_initializer_words() -> None:
    with pytest.raises(BadRequest, match="'stpes'"):
        TrainingParams.from_dict({"trigger": "<t>", "stpes": 10})
    p = TrainingParams.from_dict({"trigger": "<t>", "initializer": "cat, dog"})
    assert p.initializer == ("cat", "dog")
    assert p.previews == ("a photo of a <t>", "a rendering of a <t>")


def test_bad_image_is_refused_naming_it(tiny_pipes, images) -> None:
    with pytest.raises(BadRequest, match="image 1 cannot be decoded"):
        Trainer(tiny_pipes["sd1"], [images[0], b"not an image"], params())


# -- early stopping ---------------------------------------------------------------------------
def test_dvar_stops_once_the_curve_flattens_and_not_while_it_falls() -> None:
    rng = np.random.default_rng(0)
    steps = np.arange(400)
    decaying = np.exp(-steps / 40) + 0.01 * rng.standard_normal(400)
    stop = DvarRule(window=60, fraction=0.15).first_stop(decaying.tolist())
    assert stop is not None and 100 < stop < 300, stop  # after the knee, long before the end
    assert decaying[stop] < 0.1  # >90% of the drop done
    assert DvarRule(window=60, fraction=0.15).first_stop(decaying[:119].tolist()) is None
    falling = (1.0 - steps / 400 + 0.001 * rng.standard_normal(400)).tolist()
    assert DvarRule(window=40, fraction=0.15).first_stop(falling[:100]) is None
    noise_only = (1.0 + 0.05 * rng.standard_normal(400)).tolist()  # never learned anything
    assert DvarRule(window=20, fraction=0.15).first_stop(noise_only) is None
    assert DvarRule(window=3, fraction=0.15).first_stop([1.0] * 6) == 5  # flat: stop


# -- what trains --------------------------------------------------------------------------------
def test_gradients_reach_only_the_new_vectors(tiny_pipes, images) -> None:
    pipe = tiny_pipes["sd1"]
    table_before = pipe.text_encoder.get_input_embeddings().weight.detach().clone()
    vocab = len(pipe.tokenizer)
    trainer = Trainer(pipe, images, params(learning_rate=1e-1))
    start = [v.detach().clone() for v in trainer.vectors]
    modules = [pipe.unet, pipe.vae, pipe.text_encoder]
    flags_before = [p.requires_grad for m in modules for p in m.parameters()]
    with trainer.installed():
        trainer.loss(trainer.sample_batch()).backward()
        new = {id(v) for v in trainer.vectors}
        frozen = [(n, p) for m in modules for n, p in m.named_parameters() if id(p) not in new]
        with_grad = [n for n, p in frozen if p.grad is not None or p.requires_grad]
        assert len(frozen) > 50 and with_grad == []
        assert trainer.vectors[0].grad is not None and trainer.vectors[0].grad.abs().sum() > 0
        assert not pipe.unet.training and not pipe.text_encoder.training
        trainer.optimizer.zero_grad()
        for _ in range(3):
            trainer.train_step(trainer.sample_batch())
    # Optimizer state covers only the [2, 768] vectors, not the vocabulary.
    state_sizes = [t.numel() for s in trainer.optimizer.state.values() for t in s.values()]
    assert max(state_sizes) == 2 * 768
    assert not torch.equal(trainer.vectors[0].detach(), start[0])
    # The table is unchanged, unwrapped, not resized, and the tokenizer has no new tokens.
    embedding = pipe.text_encoder.get_input_embeddings()
    assert isinstance(embedding, torch.nn.Embedding)
    assert torch.equal(embedding.weight, table_before)
    assert len(pipe.tokenizer) == vocab
    assert [p.requires_grad for m in modules for p in m.parameters()] == flags_before


def test_initial_vectors_come_from_the_initializer_words(tiny_pipes, images) -> None:
    pipe = tiny_pipes["sd1"]
    trainer = Trainer(pipe, images, params(initializer="cat, dog", vectors=3))
    table = pipe.text_encoder.get_input_embeddings().weight.detach()
    cat = pipe.tokenizer("cat", add_special_tokens=False).input_ids
    dog = pipe.tokenizer("dog", add_special_tokens=False).input_ids
    got = trainer.vectors[0].detach()
    assert torch.equal(got[0], table[cat].mean(0)) and torch.equal(got[2], got[0])
    assert torch.equal(got[1], table[dog].mean(0))


def test_a_fixed_batch_is_overfitted(tiny_pipes, images) -> None:
    """With a target the vectors can reach (the UNet's own output under other vectors) the loss
    on a fixed batch (fixed latents, noise, timestep, prompt) falls by more than half. (A random
    tiny UNet barely listens to its text, so against the real noise target no choice of vectors
    gets near half; the reachable target tests the optimisation itself.)"""
    trainer = Trainer(tiny_pipes["sd1"], images, params(learning_rate=5e-2))
    with trainer.installed():
        batch = trainer.fixed_batch(1)
        init = [v.detach().clone() for v in trainer.vectors]
        with torch.no_grad():
            for v, slot in zip(trainer.vectors, trainer.slots, strict=True):
                v.copy_(text_mod.initial_vectors(slot, ("dog",), 2))
        batch.target = trainer.prediction(batch)
        with torch.no_grad():
            for v, i in zip(trainer.vectors, init, strict=True):
                v.copy_(i)
        start = trainer.eval_loss(batch).item()
        for _ in range(25):
            trainer.train_step(batch)
        assert trainer.eval_loss(batch).item() < 0.5 * start


# -- reproducibility, resume, cancel ----------------------------------------------------------
def test_same_seed_gives_identical_vectors_and_another_seed_does_not(tiny_pipes, images) -> None:
    pipe = tiny_pipes["sd1"]
    a = train_embedding(pipe, images, params(seed=7))
    b = train_embedding(pipe, images, params(seed=7))
    c = train_embedding(pipe, images, params(seed=8))
    assert np.array_equal(a.embedding.vectors["emb_params"], b.embedding.vectors["emb_params"])
    assert a.losses == b.losses and len(a.losses) == 6
    assert not np.array_equal(a.embedding.vectors["emb_params"], c.embedding.vectors["emb_params"])
    assert a.embedding.token == "<toy>" and a.steps == 6 and not a.cancelled


def test_resume_from_a_checkpoint_equals_the_uninterrupted_run(tiny_pipes, images) -> None:
    pipe = tiny_pipes["sd1"]
    knobs = dict(steps=8, early_stop=True, early_stop_every=1, early_stop_window=50)
    full = train_embedding(pipe, images, params(**knobs))
    seen: list[int] = []

    def stop_at_4(progress) -> bool:
        seen.append(progress.step)
        assert progress.total == 8 and len(progress.losses) == 2 and progress.eta_s >= 0
        return progress.step < 4

    part = train_embedding(pipe, images, params(**knobs), progress=stop_at_4)
    assert part.cancelled and part.steps == 4 and seen == [2, 4]
    blob = part.checkpoint.to_bytes()
    assert b"lexicon-trainer-checkpoint/1" in blob[:4096]  # safetensors header, no pickle
    rest = train_embedding(pipe, images, params(**knobs), resume=Checkpoint.from_bytes(blob))
    assert rest.steps == 8 and not rest.cancelled
    assert np.array_equal(
        rest.embedding.vectors["emb_params"], full.embedding.vectors["emb_params"]
    )
    assert rest.losses == full.losses and rest.eval_losses == full.eval_losses

    # A cancel Event stops between any two steps; its checkpoint resumes exactly too.
    calls = {"n": 0}
    event = threading.Event()

    def cancel_after_3() -> bool:
        calls["n"] += 1
        if calls["n"] > 3:
            event.set()
        return event.is_set()

    mid = train_embedding(pipe, images, params(**knobs), cancel=cancel_after_3)
    assert mid.cancelled and mid.steps == 3
    again = train_embedding(
        pipe, images, params(**knobs), resume=mid.checkpoint, cancel=event.clear
    )
    assert np.array_equal(
        again.embedding.vectors["emb_params"], full.embedding.vectors["emb_params"]
    )

    with pytest.raises(BadRequest, match="other parameters"):
        train_embedding(pipe, images, params(**knobs, seed=99), resume=mid.checkpoint)
    with pytest.raises(BadRequest, match="not a trainer checkpoint"):
        Checkpoint.from_bytes(b"\x80\x04garbage-pickle")


def test_a_checkpoint_taken_mid_run_stays_a_snapshot(tiny_pipes, images) -> None:
    """A checkpoint kept from a progress report still holds that step's vectors and Adam state
    after training goes on (it used to share memory with the live parameter on the CPU)."""
    pipe = tiny_pipes["sd1"]
    kept = []

    def keep(progress) -> None:
        kept.append(progress.checkpoint())

    full = train_embedding(pipe, images, params(steps=6), progress=keep)
    first = kept[0]
    assert first.step == 2
    stopped = train_embedding(pipe, images, params(steps=6), progress=lambda p: p.step < 2)
    assert stopped.steps == 2
    for key in ("vectors", "exp_avg", "exp_avg_sq"):
        assert np.array_equal(
            getattr(first, key)["emb_params"], getattr(stopped.checkpoint, key)["emb_params"]
        ), key
    assert not np.array_equal(first.vectors["emb_params"], full.embedding.vectors["emb_params"])


def test_the_published_embedding_is_the_average_of_the_trajectory(tiny_pipes, images) -> None:
    """With ``ema_decay`` d the job publishes the bias-corrected exponential average of the
    vectors after each step (not the last step's); with 0, the last step's exactly."""
    pipe = tiny_pipes["sd1"]
    trajectory: list[np.ndarray] = []

    def record(progress) -> None:
        trajectory.append(progress.checkpoint().vectors["emb_params"])

    averaged = train_embedding(pipe, images, params(loss_every=1, ema_decay=0.5), progress=record)
    d = 0.5
    weights = np.array([(1 - d) * d ** (len(trajectory) - 1 - i) for i in range(len(trajectory))])
    expected = np.tensordot(weights / weights.sum(), np.stack(trajectory), axes=1)
    published = averaged.embedding.vectors["emb_params"]
    np.testing.assert_allclose(published, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(published, trajectory[-1], atol=1e-4)
    assert np.array_equal(averaged.checkpoint.published["emb_params"], published)

    last = train_embedding(pipe, images, params(ema_decay=0.0))
    assert np.array_equal(
        last.embedding.vectors["emb_params"], last.checkpoint.vectors["emb_params"]
    )


def test_a_checkpoint_without_an_average_still_resumes(tiny_pipes, images) -> None:
    """Checkpoints uploaded before averaging existed hold no average: they load, publish their
    vectors, and resume (averaging from there)."""
    pipe = tiny_pipes["sd1"]
    part = train_embedding(pipe, images, params(steps=6), progress=lambda p: p.step < 4)
    old = part.checkpoint
    old.average = {}
    loaded = Checkpoint.from_bytes(old.to_bytes())
    assert loaded.average == {} and loaded.published is loaded.vectors
    rest = train_embedding(pipe, images, params(steps=6), resume=loaded)
    assert rest.steps == 6 and not rest.cancelled
    assert np.isfinite(rest.embedding.vectors["emb_params"]).all()

    # One whose average does not match the vectors is refused as a checkpoint (the worker then
    # starts afresh), not a KeyError or a shape error mid-run.
    for broken in (
        {"emb_params": np.zeros((3, 768), np.float32)},
        {"other": old.vectors["emb_params"]},
    ):
        old.average = broken
        with pytest.raises(BadRequest, match="checkpoint's average tensors do not fit"):
            train_embedding(
                pipe, images, params(steps=6), resume=Checkpoint.from_bytes(old.to_bytes())
            )
    old.average, old.vectors = {}, {"emb_params": np.zeros((3, 768), np.float32)}
    with pytest.raises(BadRequest, match="checkpoint's vectors tensors do not fit"):
        train_embedding(pipe, images, params(steps=6), resume=Checkpoint.from_bytes(old.to_bytes()))


def test_early_stopping_stops_before_the_cap(tiny_pipes, images) -> None:
    knobs = dict(steps=60, early_stop=True, early_stop_every=1, early_stop_window=3)
    result = train_embedding(tiny_pipes["sd1"], images, params(**knobs, ema_decay=0.0))
    assert result.stopped_early and result.steps < 60 and len(result.eval_losses) >= 6
    fired = DvarRule(3, 0.15).first_stop(result.eval_losses)
    assert fired is not None and result.steps == fired + 1  # no averaging: stops when it fires


def test_early_stopping_trains_on_for_the_average_to_cover_the_plateau(tiny_pipes, images):
    """With averaging, the job goes on ``settle_steps`` (3 time constants) after DVAR fires, so
    the published average is made of the plateau, and reports that end as its total."""
    knobs = dict(steps=120, early_stop=True, early_stop_every=1, early_stop_window=3)
    p = params(**knobs, ema_decay=0.8, loss_every=1)
    assert p.settle_steps == 15
    totals: list[int] = []
    result = train_embedding(
        tiny_pipes["sd1"], images, p, progress=lambda r: totals.append(r.total)
    )
    fired = DvarRule(3, 0.15).first_stop(result.eval_losses)
    assert fired is not None
    assert result.stopped_early and result.steps == fired + 1 + 15
    assert totals[0] == 120 and totals[-1] == result.steps
    assert set(totals[fired + 1 : -1]) == {fired + 1 + 15}  # the end known once it fired


def test_settling_anneals_the_rate_so_the_vectors_come_to_rest(tiny_pipes, images) -> None:
    """After DVAR fires the rate falls linearly to 0 over the settle steps: the vectors' last
    moves are a fraction of those before it fired (at a constant rate they keep hopping, and so
    does their average). A run resumed mid-settle anneals the same way, to the same vectors."""
    knobs = dict(steps=120, early_stop=True, early_stop_every=1, early_stop_window=3)
    p = params(**knobs, ema_decay=0.8, loss_every=1)
    snaps: dict[int, Checkpoint] = {}
    result = train_embedding(
        tiny_pipes["sd1"], images, p, progress=lambda r: snaps.update({r.step: r.checkpoint()})
    )
    fired_at = DvarRule(3, 0.15).first_stop(result.eval_losses) + 1
    assert result.steps == fired_at + 15

    def moved(step: int) -> float:  # how far the step took the raw vectors
        a, b = snaps[step - 1].vectors["emb_params"], snaps[step].vectors["emb_params"]
        return float(np.linalg.norm(b - a))

    before = np.mean([moved(s) for s in range(fired_at - 2, fired_at + 1)])
    last = np.mean([moved(s) for s in range(result.steps - 2, result.steps + 1)])
    assert last < 0.35 * before, (last, before)  # 1/15-3/15 of the rate, Adam-normalised

    mid = snaps[fired_at + 5]
    rest = train_embedding(tiny_pipes["sd1"], images, p, resume=mid)
    assert rest.steps == result.steps
    assert np.array_equal(
        rest.embedding.vectors["emb_params"], result.embedding.vectors["emb_params"]
    )


def test_a_run_to_its_step_cap_settles_too_but_a_short_one_keeps_its_rate(tiny_pipes, images):
    """Without early stopping the last settle steps before the cap anneal the rate the same way
    (the run is at least twice as long as they are); a shorter job trains at its whole rate."""
    p = params(steps=40, ema_decay=0.8, loss_every=1)  # settle_steps 15
    snaps: dict[int, Checkpoint] = {}
    train_embedding(
        tiny_pipes["sd1"], images, p, progress=lambda r: snaps.update({r.step: r.checkpoint()})
    )

    def moved(step: int) -> float:
        a, b = snaps[step - 1].vectors["emb_params"], snaps[step].vectors["emb_params"]
        return float(np.linalg.norm(b - a))

    constant = np.mean([moved(s) for s in range(20, 26)])  # steps 20-25: before the last 15
    last = np.mean([moved(s) for s in range(38, 41)])
    assert last < 0.35 * constant, (last, constant)
    assert [settling_rate(p, s, None) for s in (0, 25, 30, 39)] == [1.0, 1.0, 10 / 15, 1 / 15]
    short = params(steps=29, ema_decay=0.8)
    assert {settling_rate(short, s, None) for s in range(29)} == {1.0}
    assert settling_rate(short, 20, fired_at=10) == 5 / 15  # DVAR's settling still anneals


# -- families ---------------------------------------------------------------------------------
def test_sd2_v_prediction_trains_on_the_velocity(tiny_pipes, images) -> None:
    from diffusers import DDIMScheduler, DDPMScheduler

    pipe = tiny_pipes["sd2"]
    original = pipe.scheduler
    pipe.scheduler = DDIMScheduler.from_config(original.config, prediction_type="v_prediction")
    try:
        trainer = Trainer(pipe, images, params())
        assert trainer.prediction_type == "v_prediction"
        with trainer.installed():
            batch = trainer.sample_batch()
            _, target = trainer._pred_target(batch)
            ddpm = DDPMScheduler.from_config(pipe.scheduler.config)
            expected = ddpm.get_velocity(batch.latents, batch.noise, batch.timesteps)
            assert torch.allclose(target, expected, atol=1e-5)
            assert not torch.allclose(target, batch.noise)
        result = train_embedding(pipe, images, params(steps=3))
        assert result.embedding.encoders == {"emb_params": [2, 1024]}
        assert np.isfinite(result.losses).all()
    finally:
        pipe.scheduler = original


def test_sdxl_trains_both_encoders_vectors(tiny_pipes, images) -> None:
    pipe = tiny_pipes["sdxl"]
    trainer = Trainer(pipe, images, params())
    init = trainer.vectors_numpy()
    result = train_embedding(pipe, images, params(steps=3, loss_every=3))
    emb = result.embedding
    assert emb.family.name == "sdxl"
    assert emb.encoders == {"clip_l": [2, 768], "clip_g": [2, 1280]}
    for name in ("clip_l", "clip_g"):
        assert not np.array_equal(emb.vectors[name], init[name]), name
    assert len(pipe.tokenizer_2) == len(pipe.tokenizer)
    assert isinstance(pipe.text_encoder_2.get_input_embeddings(), torch.nn.Embedding)


def test_previews_are_pngs_and_depend_on_the_vectors(tiny_pipes, images) -> None:
    from PIL import Image

    pipe = tiny_pipes["sd1"]
    result = train_embedding(pipe, images, params(steps=2))
    pngs = render_previews(pipe, result.embedding, seed=1, steps=2, height=32, width=32)
    assert len(pngs) == 2
    assert Image.open(io.BytesIO(pngs[0])).size == (32, 32)
    other = result.embedding.with_token("<toy>")
    other = type(other).from_tensors(
        {"emb_params": other.vectors["emb_params"] * 3}, token="<toy>", source_format="test"
    )
    assert render_previews(pipe, other, seed=1, steps=2, height=32, width=32)[0] != pngs[0]
    assert isinstance(pipe.text_encoder.get_input_embeddings(), torch.nn.Embedding)
