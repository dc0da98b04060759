"""Bad training images and parameters are refused by name, before anything is stored."""

from __future__ import annotations

import struct
import zlib

import pytest

from registry.training.models import TrainingJob
from tests.registry.helpers import assert_problem
from tests.training.conftest import TrainingHub, job_params, png


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG header that claims 10 gigapixels (the data would decompress to
    ~30 GB); the file itself is a few dozen bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


GOOD = ("good.png", png())


@pytest.mark.parametrize(
    ("images", "status", "code", "named"),
    [
        (
            [GOOD, ("notes.png", b"just some text, not an image\n")],
            415,
            "unsupported_format",
            "notes.png",
        ),
        ([GOOD, ("cut.png", png(64, 64)[:300])], 400, "bad_request", "cut.png"),
        ([GOOD, ("bomb.png", bomb_png())], 413, "too_large", "bomb.png"),
        (
            [("photo.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")],
            415,
            "unsupported_format",
            "photo.gif",
        ),
        ([], 400, "bad_request", "0 images"),
        ([(f"{i}.png", png(8, 8, seed=i)) for i in range(51)], 400, "bad_request", "51 images"),
    ],
    ids=["text-named-png", "truncated-png", "decompression-bomb", "gif", "no-images", "51-images"],
)
def test_bad_images_are_refused_naming_the_file(
    thub: TrainingHub, images: list, status: int, code: str, named: str
) -> None:
    alice = thub.user("alice")
    body = assert_problem(thub.submit(alice, job_params(), images), status, code)
    assert named in body["detail"], body
    assert thub.rows(TrainingJob) == []
    assert list(thub.store.iter_digests()) == []  # nothing stored for a refused job


def test_jpeg_and_webp_are_accepted(thub: TrainingHub) -> None:
    alice = thub.user("alice")
    images = [("a.jpg", png(fmt="JPEG")), ("b.webp", png(fmt="WEBP"))]
    r = thub.submit(alice, job_params(), images)
    assert r.status_code == 201, r.text
    assert [i["format"] for i in r.json()["images"]] == ["JPEG", "WEBP"]


def test_an_oversized_file_is_refused_by_size(make_training_hub) -> None:
    hub = make_training_hub(training_max_image_bytes=1000)
    alice = hub.user("alice")
    body = assert_problem(
        hub.submit(alice, job_params(), [("big.png", png(64, 64))]), 413, "too_large"
    )
    assert "big.png" in body["detail"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"vectors": 17}, "'vectors'"),
        ({"type": "person"}, "'concept'"),
        ({"trigger": "two words"}, "'trigger'"),
        ({"trigger": None}, "'trigger'"),
        ({"family": "sd3"}, "'family'"),
        ({"family": "sdxl", "base_model": "runwayml/stable-diffusion-v1-5"}, "'base_model'"),
        ({"target": "no-slash"}, "'target'"),
        ({"stpes": 10}, "'stpes'"),
        ({"device": "cuda"}, "'device'"),
    ],
)
def test_bad_params_are_refused_by_name(thub: TrainingHub, change: dict, named: str) -> None:
    alice = thub.user("alice")
    params = {k: v for k, v in {**job_params(), **change}.items() if v is not None}
    body = assert_problem(thub.submit(alice, params, [GOOD]), 400, "bad_request")
    assert named in body["detail"], body
    assert thub.rows(TrainingJob) == []


def test_params_must_be_json(thub: TrainingHub) -> None:
    alice = thub.user("alice")
    r = thub.client.post(
        "/api/v1/training-jobs",
        data={"params": "{not json"},
        files=[("images", ("a.png", png(), "image/png"))],
        headers={"Authorization": f"Bearer {alice}"},
    )
    assert "'params' is not valid JSON" in assert_problem(r, 400, "bad_request")["detail"]
