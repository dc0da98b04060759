import tomllib
from pathlib import Path

import pytest

from client.core.errors import DigestMismatch
from client.lockfile import LOCK_VERSION, Lockfile, LockfileError
from client.refs import Ref

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def version(ns: str, name: str, number: int, digest: str, family: str = "sd15") -> dict:
    """The registry's version JSON, with the fields a lockfile ignores."""
    return {
        "namespace": ns,
        "name": name,
        "number": number,
        "digest": digest,
        "family": family,
        "trigger": "<cat>",
        "tags": ["latest"],
        "yanked": False,
    }


def test_round_trip(tmp_path: Path) -> None:
    lock = Lockfile.load(tmp_path / "lexicon.lock")
    assert lock.entries() == {}
    lock.pin("alice/cat", version("alice", "cat", 3, D1))
    lock.pin("bob/dog@2", version("bob", "dog", 2, D2, "sdxl"))
    lock.save()

    again = Lockfile.load(tmp_path / "lexicon.lock")
    assert again.entries() == lock.entries()
    entry = again.get("alice/cat:latest")
    assert (entry.namespace, entry.name, entry.version, entry.digest, entry.family) == (
        "alice",
        "cat",
        3,
        D1,
        "sd15",
    )
    assert entry.ref == Ref("alice", "cat", digest=D1)
    raw = tomllib.loads((tmp_path / "lexicon.lock").read_text())
    assert raw["lock-version"] == LOCK_VERSION


def test_output_is_stable_and_sorted(tmp_path: Path) -> None:
    a = Lockfile(tmp_path / "a.lock")
    b = Lockfile(tmp_path / "b.lock")
    pins = [
        ("zed/z", version("zed", "z", 1, D1)),
        ("alice/cat@3", version("alice", "cat", 3, D2)),
        ("alice/cat:stable", version("alice", "cat", 2, D3)),
    ]
    for ref, info in pins:
        a.pin(ref, info)
    for ref, info in reversed(pins):
        b.pin(ref, info)
    a.save()
    b.save()
    text = (tmp_path / "a.lock").read_text()
    assert text == (tmp_path / "b.lock").read_text()
    assert text.startswith("# ")
    keys = [line for line in text.splitlines() if line.startswith("[")]
    assert keys == ['["alice/cat:stable"]', '["alice/cat@3"]', '["zed/z:latest"]']
    Lockfile.load(tmp_path / "a.lock").save()  # load + save changes nothing
    assert (tmp_path / "a.lock").read_text() == text


def test_updating_one_entry_leaves_others(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.lock"
    lock = Lockfile(path)
    lock.pin("alice/cat", version("alice", "cat", 3, D1))
    lock.pin("bob/dog", version("bob", "dog", 1, D2))
    lock.save()
    before = Lockfile.load(path).entries()

    lock = Lockfile.load(path)
    lock.pin("alice/cat", version("alice", "cat", 4, D3))  # `latest` moved
    lock.save()
    after = Lockfile.load(path).entries()
    assert after["alice/cat:latest"].version == 4 and after["alice/cat:latest"].digest == D3
    assert after["bob/dog:latest"] == before["bob/dog:latest"]
    assert len(after) == 2

    assert lock.remove("bob/dog") and not lock.remove("bob/dog")
    assert list(lock.entries()) == ["alice/cat:latest"]


def test_bare_and_latest_refs_are_one_pin(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.lock"
    path.write_text(
        'lock-version = 1\n\n["alice/cat"]\nnamespace = "alice"\nname = "cat"\nversion = 1\n'
        f'digest = "{D1}"\nfamily = "sd15"\n'
    )
    lock = Lockfile.load(path)
    assert list(lock.entries()) == ["alice/cat:latest"]
    assert lock.get("alice/cat") == lock.get("alice/cat:latest")


def test_pin_refuses_a_version_the_ref_does_not_name(tmp_path: Path) -> None:
    lock = Lockfile(tmp_path / "x.lock")
    with pytest.raises(LockfileError, match="bob/dog"):
        lock.pin("alice/cat", version("bob", "dog", 1, D1))
    with pytest.raises(LockfileError, match="version 4"):
        lock.pin("alice/cat@3", version("alice", "cat", 4, D1))
    with pytest.raises(DigestMismatch):
        lock.pin(f"alice/cat@{D1}", version("alice", "cat", 1, D2))
    with pytest.raises(LockfileError, match="family"):
        lock.pin("alice/cat", {"namespace": "alice", "name": "cat", "number": 1, "digest": D1})
    assert lock.entries() == {}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("this is = not [toml", "not valid TOML"),
        ("lock-version = 99\n", "lock-version 99"),
        ("", "lock-version None"),
        ('lock-version = 1\n["alice/cat"]\nnamespace = "alice"\n', "invalid"),
        (
            f'lock-version = 1\n["alice/cat"]\nnamespace = "bob"\nname = "cat"\nversion = 1\n'
            f'digest = "{D1}"\nfamily = "sd15"\n',
            "do not match",
        ),
        (
            'lock-version = 1\n["alice/cat"]\nnamespace = "alice"\nname = "cat"\nversion = 1\n'
            'digest = "sha256:nothex"\nfamily = "sd15"\n',
            "digest",
        ),
    ],
)
def test_damaged_lockfile_is_a_clear_error(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "lexicon.lock"
    path.write_text(text)
    with pytest.raises(LockfileError, match=match) as info:
        Lockfile.load(path)
    assert str(path) in str(info.value)


def test_strings_are_escaped(tmp_path: Path) -> None:
    lock = Lockfile(tmp_path / "x.lock")
    lock.pin("alice/cat", version("alice", "cat", 1, D1, family='we"ird\\\n\x7f'))
    lock.save()
    assert Lockfile.load(tmp_path / "x.lock").get("alice/cat").family == 'we"ird\\\n\x7f'
