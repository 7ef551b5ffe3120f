"""Driving the UI over plain HTTP, as a browser would: forms with their hidden fields, and the cookies they set."""

from __future__ import annotations

import html
import re

import httpx

FIELD = re.compile(r'<input type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)">')


def hidden(page: str, name: str) -> str:
    """The first hidden field of that name on a page."""
    found = next((m["value"] for m in FIELD.finditer(page) if m["name"] == name), None)
    assert found is not None, f"no hidden field {name!r} on the page"
    return html.unescape(found)


def log_in(browser: httpx.Client, token: str, *, next_page: str = "/ui/") -> httpx.Response:
    form = browser.get("/ui/login", params={"next": next_page})
    return browser.post("/ui/login", data={"token": token, "csrf": hidden(form.text, "csrf"), "next": next_page})


def browser_for(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=120, follow_redirects=False)
