"""``hub inspect`` and ``hub convert`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from client.cli.main import app
from client.core.canonical import serialize_safetensors
from client.core.formats import read_path
from tests.core.conftest import vectors

runner = CliRunner()


def test_inspect_real_world_a1111_pt(realworld_dir: Path) -> None:
    result = runner.invoke(app, ["inspect", str(realworld_dir / "a1111_bad-artist.pt")])
    assert result.exit_code == 0, result.output
    for text in ("a1111-pt", "sd1", "emb_params [2, 768]", "F32", "bad-artist", "sha256:"):
        assert text in result.stdout


def test_inspect_json(realworld_dir: Path) -> None:
    path = realworld_dir / "diffusers_fastai_learned_embeds.bin"
    result = runner.invoke(app, ["inspect", "--json", str(path)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert {"format", "family", "vectors", "encoders", "dtype", "token", "digest"} <= set(info)
    assert info["format"] == "diffusers-bin" and info["token"] == "<birb-style>"
    assert info["encoders"] == {"emb_params": [1, 768]} and info["vectors"] == 1
    assert info["digest"] == read_path(path).digest


def test_inspect_refusal_is_one_line_and_exit_1(realworld_dir: Path) -> None:
    path = realworld_dir / "a1111_empty.pt"
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {path}: the pickle holds an empty dict")
    assert "fix:" in lines[0] and "Traceback" not in result.output


def test_inspect_sdxl_pair_folder_and_files(tmp_path: Path) -> None:
    vecs = vectors("sdxl", n=2)
    folder = tmp_path / "pair"
    folder.mkdir()
    a = folder / "learned_embeds.safetensors"
    b = folder / "learned_embeds_2.safetensors"
    a.write_bytes(serialize_safetensors({"<x>": vecs["clip_l"]}))
    b.write_bytes(serialize_safetensors({"<x>": vecs["clip_g"]}))
    for args in ([str(folder)], [str(b), str(a)]):
        result = runner.invoke(app, ["inspect", "--json", *args])
        assert result.exit_code == 0, result.output
        info = json.loads(result.stdout)
        assert info["family"] == "sdxl" and info["format"] == "diffusers-sdxl-pair"
        assert info["encoders"] == {"clip_l": [2, 768], "clip_g": [2, 1280]}


def test_convert_round_trip(realworld_dir: Path, tmp_path: Path) -> None:
    source = realworld_dir / "a1111_bad-prompt.pt"
    digest = read_path(source).digest
    for fmt in ("canonical", "a1111", "kohya", "diffusers"):
        out = tmp_path / f"bad-prompt.{fmt}.safetensors"
        result = runner.invoke(app, ["convert", str(source), str(out), "--to", fmt])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == str(out)
        assert read_path(out).digest == digest
    back = runner.invoke(
        app, ["inspect", "--json", str(tmp_path / "bad-prompt.canonical.safetensors")]
    )
    # A1111 keys .pt files by file name; the pickle's own name is kept as info (issue 9.3).
    assert json.loads(back.stdout)["token"] == "a1111_bad-prompt"
    original = json.loads(runner.invoke(app, ["inspect", "--json", str(source)]).stdout)
    assert (original["token"], original["info"]["name"]) == ("a1111_bad-prompt", "bad_prompt")


def test_convert_refusals(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not an embedding at all")
    result = runner.invoke(app, ["convert", str(junk), str(tmp_path / "o"), "--to", "canonical"])
    assert result.exit_code == 1 and result.stderr.startswith(f"error: {junk}:")
    good = tmp_path / "g.safetensors"
    good.write_bytes(serialize_safetensors(vectors("sd1")))
    result = runner.invoke(app, ["convert", str(good), str(tmp_path / "o"), "--to", "ckpt"])
    assert result.exit_code == 1 and "unknown format 'ckpt'" in result.stderr


def test_cli_module_does_not_import_torch() -> None:
    code = (
        "import sys; import client.cli.main, client.core.formats, client.core.writers; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
