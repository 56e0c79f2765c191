"""The dashboard in a real browser (Debian chromium, headless) against a real stack: login
through the OIDC provider's form, what each user sees, creating an experiment, logout, the
session cookie, tokens kept off the browser, CSP, CSRF, and axe-core accessibility."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.dashboard.conftest import Stack, Visitor, unique

pytestmark = pytest.mark.usefixtures("seeded")


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> dict[str, str]:
    names = {
        "alice_private": unique("alice-private"),
        "bob_private": unique("bob-private"),
        "bob_public": unique("bob-public"),
    }
    stack.create("alice", names["alice_private"])
    stack.create("bob", names["bob_private"])
    stack.create("bob", names["bob_public"], public=True)
    return names


def _names_on_page(visitor: Visitor) -> set[str]:
    return set(visitor.page.locator("table.data tbody th a").all_inner_texts())


def test_anonymous_visitor_sees_public_experiments_only(
    visitor: Visitor, seeded: dict[str, str]
) -> None:
    visitor.goto("/experiments")
    names = _names_on_page(visitor)
    assert seeded["bob_public"] in names
    assert seeded["alice_private"] not in names
    assert seeded["bob_private"] not in names
    assert "only public experiments" in visitor.page.content()


def test_login_shows_own_and_public_but_never_others_private(
    visitor: Visitor, seeded: dict[str, str]
) -> None:
    visitor.login("alice")
    names = _names_on_page(visitor)
    assert seeded["alice_private"] in names
    assert seeded["bob_public"] in names
    assert seeded["bob_private"] not in names
    # Another user's private experiment is a friendly 404, not a leak.
    bob_private = visitor.stack.experiments[seeded["bob_private"]]["id"]
    response = visitor.goto(f"/experiments/{bob_private}")
    assert response.status == 404
    assert seeded["bob_private"] not in visitor.page.content()
    assert visitor.csp_violations() == []


def test_create_an_experiment_in_the_browser(visitor: Visitor) -> None:
    visitor.login("alice")
    visitor.page.get_by_role("link", name="New experiment").click()
    name = unique("made-in-browser")
    visitor.page.get_by_label("Name", exact=True).fill(name)
    visitor.page.get_by_label("Description").fill("from the browser test")
    visitor.page.get_by_role("button", name="Create").click()
    visitor.page.wait_for_url(f"{visitor.stack.url}/experiments/*")
    assert visitor.page.locator("h1").inner_text().startswith(name)
    visitor.goto("/experiments")
    assert name in _names_on_page(visitor)
    assert visitor.csp_violations() == []


def test_logout_closes_login_only_pages(visitor: Visitor) -> None:
    visitor.login("bob")
    assert visitor.goto("/account").status == 200
    (session,) = [s for s in visitor.stack.sessions() if (s.get("user") or {}).get("sub") == "bob"]
    visitor.page.get_by_role("button", name="Log out", exact=True).click()
    # RP-initiated logout: the provider's end-session page, then back to us.
    visitor.page.wait_for_url(f"{visitor.stack.issuer}/oauth2/end_session*")
    assert "id_token_hint=" in visitor.page.url
    visitor.page.get_by_role("button", name="End session").click()
    visitor.page.wait_for_url(f"{visitor.stack.url}/experiments")
    assert all(s["_id"] != session["_id"] for s in visitor.stack.sessions())
    for path in ("/account", "/experiments/new"):
        visitor.goto(path)
        # Closed: the page sends the visitor to log in (at the provider).
        assert visitor.page.url.startswith(f"{visitor.stack.issuer}/oauth2/authorize")


def test_session_cookie_flags_and_a_fresh_id_at_login(visitor: Visitor) -> None:
    visitor.goto("/login?next=/experiments")  # stores the login state: a pre-login session
    (before,) = [c for c in visitor.context.cookies() if c["name"] == "drift_session"]
    visitor.page.locator('button[name="sub"][value="alice"]').click()
    visitor.page.wait_for_url(f"{visitor.stack.url}/experiments")
    (cookie,) = [c for c in visitor.context.cookies() if c["name"] == "drift_session"]
    assert cookie["value"] != before["value"]  # no session fixation
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["secure"] is False  # development on http://127.0.0.1 only
    # The cookie is an opaque random id, not data.
    assert len(cookie["value"]) == 43
    assert "." not in cookie["value"]


def test_no_page_storage_or_cookie_holds_the_access_token(visitor: Visitor) -> None:
    visitor.login("alice")
    pages = []
    for path in ("/experiments", "/account", "/experiments/new"):
        visitor.goto(path)
        pages.append(visitor.page.content())
    storage = visitor.page.evaluate(
        "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
    )
    cookies = json.dumps(visitor.context.cookies())
    tokens = [
        s["tokens"] for s in visitor.stack.sessions() if (s.get("user") or {}).get("sub") == "alice"
    ]
    assert tokens
    secrets = [
        t[k] for t in tokens for k in ("access_token", "refresh_token", "id_token") if k in t
    ]
    assert secrets
    for secret in secrets:
        for text in [*pages, storage, cookies]:
            assert secret not in text


def test_csp_and_security_headers_on_every_page(visitor: Visitor) -> None:
    for path in ("/experiments", "/static/app.css", "/no-such-page"):
        response = visitor.goto(path)
        headers = response.headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp
        assert "style-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "object-src 'none'" in csp
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "referrer-policy" in headers
    html = visitor.goto("/experiments").text()
    assert "style=" not in html
    assert "<script>" not in html  # only <script src=...>


def test_csrf_refuses_missing_token_and_foreign_origin(visitor: Visitor) -> None:
    visitor.login("alice")
    token = visitor.page.locator('meta[name="csrf-token"]').get_attribute("content")
    url = f"{visitor.stack.url}/experiments"
    request = visitor.context.request  # shares the browser's cookies
    name = unique("csrf")
    own = {"Origin": visitor.stack.url}
    no_token = request.post(url, form={"name": name}, headers=own, max_redirects=0)
    assert no_token.status == 403
    wrong = request.post(
        url, form={"name": name, "csrf_token": "x" * 43}, headers=own, max_redirects=0
    )
    assert wrong.status == 403
    foreign = request.post(
        url,
        form={"name": name, "csrf_token": token},
        headers={"Origin": "http://evil.example"},
        max_redirects=0,
    )
    assert foreign.status == 403
    header = request.post(
        url, form={"name": name}, headers={**own, "X-CSRF-Token": token}, max_redirects=0
    )
    assert header.status == 303  # the htmx way: the token in X-CSRF-Token
    visitor.goto("/experiments")
    assert name in _names_on_page(visitor)  # only the accepted one made it


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation(browser: Any, stack: Stack, scheme: str) -> None:
    visitor = Visitor(browser, stack, bypass_csp=True)
    visitor.page.emulate_media(color_scheme=scheme)
    visitor.login("alice")
    for path in ("/experiments", "/account", "/experiments/new"):
        visitor.goto(path)
        bad = visitor.axe_serious()
        assert bad == [], f"{path} ({scheme}): {bad}"
    visitor.close()
