"""Only strictly valid safetensors (issue 8, defect 7; hostile headers from defect 4).

Every file in :data:`MALFORMED` is one a lax reader would accept, read differently from another
loader, or crash on. The reader names the problem with a typed error; ``hub inspect``,
``hub convert`` and ``hub push`` print one ``error:`` line and exit 1; the registry refuses it
with a 4xx code and stores nothing. And everything our writers emit is read back identically by
the ``safetensors`` library and accepted by the strict reader. The registry's side is in
``tests/registry/test_strict_uploads.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from client.cli.errors import DEBUG_ENV
from client.cli.main import app
from client.core.canonical import (
    canonical_bytes,
    looks_like_safetensors,
    parse_canonical,
    parse_safetensors,
)
from client.core.embedding import Embedding
from client.core.errors import LexiconError
from client.core.formats import read_embedding
from client.core.writers import FORMATS, embedding_to_bytes
from tests.core.conftest import vectors
from tests.core.malformed_safetensors import MALFORMED, Malformed

runner = CliRunner()


@pytest.mark.parametrize("case", MALFORMED, ids=[c.id for c in MALFORMED])
def test_reader_names_each_malformation(case: Malformed) -> None:
    with pytest.raises(case.error) as caught:
        parse_safetensors(case.data)
    assert type(caught.value) is case.error
    assert case.says in str(caught.value)
    # The format reader and the upload parser refuse it too, typed, never a stray exception.
    with pytest.raises(LexiconError):
        read_embedding(case.data)
    with pytest.raises(LexiconError):
        parse_canonical(case.data)


def _assert_one_error_line(result, path: Path) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}: "), lines[0]
    assert "(fix: " in lines[0]
    return lines[0]


def test_cli_inspect_and_convert_name_the_problem_in_one_line(tmp_path: Path) -> None:
    for case in MALFORMED:
        path = tmp_path / f"{case.id}.safetensors"
        path.write_bytes(case.data)
        line = _assert_one_error_line(runner.invoke(app, ["inspect", str(path)]), path)
        if looks_like_safetensors(case.data):
            assert case.says in line, (case.id, line)
        out = tmp_path / f"{case.id}-out.safetensors"
        result = runner.invoke(app, ["convert", str(path), str(out), "--to", "canonical"])
        _assert_one_error_line(result, path)
        assert not out.exists()


def test_cli_push_names_the_problem_before_uploading(tmp_path: Path) -> None:
    env = {
        "LEXICON_URL": "http://127.0.0.1:9",  # nothing listens: the refusal must come first
        "LEXICON_TOKEN": "unused",
        "LEXICON_CACHE": str(tmp_path / "cache"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    for case in MALFORMED[::3]:
        path = tmp_path / f"{case.id}.safetensors"
        path.write_bytes(case.data)
        result = runner.invoke(app, ["push", str(path), "alice/cat"], env=env)
        _assert_one_error_line(result, path)


def test_unexpected_exception_is_one_line_unless_debugging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (not a typed error) is one line naming the exception; LEXICON_DEBUG shows it."""
    import client.core.formats

    def buggy_reader(*args: object, **kwargs: object) -> Embedding:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(client.core.formats, "read_embedding", buggy_reader)
    path = tmp_path / "e.safetensors"
    path.write_bytes(canonical_bytes(Embedding.from_tensors(vectors(), source_format="t")))
    for command in (
        ["inspect", str(path)],
        ["convert", str(path), str(tmp_path / "o"), "--to", "a1111"],
    ):
        result = runner.invoke(app, command, env={DEBUG_ENV: ""})
        line = _assert_one_error_line(result, path)
        assert "unexpected ZeroDivisionError: division by zero" in line
        assert DEBUG_ENV in line
    result = runner.invoke(app, ["inspect", str(path)], env={DEBUG_ENV: "1"})
    assert isinstance(result.exception, ZeroDivisionError)


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_everything_we_write_loads_identically_in_safetensors(family: str, dtype: str) -> None:
    """The registry stores only what every loader reads the same way, so what we write must be
    strictly valid and read by the reference loader as the very same tensors."""
    from safetensors.numpy import load as numpy_load

    torch_load = pytest.importorskip("safetensors.torch").load if dtype == "bfloat16" else None
    tokens = [None, "<cat>", "naïve-ü", "emoji-\U0001f431", 'quote"back\\slash', "a b\tc"]
    for n, token in zip([1, 2, 7, 75, 3, 1], tokens, strict=True):
        embedding = Embedding.from_tensors(
            vectors(family, n=n, seed=n, dtype=dtype), token=token, source_format="test"
        )
        for fmt in FORMATS:
            for data in embedding_to_bytes(embedding, fmt, token=token).values():
                tensors, _ = parse_safetensors(data)  # the strict reader accepts it
                if torch_load is not None:
                    loaded = {k: v.float().numpy() for k, v in torch_load(data).items()}
                else:
                    loaded = numpy_load(data)
                assert set(loaded) == set(tensors)
                for name, array in tensors.items():
                    assert loaded[name].shape == array.shape
                    np.testing.assert_array_equal(loaded[name], array.astype(loaded[name].dtype))
        assert parse_canonical(canonical_bytes(embedding)).digest == embedding.digest


@pytest.mark.parametrize("token", ["nul\x00token", "lone-\ud800-surrogate"])
def test_writers_refuse_text_the_strict_reader_would_refuse(token: str, tmp_path: Path) -> None:
    """A pickle can carry any str as its token; converting it must not write a file that our
    own reader (and the registry) then call malformed."""
    from client.core.errors import InvalidEmbedding, MalformedSafetensors
    from client.core.writers import write_embedding

    embedding = Embedding.from_tensors(vectors(), token=token, source_format="diffusers-bin")
    for fmt in ("canonical", "diffusers"):
        with pytest.raises(InvalidEmbedding) as caught:
            write_embedding(embedding, tmp_path / f"{fmt}.safetensors", fmt)
        assert not isinstance(caught.value, MalformedSafetensors)
        assert "token" in str(caught.value) or "name" in str(caught.value)
    assert not list(tmp_path.iterdir())
