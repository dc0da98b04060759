"""The hostile-input corpus (``tests/attack/hostile_corpus.py``), every case pushed through the
client library and posted raw to a live registry on both backends: refused with its error code,
nothing stored (no row, no blob), no pickled code run, and the server healthy after.

One test per path and backend loops over every case and reports all wrong cases at once (a
test per case would cost more in fixtures than the requests themselves)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from client.core.canonical import parse_canonical
from client.core.errors import ErrorCode, LexiconError
from client.hub import Hub
from tests.attack.cases import FileCase, RequestCase, codes
from tests.attack.hostile_corpus import Corpus
from tests.attack.hostile_publish import good_file
from tests.attack.support import World, refusal_problem, snapshot

PUSH_KWARGS = {
    "trigger",
    "base_model",
    "type",
    "tags",
    "description",
    "license",
    "notes",
    "training",
}
# The client may refuse before sending anything, naming the field or the name rule.
CLIENT_SIDE = codes(ErrorCode.BAD_REQUEST, ErrorCode.BAD_NAME)


def run_cases(
    world: World, marker_dir: Path, cases: list[Any], attack: Callable[[Any], str | None]
) -> list[str]:
    """Run ``attack(case)`` for each case (it returns what is wrong, or None, or "accepted" when
    a leak check passed and rows may have been added); then check nothing was stored, no code
    ran and the server is healthy. Returns one line per wrong case."""
    wrong = []
    for case in cases:
        before = snapshot(world.app)
        try:
            problem = attack(case)
        except Exception as exc:  # noqa: BLE001 - every case reports, the loop goes on
            problem = f"raised {type(exc).__name__}: {str(exc)[:200]}"
        problems = [problem] if problem and problem != "accepted" else []
        if problem != "accepted":
            problems += before.diff(snapshot(world.app))
        ran = sorted(p.name for p in marker_dir.iterdir())
        if ran:
            problems.append(f"PICKLED CODE RAN: {ran}")
        health = world.request("GET", "/healthz").status_code
        if health != 200:
            problems.append(f"/healthz answered {health} afterwards")
        if problems:
            wrong.append(f"{case.name} [{case.kind}]: " + "; ".join(problems))
    ready = world.request("GET", "/readyz")
    if ready.status_code != 200:
        wrong.append(f"/readyz answered {ready.status_code} after the corpus: {ready.text}")
    return wrong


def report(wrong: list[str], total: int, what: str) -> None:
    assert not wrong, f"{len(wrong)} of {total} {what}:\n" + "\n".join(wrong)


def test_hostile_files_refused_by_hub_push(
    corpus: Corpus, world: World, marker_dir: Path, tmp_path: Path
) -> None:
    def attack(case: FileCase) -> str | None:
        path = tmp_path / case.name / case.filename
        path.parent.mkdir()
        path.write_bytes(case.data)
        with Hub(world.url, world.tokens["alice"], tmp_path / "cache", offline=False) as hub:
            try:
                info = hub.push(path, f"alice/f-{case.name}")
            except LexiconError as exc:
                if exc.code.value in case.client_codes:
                    return None
                return f"refused with {exc.code.value}, expected {sorted(case.client_codes)}: {exc}"
        return f"pushed as {info.ref} ({case.why})"

    wrong = run_cases(world, marker_dir, corpus.files, attack)
    report(wrong, len(corpus.files), "hostile files were not refused by `hub push`")


def test_hostile_files_refused_by_the_api(corpus: Corpus, world: World, marker_dir: Path) -> None:
    def attack(case: FileCase) -> str | None:
        response = world.request(
            "POST",
            f"/api/v1/embeddings/alice/r-{case.name}/versions",
            "alice",
            files={"file": (case.filename, case.data, "application/octet-stream")},
        )
        return refusal_problem(response, case.api_codes)

    wrong = run_cases(world, marker_dir, corpus.files, attack)
    report(wrong, len(corpus.files), "hostile files posted raw were not refused")


def _send(world: World, case: RequestCase, name: str) -> httpx.Response:
    kwargs: dict[str, Any] = {}
    if case.parts:
        kwargs["files"] = [
            (p.field, (p.filename, world.fill(p.data, name), "application/octet-stream"))
            if p.filename
            else (p.field, (None, world.fill(p.data, name)))
            for p in case.parts
        ]
    elif case.body is not None or case.json is not None:
        body = case.body if case.body is not None else json.dumps(world.fill(case.json, name))
        kwargs["content"] = body
        kwargs["headers"] = {"Content-Type": "application/json"}
    return world.request(case.method, world.fill(case.path, name), case.as_user, **kwargs)


def _leak_problems(world: World, case: RequestCase, name: str) -> list[str]:
    """When a registry strips the hostile part instead of refusing, it must grant nothing."""
    problems = []
    if case.leak_check == "lookup_not_listed":
        sha = world.values["$VICTIM_SHA256"]
        for value in (sha, sha[:10], sha[:12]):
            hits = world.request("GET", f"/api/v1/lookup?hash={value}").json()
            squatters = [h["ref"] for h in hits.get("items", []) if h["ref"].startswith("alice/")]
            if squatters:
                problems.append(f"lookup {value} lists the squatter {squatters}")
    if case.leak_check == "preview_not_served":
        digest = world.values["$VICTIM_DIGEST"]
        path = f"/api/v1/embeddings/alice/{name}/versions/1/previews/{digest}"
        for who in ("anonymous", "alice"):
            got = world.request("GET", path, who)
            if got.status_code != 404 or got.content == world.victim_bytes:
                problems.append(f"{who} got bob's private blob as a preview ({got.status_code})")
    return problems


def test_hostile_requests_refused_by_the_api(
    corpus: Corpus, world: World, marker_dir: Path
) -> None:
    def attack(case: RequestCase) -> str | None:
        name = f"q-{case.name}"[:64]
        response = _send(world, case, name)
        if case.leak_check and response.is_success:
            problems = _leak_problems(world, case, name)
            return "; ".join(problems) if problems else "accepted"
        return refusal_problem(response, case.codes)

    wrong = run_cases(world, marker_dir, corpus.requests, attack)
    report(wrong, len(corpus.requests), "hostile requests were not refused")


def _client_capable(case: RequestCase) -> bool:
    if case.client is None:
        return False
    return case.client[0] != "push" or set(case.client[1]) <= PUSH_KWARGS


def _call(hub: Hub, world: World, case: RequestCase, name: str, tmp_path: Path) -> Any:
    what, arg = case.client  # type: ignore[misc]
    arg = world.fill(arg, name)
    if what == "push":
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(good_file(7000 + sum(map(ord, name))))
        return hub.push(path, f"alice/{name}", **arg)
    calls: dict[str, Callable[[], Any]] = {
        "tag": lambda: hub.tag("alice/base@1", arg),
        "tag_number": lambda: hub.tag(f"alice/base@{arg}", "x"),
        "pull": lambda: hub.pull(f"alice/base@{arg}", out=tmp_path / "out.safetensors"),
        "yank": lambda: hub.yank(f"alice/base@{arg}"),
        "search": lambda: hub.search(**arg),
        "lookup": lambda: hub.lookup(arg),
    }
    return calls[what]()


def test_hostile_requests_refused_through_the_client(
    corpus: Corpus, world: World, marker_dir: Path, tmp_path: Path
) -> None:
    cases = [c for c in corpus.requests if _client_capable(c)]

    def attack(case: RequestCase) -> str | None:
        name = f"c-{case.name}"[:64]
        with Hub(world.url, world.tokens["alice"], tmp_path / "cache", offline=False) as hub:
            try:
                result = _call(hub, world, case, name, tmp_path)
            except LexiconError as exc:
                allowed = (case.client_codes or case.codes) | CLIENT_SIDE
                if exc.code.value in allowed:
                    return None
                return f"refused with {exc.code.value}, expected {sorted(allowed)}: {exc}"
        if case.leak_check:
            problems = _leak_problems(world, case, name)
            return "; ".join(problems) if problems else "accepted"
        return f"the client accepted it: {str(result)[:120]}"

    wrong = run_cases(world, marker_dir, cases, attack)
    report(wrong, len(cases), "hostile requests were not refused through the client")


def test_the_corpus_is_large_and_covers_every_class(corpus: Corpus) -> None:
    kinds = corpus.kinds()
    assert len(corpus) >= 80, len(corpus)
    for kind in (
        "code-running pickle",
        "zip member path traversal",
        "zip bomb",
        "PNG bomb",
        "NaN/Inf",
        "wrong width or count",
        "malformed safetensors",
        "over-long field",
        "wrong JSON type",
        "NUL byte",
        "NaN in JSON",
        "deep JSON",
        "unicode digit version ref",
        ">64-bit int",
        "tampered cursor",
        "name with trailing newline",
        "claimed hash / foreign digest",
        "previews naming foreign digests",
    ):
        assert kinds.get(kind), f"no case of {kind!r}"


def test_the_server_still_publishes_and_serves_after_the_corpus(world: World) -> None:
    response = world.request(
        "POST",
        "/api/v1/embeddings/alice/after-attack/versions",
        "alice",
        files={"file": ("a.safetensors", good_file(424242))},
    )
    assert response.status_code == 201, response.text
    got = world.request(
        "GET",
        "/api/v1/embeddings/alice/after-attack/versions/1/file",
        "alice",
        follow_redirects=True,
    )
    assert got.status_code == 200, got.text
    assert parse_canonical(got.content).digest == response.json()["digest"]
