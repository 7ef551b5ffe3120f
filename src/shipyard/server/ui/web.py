"""Rendering: the Jinja2 environment (autoescaping everything), its filters, and the headers every page carries."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/ui"
# No inline script or style, nothing from elsewhere: a value that slipped past escaping still could not run.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


@cache
def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("shipyard.server.ui", "templates"),
        autoescape=True,  # every template, whatever its name: user text is data
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=num, when=when, short=short, pct=pct, plain=plain, seg=seg, duration=duration)
    env.globals["prefix"] = PREFIX
    return env


def render(name: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    html = templates().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})


def redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


class SecurityHeaders:
    """Adds ``HEADERS`` to every response of the UI (pages, redirects, assets)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in HEADERS.items() if k.encode() not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, sending)


# -- filters ----------------------------------------------------------------------------------------


def num(value: Any, digits: int = 4) -> str:
    """A number as people read it: 4 significant digits, whole numbers whole; anything else as text."""
    if isinstance(value, bool) or value is None:
        return plain(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.{digits}g}"
    return str(value)


def pct(value: Any) -> str:
    return f"{value * 100:.1f}%" if isinstance(value, int | float) and not isinstance(value, bool) else plain(value)


def when(value: Any) -> str:
    """A time in UTC to the second; ISO text from a JSON document is parsed first."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if not isinstance(value, datetime):
        return plain(value)
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def seg(value: Any) -> str:
    """One segment of a path (a model's name): every reserved character quoted, a slash too."""
    return quote(str(value), safe="")


def duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return plain(seconds)
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def short(value: Any, length: int = 12) -> str:
    text = plain(value)
    return text if len(text) <= length else text[:length] + "…"


def plain(value: Any) -> str:
    """Any recorded value as text: None as a dash, a mapping as `key value` pairs, a list joined by commas."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return num(value)
    if isinstance(value, dict):
        return "; ".join(f"{k} {plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value)
    return str(value)
