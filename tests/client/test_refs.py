import pytest

from client.core.errors import BadName
from client.refs import Ref, parse_ref

HEX = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alice/cat", Ref("alice", "cat", tag="latest")),
        ("alice/cat:stable", Ref("alice", "cat", tag="stable")),
        ("alice/cat@3", Ref("alice", "cat", version=3)),
        (f"alice/cat@sha256:{HEX}", Ref("alice", "cat", digest=f"sha256:{HEX}")),
        ("a.b_c-1/x.y_z-2:v1.0", Ref("a.b_c-1", "x.y_z-2", tag="v1.0")),
    ],
)
def test_parse_forms(text: str, expected: Ref) -> None:
    ref = Ref.parse(text)
    assert ref == expected
    assert Ref.parse(str(ref)) == ref


def test_bare_ref_means_latest_and_prints_it() -> None:
    ref = Ref.parse("alice/cat")
    assert (ref.tag, ref.version, ref.digest) == ("latest", None, None)
    assert str(ref) == "alice/cat:latest"
    assert not ref.is_pinned


def test_api_ref_segment() -> None:
    assert Ref.parse("a/b@12").api_ref == "12"
    assert Ref.parse("a/b:beta").api_ref == "beta"
    assert Ref.parse(f"a/b@sha256:{HEX}").api_ref == f"sha256:{HEX}"
    assert Ref.parse("a/b@12").is_pinned


def test_uppercase_digest_is_normalised() -> None:
    assert Ref.parse(f"a/b@sha256:{HEX.upper()}").digest == f"sha256:{HEX}"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "cat",
        "alice/",
        "/cat",
        "alice/cat/extra",
        "Alice/cat",
        "alice/Cat",
        "-alice/cat",
        "alice/cat-",
        "alice/" + "x" * 65,
        "alice/cat@",
        "alice/cat@0",
        "alice/cat@-1",
        "alice/cat@v1",
        "alice/cat@sha256:abc",
        "alice/cat@md5:" + HEX[:32],
        "alice/cat:",
        "alice/cat:3",
        "alice/cat:UPPER",
        "alice/cat:a/b",
        "alice/../cat",
    ],
)
def test_bad_refs_name_expected_forms(text: str) -> None:
    with pytest.raises(BadName) as info:
        Ref.parse(text)
    message = str(info.value)
    assert "ns/name@3" in message and "ns/name:tag" in message


def test_slug_length_limit() -> None:
    assert Ref.parse("a/" + "x" * 64).name == "x" * 64


def test_constructor_refuses_two_selectors() -> None:
    with pytest.raises(BadName):
        Ref("alice", "cat", version=1, tag="latest")
    with pytest.raises(BadName):
        Ref("alice", "cat", version=0)


def test_parse_ref_passes_ref_through() -> None:
    ref = Ref("alice", "cat", version=2)
    assert parse_ref(ref) is ref
    assert parse_ref("alice/cat@2") == ref
