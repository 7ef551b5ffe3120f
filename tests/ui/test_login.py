"""Logging in to the UI with a token, sessions that end with their token, CSRF on every form, single sign-on."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
from starlette.testclient import TestClient

from server.conftest import Team, declare_server, start_team
from shipyard.server.app import create_app
from shipyard.server.ui.sessions import KEY_FILE
from shipyard.service import Shipyard
from ui.helpers import browser_for, hidden, log_in


def test_a_page_without_a_session_is_the_login_form(team: Team) -> None:
    with browser_for(team.url) as browser:
        page = browser.get("/ui/?since=7d")
    assert page.status_code == 401 and 'name="token"' in page.text
    assert hidden(page.text, "next") == "/ui/?since=7d"
    assert "login-reason" not in page.text  # nothing ended: there is nothing to explain


def test_log_in_with_a_token_sets_a_strict_httponly_cookie_and_returns_to_the_page(team: Team) -> None:
    with browser_for(team.url) as browser:
        done = log_in(browser, team.tokens["val"], next_page="/ui/?x=1")
        assert done.status_code == 303 and done.headers["location"] == "/ui/?x=1"
        cookie = done.headers["set-cookie"]
        assert cookie.startswith("shipyard_session=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Path=/" in cookie and "Secure" not in cookie  # the server's address is http here
        home = browser.get("/ui/")
    assert home.status_code == 200 and 'data-testid="viewer">val<' in home.text and "(viewer)" in home.text
    key = team.root / ".shipyard" / "server" / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_text().strip()) == 64


def test_a_bad_token_or_a_forged_login_form_is_refused(team: Team) -> None:
    with browser_for(team.url) as browser:
        unknown = log_in(browser, "shp_" + "x" * 43)
        form = browser.get("/ui/login")
        browser.cookies.clear()  # a post from another site carries no login cookie
        forged = browser.post("/ui/login", data={"token": team.tokens["val"], "csrf": hidden(form.text, "csrf")})
    assert (
        unknown.status_code == 401
        and "unknown token" in unknown.text
        and "shipyard_session" not in unknown.headers.get("set-cookie", "")
    )
    assert forged.status_code == 403 and "did not come from this server" in forged.text
    assert "shipyard_session" not in forged.headers.get("set-cookie", "")
    denied = [e for e in team.service.audit_log() if e.action == "token.denied"]
    assert denied and denied[-1].details["reason"] == "unknown"


def test_a_revoked_token_ends_its_session_at_the_next_request(team: Team) -> None:
    _, secret = team.service.as_actor("ada").create_token("vera-browser", principal="vera")
    with browser_for(team.url) as browser:
        assert log_in(browser, secret).status_code == 303
        assert browser.get("/ui/").status_code == 200
        with team.client("ada") as ada:
            ada.delete("/api/v1/tokens/vera-browser").raise_for_status()
        ended = browser.get("/ui/")
        again = browser.get("/ui/")
    assert ended.status_code == 401 and 'name="token"' in ended.text
    assert "Your session ended: token vera-browser was revoked" in ended.text
    assert "shipyard_session=" in ended.headers["set-cookie"] and "Max-Age=0" in ended.headers["set-cookie"]
    assert again.status_code == 401 and 'name="token"' in again.text


def test_logout_needs_the_csrf_token_and_forgets_the_session(team: Team) -> None:
    with browser_for(team.url) as browser:
        log_in(browser, team.tokens["vera"])
        page = browser.get("/ui/")
        session = browser.cookies["shipyard_session"]
        forged = browser.post("/ui/logout", data={})
        assert browser.get("/ui/").status_code == 200  # still signed in
        done = browser.post("/ui/logout", data={"csrf": hidden(page.text, "csrf")})
    assert forged.status_code == 403 and "CSRF" in forged.text
    denied = [e for e in team.service.audit_log() if e.action == "csrf.denied"]
    assert denied[-1].actor == "vera" and denied[-1].subject == "/logout"
    assert done.status_code == 303 and done.headers["location"] == "/ui/login"
    with browser_for(team.url) as replay:  # the old cookie is worth nothing now
        replay.cookies.set("shipyard_session", session)
        assert replay.get("/ui/").status_code == 401


def test_an_https_server_sets_a_secure_host_cookie(trained_project: Path) -> None:
    declare_server(trained_project, "https://shipyard.example.com")
    service = Shipyard.open_hosted(trained_project, env={})
    _, secret = service.as_actor("ada").create_token("val-https", principal="val")
    try:
        with TestClient(create_app(service), base_url="https://shipyard.example.com") as browser:
            form = browser.get("/ui/login")
            done = browser.post("/ui/login", data={"token": secret, "csrf": hidden(form.text, "csrf")}, follow_redirects=False)
            cookie = done.headers["set-cookie"]
            assert cookie.startswith("__Host-shipyard_session=") and "Secure" in cookie and "SameSite=strict" in cookie
            assert browser.get("/ui/").status_code == 200
    finally:
        service.close()


def test_a_trusted_proxy_signs_in(trained_project: Path) -> None:
    trusted = start_team(trained_project, env={}, trusted_proxies=["127.0.0.1"])
    try:
        with httpx.Client(base_url=trusted.url) as proxy:
            vera = proxy.get("/ui/", headers={"x-forwarded-email": "vera"})
            stranger = proxy.get("/ui/", headers={"x-forwarded-email": "mallory@example.com"})
    finally:
        trusted.server.stop()
        trusted.service.close()
    assert vera.status_code == 200 and 'data-testid="viewer">vera<' in vera.text and "single sign-on" in vera.text
    assert "Log out" not in vera.text  # the proxy owns that session
    assert stranger.status_code == 403 and "not a principal of this server" in stranger.text


def test_a_proxy_header_from_elsewhere_or_a_claimed_identity_is_refused(team: Team) -> None:
    with httpx.Client(base_url=team.url) as browser:
        refused = browser.get("/ui/", headers={"x-forwarded-email": "ada"})
        claimed = browser.get("/ui/", headers={"x-actor": "ada"})
    events = team.service.audit_log()
    assert refused.status_code == 401 and "not a trusted proxy" in refused.text
    assert claimed.status_code == 401 and "claims an identity" in claimed.text
    assert [e.subject for e in events if e.action == "sso.denied"][-1] == "ada"
