"""The hub's pages in a real browser (issue 10): browse and search, an embedding page with its
pull command and a download whose digest matches, sign-in and tokens, privacy (404 for
outsiders), inert user-written HTML, security headers and basic accessibility."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import httpx

from client.core.canonical import parse_canonical
from registry.accounts import services as accounts
from registry.db import session_scope
from tests.web.conftest import PASSWORD, Site


def _sign_in(page: Any, username: str, next_page: str = "/") -> None:
    page.goto(f"/signin?next={next_page}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_visitor_searches_filters_opens_copies_and_downloads(page: Any, site: Site) -> None:
    page.goto("/")
    assert page.get_by_role("heading", name="Trending").is_visible()
    page.get_by_label("Search embeddings").fill("hands")
    page.get_by_label("Search embeddings").press("Enter")
    page.get_by_label("Family").select_option("sd1")
    page.get_by_role("button", name="Search", exact=True).last.click()
    assert "q=hands" in page.url and "family=sd1" in page.url  # the URL holds the query
    cards = page.locator(".card h3 a")
    assert sorted(cards.all_inner_texts()) == ["alice/bad-hands", "alice/good-hands"]
    assert "my-secret" not in page.content()

    page.get_by_label("Family").select_option("sdxl")
    page.get_by_role("button", name="Search", exact=True).last.click()
    assert page.get_by_role("status").inner_text().startswith("No embeddings match")

    page.goto("/search?q=hands&family=sd1")
    page.get_by_role("link", name="alice/bad-hands").click()
    assert page.get_by_role("heading", name="alice/bad-hands").is_visible()
    assert page.locator("svg.chart polyline.loss").count() == 1  # the loss curve
    assert "alice/good-hands" in page.locator("#similar ~ ul").inner_text()
    page.locator("button.copy[data-copy=code-hub]").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == "hub pull alice/bad-hands"
    # The prompt snippets follow the type: a negative embedding goes in the negative prompt.
    assert page.locator("#code-a1111").inner_text() == "Negative prompt: bad-hands"
    assert page.locator("#code-comfy").inner_text() == "negative: embedding:bad-hands"

    with page.expect_download() as info:
        page.get_by_role("link", name="canonical").click()
    data = Path(info.value.path()).read_bytes()
    served = httpx.get(f"{site.url}/api/v1/embeddings/alice/bad-hands/versions/1").json()
    assert parse_canonical(data).digest == served["digest"]
    assert hashlib.sha256(data).hexdigest()  # a real file, not an error page


def test_a_user_signs_in_makes_a_token_and_sees_their_private_item(
    page: Any, browser: Any, site: Site
) -> None:
    outsider = browser.new_context(base_url=site.url)
    stranger = outsider.new_page()
    r = stranger.goto("/embeddings/alice/my-secret")
    assert r.status == 404 and stranger.get_by_role("heading", name="Not found").is_visible()
    private_page = r.text()
    missing = stranger.goto("/embeddings/alice/no-such-thing")
    assert missing.status == 404 and missing.text() == private_page  # indistinguishable
    outsider.close()

    _sign_in(page, "alice", "/tokens")
    assert page.url.endswith("/tokens")
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token").inner_text()
    me = httpx.get(f"{site.url}/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json()["username"] == "alice"
    page.reload()  # shown once: a reload does not show it again
    assert secret not in page.content()
    page.get_by_role("button", name="Revoke laptop").click()
    gone = httpx.get(f"{site.url}/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"})
    assert gone.status_code == 401

    r = page.goto("/embeddings/alice/my-secret")
    assert r.status == 200 and page.get_by_text("only alice sees this").is_visible()
    page.goto("/search?author=alice")
    assert "alice/my-secret" in page.locator(".cards").inner_text()
    page.get_by_role("button", name="Sign out").click()
    assert page.goto("/embeddings/alice/my-secret").status == 404


def test_wrong_password_and_forged_forms_are_refused(page: Any, site: Site) -> None:
    page.goto("/signin")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong username or password."
    # A cross-site form post without the CSRF token is refused.
    forged = httpx.post(f"{site.url}/signin", data={"username": "alice", "password": PASSWORD})
    assert forged.status_code == 403 and "lexicon_session" not in forged.cookies


def test_user_written_html_is_inert_and_headers_are_strict(page: Any, site: Site) -> None:
    response = page.goto("/embeddings/alice/sneaky")
    page.wait_for_timeout(300)
    assert page.dialogs == []  # no alert() ran
    assert page.locator(".description script, .description img").count() == 0
    assert "<script>alert" in page.locator(".description").inner_text()  # shown as text
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert page.locator("script:not([src])").count() == 0  # no inline script on the page


def _assert_accessible(page: Any, path: str) -> None:
    """Every field labelled, every link and button named, one h1, a language, AA contrast."""
    page.goto(path)
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map(el => el.outerHTML)"""
    )
    assert unlabelled == [], (path, unlabelled)
    nameless = page.evaluate(
        """() => [...document.querySelectorAll('a, button')]
            .filter(el => !(el.innerText || el.getAttribute('aria-label') || '').trim())
            .map(el => el.outerHTML)"""
    )
    assert nameless == [], (path, nameless)
    assert page.locator("h1").count() == 1 and page.locator("html[lang]").count() == 1, path
    low = page.evaluate(_CONTRAST)
    assert low == [], (path, low[:5])


def test_pages_are_labelled_contrasted_and_keyboard_usable(
    page: Any, browser: Any, site: Site
) -> None:
    for path in ("/", "/search?q=hands", "/embeddings/alice/bad-hands", "/signin"):
        _assert_accessible(page, path)
    # The signed-in pages too: tokens, the training form and an org's members page.
    with session_scope(site.app.state.registry.engine) as session:
        accounts.create_org(session, "a11y-org", accounts.get_user(session, "alice"))
    signed_in = browser.new_context(base_url=site.url).new_page()
    _sign_in(signed_in, "alice")
    for path in ("/tokens", "/train", "/u/a11y-org", "/u/a11y-org/members"):
        _assert_accessible(signed_in, path)
    # Keyboard: the skip link comes first and the search box is reachable by Tab.
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Tab")  # the brand link
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "top-q"
    page.keyboard.type("water")
    page.keyboard.press("Enter")  # searching needs no mouse
    page.wait_for_url(re.compile(r"/search\?q=water"))
    page.keyboard.press("Tab")
    assert page.locator(":focus").count() == 1


_CONTRAST = (Path(__file__).parent / "contrast.js").read_text()  # WCAG AA text contrast


def test_similar_embeddings_api_and_page_agree(site: Site) -> None:
    api = httpx.get(f"{site.url}/api/v1/embeddings/alice/bad-hands/similar?limit=3").json()
    assert api["items"][0]["name"] == "good-hands"
    assert all(re.fullmatch(r"alice/[a-z-]+@1", i["ref"]) for i in api["items"])
    assert "my-secret" not in str(api)
