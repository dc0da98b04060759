"""An org's members page (issue 10): an owner adds a member, changes a role and removes one
through the API's services; the last owner cannot be removed (said on the page); a reader sees
the list without forms; an outsider gets the 404 page."""

from __future__ import annotations

from typing import Any

from registry.accounts import services as accounts
from registry.db import session_scope
from tests.web.conftest import Site
from tests.web.test_pages import _sign_in


def _roles(page: Any) -> dict[str, str]:
    rows = page.locator("tbody tr")
    out = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        name = row.locator("td").first.inner_text()
        select = row.locator("select")
        out[name] = (
            select.input_value() if select.count() else row.locator("td").nth(1).inner_text()
        )
    return out


def test_an_owner_manages_members_and_others_are_refused(
    page: Any, browser: Any, site: Site
) -> None:
    with session_scope(site.app.state.registry.engine) as session:
        accounts.create_org(session, "studio", accounts.get_user(session, "alice"))
    outsider = browser.new_context(base_url=site.url)
    oscar = outsider.new_page()
    _sign_in(oscar, "oscar")
    assert oscar.goto("/u/studio/members").status == 404

    _sign_in(page, "alice", "/u/studio/members")
    assert _roles(page) == {"alice": "owner"}
    page.get_by_label("Username").fill("oscar")
    page.get_by_label("Role", exact=True).select_option("reader")
    page.get_by_role("button", name="Add member").click()
    assert _roles(page) == {"alice": "owner", "oscar": "reader"}

    # A reader sees who is in, but has no forms; a forged change is refused (403, as the API).
    assert oscar.goto("/u/studio/members").status == 200
    assert _roles(oscar) == {"alice": "owner", "oscar": "reader"}
    assert oscar.locator("form[action^='/u/studio/members']").count() == 0

    page.get_by_label("Role of oscar", exact=True).select_option("maintainer")
    page.get_by_role("button", name="Change role of oscar").click()
    assert _roles(page)["oscar"] == "maintainer"
    page.get_by_role("button", name="Remove alice").click()
    assert "alice is the last owner of studio" in page.get_by_role("alert").inner_text()
    page.get_by_role("button", name="Remove oscar").click()
    assert _roles(page) == {"alice": "owner"}
    assert oscar.goto("/u/studio/members").status == 404
    outsider.close()
