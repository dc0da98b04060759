"""Files we write are what A1111, ComfyUI, kohya, InvokeAI and diffusers expect of their names
and layouts (issue 9): a ``.pt`` is a torch file, the trigger is the word those tools key a file
by, and a single diffusers vector stays 1-D."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from client.cli.main import app
from client.core.embedding import Embedding
from client.core.errors import BadRequest
from client.core.formats import read_embedding, read_path
from client.core.writers import write_embedding
from tests.core.conftest import vectors

runner = CliRunner()
A1111_KEYS = {
    "string_to_token",
    "string_to_param",
    "name",
    "step",
    "sd_checkpoint",
    "sd_checkpoint_name",
}


def _real(realworld_dir: Path, tmp_path: Path, name: str) -> Path:
    """A community file under the name its users have it by (``a1111_`` prefix dropped)."""
    source = realworld_dir / name
    if not source.exists():
        pytest.skip(f"{name} absent from {realworld_dir}")
    target = tmp_path / "embeddings" / name.removeprefix("a1111_").removeprefix("diffusers_")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


# -- 9.2: a .pt is a torch file -------------------------------------------------------------------


def test_convert_to_a1111_pt_writes_a_torch_file_torch_loads(
    realworld_dir: Path, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    source = _real(realworld_dir, tmp_path, "a1111_badhandv4.pt")
    original = torch.load(source, weights_only=True, map_location="cpu")
    out = tmp_path / "out" / "badhandv4.pt"
    result = runner.invoke(app, ["convert", str(source), str(out), "--to", "a1111"])
    assert result.exit_code == 0, result.output
    assert zipfile.is_zipfile(out), "a .pt must be a torch zip, not safetensors"
    loaded = torch.load(out, weights_only=True)
    assert set(loaded) == A1111_KEYS
    assert loaded["string_to_token"] == {"*": 265}
    np.testing.assert_array_equal(
        loaded["string_to_param"]["*"].numpy(), original["string_to_param"]["*"].detach().numpy()
    )
    assert (loaded["name"], loaded["step"]) == ("badhandv4", original["step"])
    assert loaded["sd_checkpoint"] == original["sd_checkpoint"]
    # ... and our own (torch-free) reader gives back the same embedding.
    back = read_path(out)
    assert (back.source_format, back.token, back.digest) == (
        "a1111-pt",
        "badhandv4",
        read_path(source).digest,
    )


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_a1111_pt_is_deterministic_and_mmap_loadable(tmp_path: Path, dtype: str) -> None:
    """The registry indexes the sha256 of renderings: the same embedding, the same bytes."""
    torch = pytest.importorskip("torch")
    emb = Embedding.from_tensors(
        vectors("sd1", n=3, dtype=dtype), token="<brand>", source_format="t"
    )
    (first,) = write_embedding(emb, tmp_path / "a" / "brand.pt", "a1111")
    (second,) = write_embedding(emb, tmp_path / "b" / "brand.pt", "a1111")
    assert first.read_bytes() == second.read_bytes()
    loaded = torch.load(first, weights_only=True, mmap=True)
    tensor = loaded["string_to_param"]["*"]
    assert tensor.dtype == getattr(torch, dtype) and list(tensor.shape) == [3, 768]
    np.testing.assert_array_equal(
        tensor.float().numpy(), emb.vectors["emb_params"].astype(np.float32)
    )
    assert loaded["name"] == "brand" and loaded["step"] is None
    assert read_path(first).digest == emb.digest


@pytest.mark.parametrize("fmt", ["canonical", "kohya", "diffusers"])
def test_a_pt_name_for_a_safetensors_format_is_refused_naming_the_extension(
    tmp_path: Path, fmt: str
) -> None:
    source = tmp_path / "brand.safetensors"
    emb = Embedding.from_tensors(vectors("sd1"), token="<brand>", source_format="t")
    write_embedding(emb, source, "a1111")
    out = tmp_path / "x.pt"
    result = runner.invoke(app, ["convert", str(source), str(out), "--to", fmt])
    assert result.exit_code == 1
    assert "x.safetensors" in result.stderr and ".pt" in result.stderr
    assert not out.exists()


def test_sdxl_has_no_a1111_pt_and_the_refusal_names_safetensors(tmp_path: Path) -> None:
    emb = Embedding.from_tensors(vectors("sdxl"), token="<xl>", source_format="t")
    with pytest.raises(BadRequest, match=r"xl\.safetensors"):
        write_embedding(emb, tmp_path / "xl.pt", "a1111")
    assert not (tmp_path / "xl.pt").exists()
    (written,) = write_embedding(emb, tmp_path / "xl.safetensors", "a1111")
    assert read_path(written).digest == emb.digest


# -- 9.3: the trigger is what A1111 and ComfyUI key the file by -----------------------------------


@pytest.mark.parametrize(
    ("name", "trigger", "internal"),
    [
        ("a1111_badhandv4.pt", "badhandv4", "badhandv3"),
        ("a1111_negative_hand-neg.pt", "negative_hand-neg", "negative_hand"),
        ("a1111_bad-prompt.pt", "bad-prompt", "bad_prompt"),
    ],
)
def test_a1111_trigger_is_the_file_stem_and_the_internal_name_is_kept(
    realworld_dir: Path, tmp_path: Path, name: str, trigger: str, internal: str
) -> None:
    emb = read_path(_real(realworld_dir, tmp_path, name))
    assert (emb.token, emb.info["name"]) == (trigger, internal)


def test_safetensors_and_bare_pickles_take_the_file_stem(
    realworld_dir: Path, tmp_path: Path
) -> None:
    for name in ("a1111_EasyNegative.safetensors", "a1111_EasyNegative.pt"):
        assert read_path(_real(realworld_dir, tmp_path, name)).token == "EasyNegative"
    data = (realworld_dir / "a1111_EasyNegative.safetensors").read_bytes()
    assert read_embedding(data, filename="uploads/EasyNegative.safetensors").token == "EasyNegative"


def test_diffusers_files_keep_their_token(realworld_dir: Path, tmp_path: Path) -> None:
    emb = read_path(_real(realworld_dir, tmp_path, "diffusers_fastai_learned_embeds.bin"))
    assert emb.token == "<birb-style>"


# -- 9.7: a single diffusers vector stays 1-D -----------------------------------------------------


def test_single_vector_diffusers_file_is_one_dimensional(
    realworld_dir: Path, tmp_path: Path
) -> None:
    from safetensors.numpy import load_file

    source = _real(realworld_dir, tmp_path, "diffusers_fastai_learned_embeds.bin")
    (out,) = write_embedding(read_path(source), tmp_path / "birb.safetensors", "diffusers")
    (array,) = load_file(str(out)).values()
    assert array.shape == (768,), "InvokeAI reads the width from shape[0]"
    assert read_path(out).digest == read_path(source).digest


def test_single_vector_sdxl_pair_is_one_dimensional(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    emb = Embedding.from_tensors(vectors("sdxl", n=1), token="<xl>", source_format="t")
    files = write_embedding(emb, tmp_path / "xl", "diffusers")
    assert sorted(next(iter(load_file(str(f)).values())).shape for f in files) == [(768,), (1280,)]
    assert read_embedding(files).digest == emb.digest


def test_diffusers_loads_our_single_vector_file(realworld_dir: Path, tmp_path: Path) -> None:
    """diffusers' own loader, on a tiny SD1 pipeline (real classes, random weights)."""
    pytest.importorskip("diffusers")
    from client.testing import tiny_pipeline

    source = _real(realworld_dir, tmp_path, "diffusers_fastai_learned_embeds.bin")
    emb = read_path(source)
    (out,) = write_embedding(emb, tmp_path / "birb.safetensors", "diffusers")
    pipe = tiny_pipeline("sd1")
    pipe.load_textual_inversion(str(out))
    token_id = pipe.tokenizer.convert_tokens_to_ids("<birb-style>")
    row = pipe.text_encoder.get_input_embeddings().weight[token_id].detach().numpy()
    np.testing.assert_allclose(row, emb.vectors["emb_params"][0], rtol=0, atol=0)


def test_torch_writer_output_is_a_plain_stored_zip(tmp_path: Path) -> None:
    emb = Embedding.from_tensors(vectors("sd1"), token="<t>", source_format="t")
    (out,) = write_embedding(emb, tmp_path / "t.pt", "a1111")
    with zipfile.ZipFile(io.BytesIO(out.read_bytes())) as archive:
        names = [i.filename for i in archive.infolist()]
        assert names[0] == "archive/data.pkl" and "archive/data/0" in names
        assert all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in archive.infolist())
