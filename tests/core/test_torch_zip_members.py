"""Torch zip containers hold exactly what a torch file holds: members under one root folder
with plain names (no ``..``, absolute paths or backslashes), only the storages the pickle uses,
and no more unpacked bytes in all than an embedding file may have. Anything else is refused
by name before a tensor is built (issue 8: the attack suite pushed such files as versions)."""

from __future__ import annotations

import io
import zipfile

import pytest

from client.core.errors import InvalidEmbedding
from client.core.formats import read_embedding
from client.core.torchfile import load_torch
from tests.attack.hostile_files import _torch_zip, _valid_data_pkl, _valid_zip_members, zip_cases

torch = pytest.importorskip("torch")

HOSTILE = {c.name: c for c in zip_cases() if c.kind in ("zip member path traversal", "zip bomb")}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_zip_is_refused_naming_the_problem(name: str) -> None:
    case = HOSTILE[name]
    with pytest.raises(InvalidEmbedding) as caught:
        read_embedding(case.data, filename=case.filename)
    assert caught.value.code.value in case.client_codes


@pytest.mark.parametrize(
    "member",
    ["../../../tmp/evil.sh", "/etc/cron.d/evil", "..\\..\\evil.bat", "archive/data/../../evil"],
)
def test_a_traversal_member_is_named(member: str) -> None:
    data = _torch_zip({**_valid_zip_members(), member: b"#!/bin/sh\n"})
    with pytest.raises(InvalidEmbedding, match="member") as caught:
        load_torch(data)
    assert repr(member) in str(caught.value) or member in str(caught.value)


def test_a_storage_the_pickle_does_not_use_is_refused() -> None:
    members = {**_valid_zip_members(), "archive/data/7": b"\0" * 1024}
    with pytest.raises(InvalidEmbedding, match="archive/data/7"):
        load_torch(_torch_zip(members))


def test_members_unpacking_past_the_limit_together_are_a_zip_bomb() -> None:
    spread = {
        **_valid_zip_members(key="x0"),
        **{f"archive/data/x{i}": b"\0" * (4 << 20) for i in range(1, 9)},
    }
    spread["archive/data.pkl"] = _valid_data_pkl("x0")
    with pytest.raises(InvalidEmbedding, match="zip bomb"):
        load_torch(_torch_zip(spread, deflate=True))


def test_files_torch_itself_writes_still_load() -> None:
    """torch 2.x adds ``.format_version``, ``.storage_alignment``, ``byteorder`` and
    ``.data/serialization_id`` beside ``data.pkl``; none of them is refused."""
    buf = io.BytesIO()
    torch.save({"emb_params": torch.ones(2, 768)}, buf)
    names = zipfile.ZipFile(io.BytesIO(buf.getvalue())).namelist()
    assert any(n.endswith("/data.pkl") for n in names)
    loaded = load_torch(buf.getvalue())
    assert loaded["emb_params"].shape == (2, 768)
