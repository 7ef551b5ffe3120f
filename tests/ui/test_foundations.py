"""The UI's foundations: its pages and vendored assets come from the server itself, and text is escaped."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx

from server.conftest import Team
from shipyard.server.ui.web import CSP, templates

STATIC = Path(__file__).resolve().parents[2] / "src" / "shipyard" / "server" / "ui" / "static"


def vendored() -> list[tuple[str, str, str]]:
    """(file, version, sha256) per row of VENDORED.md's table."""
    table = (STATIC / "VENDORED.md").read_text()
    rows = re.findall(r"^\| (vendor/\S+) \| [^|]+ \| ([^|]+) \| [^|]+ \| ([0-9a-f]{64}) \|$", table, re.M)
    return [(name, version.strip(), digest) for name, version, digest in rows]


def test_vendored_md_names_every_vendored_file_with_its_digest_and_license() -> None:
    rows = vendored()
    scripts = sorted(p.relative_to(STATIC).as_posix() for p in (STATIC / "vendor").glob("*.js"))
    assert sorted(name for name, _, _ in rows) == scripts and len(scripts) == 4
    for name, _, digest in rows:
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, name
        library = Path(name).name.removesuffix(".min.js")
        assert (STATIC / "vendor" / f"{library}.LICENSE.txt").is_file(), f"no license beside {name}"


def test_assets_are_served_by_the_server_itself(team: Team) -> None:
    with httpx.Client(base_url=team.url) as browser:
        for name, _, digest in vendored():
            response = browser.get(f"/ui/static/{name}")
            assert response.status_code == 200 and "javascript" in response.headers["content-type"], name
            assert hashlib.sha256(response.content).hexdigest() == digest
        htmx = browser.get("/ui/static/vendor/htmx.min.js").text
        assert 'version:"2.0.11"' in htmx
        css = browser.get("/ui/static/ui.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_an_unknown_page_is_an_html_404_with_the_security_headers(team: Team) -> None:
    with httpx.Client(base_url=team.url) as browser:
        missing = browser.get("/ui/no/such/page")
        home = browser.get("/")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "no such page: /ui/no/such/page" in missing.text
    assert missing.headers["content-security-policy"] == CSP and "script-src 'self'" in CSP and "unsafe" not in CSP
    assert missing.headers["x-frame-options"] == "DENY" and missing.headers["x-content-type-options"] == "nosniff"
    assert home.status_code == 307 and home.headers["location"] == "/ui/"


def test_templates_escape_every_value() -> None:
    hostile = '<script>alert("x")</script> & "quotes"'
    rendered = templates().from_string("<p title='{{ v }}'>{{ v }}</p>").render(v=hostile)
    assert "<script>" not in rendered and "&lt;script&gt;" in rendered and "&#34;quotes&#34;" in rendered
