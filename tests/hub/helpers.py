"""Small helpers shared by the live-registry client tests."""

from __future__ import annotations

import re
import secrets
import socket
from pathlib import Path

import numpy as np

from client.core.embedding import Embedding
from client.core.formats import read_embedding

PUSHED = re.compile(r"^(?P<ref>[a-z0-9._-]+/[a-z0-9._-]+@\d+) (?P<digest>sha256:[0-9a-f]{64})")
WIDTHS = {
    "sd1": {"emb_params": 768},
    "sd2": {"emb_params": 1024},
    "sdxl": {"clip_l": 768, "clip_g": 1280},
}


def random_embedding(family: str = "sd1", n: int = 2, token: str = "<rnd>") -> Embedding:
    rng = np.random.default_rng(secrets.randbits(64))
    tensors = {k: rng.standard_normal((n, w)).astype(np.float32) for k, w in WIDTHS[family].items()}
    return Embedding.from_tensors(tensors, token=token, source_format="test")


def write_random(path: Path, family: str = "sd1", token: str = "<rnd>") -> Embedding:
    from client.core.writers import write_embedding

    embedding = random_embedding(family, token=token)
    write_embedding(embedding, path, "a1111" if family != "sdxl" else "kohya")
    return embedding


def digest_of(path: Path) -> str:
    return read_embedding(path).digest


def closed_url() -> str:
    """A loopback URL where nothing listens (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def blob_files(cache: Path) -> list[Path]:
    root = cache / "blobs"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
