"""Tags, yank, stars, search, lookup, login and visibility through the CLI on a live registry."""

from __future__ import annotations

import json
from pathlib import Path

from client.hub import Hub
from tests.hub.helpers import digest_of, random_embedding


def _push_versions(live, tmp_path: Path, name: str, n: int, **meta) -> list:
    with Hub(live.url, live.tokens["alice"], cache_dir=tmp_path / "pusher") as hub:
        return [
            hub.push(random_embedding(token=f"<{name}>"), f"alice/{name}", **meta) for _ in range(n)
        ]


def test_tags_and_yank(live, hub_cli, tmp_path: Path) -> None:
    name = live.unique("tagged")
    v1, v2 = _push_versions(live, tmp_path, name, 2)
    assert (v1.number, v2.number) == (1, 2)

    result = hub_cli("tag", f"alice/{name}@1", "stable")
    assert result.exit_code == 0, result.output
    pulled = hub_cli("pull", f"alice/{name}:stable", "-o", tmp_path / "stable.safetensors")
    assert pulled.exit_code == 0, pulled.output
    assert digest_of(tmp_path / "stable.safetensors") == v1.digest

    info = json.loads(hub_cli("info", f"alice/{name}", "--json").stdout)
    assert info["embedding"]["version_tags"] == {"latest": 2, "stable": 1}
    assert info["version"]["digest"] == v2.digest

    yanked = hub_cli("yank", f"alice/{name}@2")
    assert yanked.exit_code == 0 and "yanked" in yanked.stdout, yanked.output
    # `latest` now skips the yanked version (a fresh cache: tags are cached for a TTL) ...
    fresh = {"LEXICON_CACHE": str(tmp_path / "fresh")}
    latest = hub_cli("pull", f"alice/{name}", "-o", tmp_path / "latest.safetensors", env=fresh)
    assert latest.exit_code == 0, latest.output
    assert digest_of(tmp_path / "latest.safetensors") == v1.digest
    # ... while the pinned number still pulls, and the version list says it is yanked.
    pinned = hub_cli("pull", f"alice/{name}@2", "-o", tmp_path / "two.safetensors", env=fresh)
    assert pinned.exit_code == 0 and digest_of(tmp_path / "two.safetensors") == v2.digest
    listed = json.loads(hub_cli("versions", f"alice/{name}", "--json").stdout)
    assert [(v["number"], v["yanked"]) for v in listed] == [(1, False), (2, True)]

    assert hub_cli("yank", f"alice/{name}@2", "--undo").exit_code == 0
    assert hub_cli("untag", f"alice/{name}", "stable").exit_code == 0
    gone = hub_cli("pull", f"alice/{name}:stable", env={"LEXICON_CACHE": str(tmp_path / "f2")})
    assert gone.exit_code == 2 and "stable" in gone.stderr
    # Only writers may tag: bob is refused (auth, exit 4).
    bob = hub_cli("tag", f"alice/{name}@1", "mine", env={"LEXICON_TOKEN": live.tokens["bob"]})
    assert bob.exit_code == 4, bob.output


def test_tags_are_re_resolved_after_the_ttl(live, tmp_path: Path) -> None:
    name = live.unique("ttl")
    v1, v2 = _push_versions(live, tmp_path, name, 1) + [None]
    with Hub(live.url, live.tokens["alice"], cache_dir=tmp_path / "c") as hub:
        assert hub.load(f"alice/{name}").digest == v1.digest
        (v2,) = _push_versions(live, tmp_path, name, 1)
        assert hub.load(f"alice/{name}").digest == v1.digest  # within the TTL: cached
        hub.tag_ttl_s = 0
        assert hub.load(f"alice/{name}").digest == v2.digest


