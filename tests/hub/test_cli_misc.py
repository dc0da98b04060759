"""`hub --help` stays light, and `hub import hf` reads a pre-populated local HF cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from client.hub import Hub
from tests.services import REPO_ROOT

HEAVY = ("torch", "diffusers", "transformers")


def test_help_imports_neither_torch_nor_diffusers() -> None:
    code = (
        "import sys\n"
        "from client.cli.main import app\n"
        "argvs = (['--help'], ['pull', '--help'], ['push', '--help'], ['import', 'hf', '--help'])\n"
        "for argv in argvs:\n"
        "    try:\n"
        "        app(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, (argv, exc.code)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-500:]
    assert "pull" in out.stdout and "--to-webui" in out.stdout


def _hf_cache(root: Path, repo_id: str, files: dict[str, bytes | Path]) -> Path:
    """The layout huggingface_hub reads: models--org--name/{refs/main, snapshots/<commit>/…}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, Path):
            shutil.copyfile(content, snapshot / name)
        else:
            (snapshot / name).write_bytes(content)
    return root


def test_import_hf_from_a_local_hf_cache(
    live, hub_cli, realworld_dir: Path, tmp_path: Path
) -> None:
    source = realworld_dir / "diffusers_fastai_learned_embeds.bin"
    hf = _hf_cache(
        tmp_path / "hf",
        "sd-concepts-library/birb-style",
        {
            "learned_embeds.bin": source,
            "token_identifier.txt": b"<birb-style>\n",
            "type_of_concept.txt": b"style\n",
        },
    )
    env = {"HF_HUB_CACHE": str(hf), "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    name = live.unique("birb")
    result = hub_cli("import", "hf", "sd-concepts-library/birb-style", f"alice/{name}", env=env)
    assert result.exit_code == 0, result.output
    with Hub(live.url, live.tokens["alice"], cache_dir=tmp_path / "c") as hub:
        version = hub.version(f"alice/{name}")
        info = hub.info(f"alice/{name}")
    from client.core.formats import read_embedding

    assert version.digest == read_embedding(source).digest
    assert version.trigger == "<birb-style>" and info.type == "style"
    assert "sd-concepts-library/birb-style" in info.description

    missing = hub_cli("import", "hf", "sd-concepts-library/absent", f"alice/{name}", env=env)
    assert missing.exit_code in (1, 2), missing.output
    assert missing.stderr.startswith("error: ") and "absent" in missing.stderr
    assert json.loads(hub_cli("versions", f"alice/{name}", "--json").stdout)[0]["number"] == 1
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