def test_private_embeddings_are_invisible_to_others(live, hub_cli, tmp_path: Path) -> None:
    name = live.unique("secret")
    path = tmp_path / "secret.safetensors"
    from client.core.writers import write_embedding

    embedding = random_embedding(token="<secret>")
    write_embedding(embedding, path, "a1111")
    pushed = hub_cli("push", path, f"alice/{name}", "--private", "--description", "secretword")
    assert pushed.exit_code == 0, pushed.output

    bob = {"LEXICON_TOKEN": live.tokens["bob"], "LEXICON_CACHE": str(tmp_path / "bob")}
    for args in (["pull", f"alice/{name}"], ["info", f"alice/{name}"], ["pull", f"alice/{name}@1"]):
        result = hub_cli(*args, env=bob)
        assert result.exit_code == 2, (args, result.output)
        assert "not found" in result.stderr.lower()
    found = json.loads(hub_cli("search", name, "--json", env=bob).stdout)
    assert found["items"] == []
    mine = json.loads(hub_cli("search", name, "--json").stdout)
    assert [i["name"] for i in mine["items"]] == [name]
    # An existing public embedding made private by a later push disappears for bob too.
    other = live.unique("later")
    _push_versions(live, tmp_path, other, 1)
    assert hub_cli("info", f"alice/{other}", env=bob).exit_code == 0
    assert hub_cli("push", path, f"alice/{other}", "--private").exit_code == 0
    assert hub_cli("info", f"alice/{other}", env=bob).exit_code == 2
    # Bob cannot publish alice's private bytes by digest: his push uploads the file itself.
    with Hub(live.url, live.tokens["bob"], cache_dir=tmp_path / "bob2") as hub:
        assert hub.push(embedding, f"bob/{live.unique()}").uploaded is True


def test_search_table_star_lookup_and_whoami(live, hub_cli, tmp_path: Path) -> None:
    name = live.unique("zebrastripe")
    (v1,) = _push_versions(
        live, tmp_path, name, 1, type="style", tags=["animals"], description="zebra stripes"
    )
    table = hub_cli("search", "zebra", "--type", "style", "--tag", "animals")
    assert table.exit_code == 0, table.output
    assert f"alice/{name}" in table.stdout
    assert hub_cli("star", f"alice/{name}").stdout.strip() == f"alice/{name}: 1 star"
    found = json.loads(hub_cli("lookup", v1.digest, "--json").stdout)
    assert [v["ref"] for v in found] == [f"alice/{name}@1"]
    missing = hub_cli("lookup", "sha256:" + "0" * 64)
    assert missing.exit_code == 2
    me = hub_cli("whoami")
    assert me.exit_code == 0 and me.stdout.startswith("alice on ")


def test_login_checks_the_token_then_saves_it(live, hub_cli, tmp_path: Path) -> None:
    env = {"LEXICON_TOKEN": "", "LEXICON_URL": ""}
    bad = hub_cli("login", "--url", live.url, "--token", "lex_not-a-token", env=env)
    assert bad.exit_code == 4, bad.output
    assert not list((tmp_path / "config").rglob("credentials.json"))
    good = hub_cli("login", "--url", live.url, "--token", live.tokens["bob"], env=env)
    assert good.exit_code == 0 and "as bob" in good.stdout, good.output
    (saved,) = (tmp_path / "config").rglob("credentials.json")
    assert saved.stat().st_mode & 0o777 == 0o600
    # Later commands use the saved token for that URL.
    me = hub_cli("whoami", env=env)
    assert me.exit_code == 0 and me.stdout.startswith("bob on "), me.output
    # ... until logout forgets it; then the registry asks for a token again.
    assert hub_cli("logout", env=env).exit_code == 0
    assert not saved.exists()
    assert hub_cli("whoami", env={**env, "LEXICON_URL": live.url}).exit_code == 4


def test_lookup_by_the_short_hash_of_the_original_file(
    live, hub_cli, tmp_path: Path, realworld_dir: Path
) -> None:
    """A1111 and Civitai show the first 10 hex digits of the sha256 of the file the user has;
    the canonical digest differs, so the push records the original file's hash."""
    import hashlib

    name = live.unique("shorthash")
    original = realworld_dir / "a1111_bad-artist.pt"
    pushed = hub_cli("push", original, f"alice/{name}")
    assert pushed.exit_code == 0, pushed.output
    short = hashlib.sha256(original.read_bytes()).hexdigest()[:10]
    found = json.loads(hub_cli("lookup", short, "--json").stdout)
    assert f"alice/{name}@1" in [v["ref"] for v in found]
    assert all(v["upload_sha256"].startswith(short) for v in found)
