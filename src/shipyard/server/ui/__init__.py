"""The web UI: pages served by the control-plane server under /ui, a face like the command line.

Pages read through the ``Shipyard`` service acting as the signed-in principal; every form posts to a route
that calls the same service method the API calls, so a button is refused for the same reasons, and audited
the same way. Templates are Jinja2 with autoescaping on; the few scripts are vendored (static/VENDORED.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

if TYPE_CHECKING:
    from shipyard.server.verification import Verified
    from shipyard.service import Shipyard


def routes(
    service: Shipyard,
    *,
    identify: Callable[[Request], str],
    acting: Callable[[Shipyard, str, str], Shipyard],
    identity_headers: tuple[str, ...],
    verified: Callable[[], Verified | None] | None = None,
) -> list[BaseRoute]:
    """/ui and everything under it, and / pointing there. ``identify`` and ``acting`` are the API's own."""
    from shipyard.server.ui.site import ui_app

    app = ui_app(service, identify=identify, acting=acting, identity_headers=identity_headers, verified=verified)
    return [Mount("/ui", app=app, name="ui"), Route("/", _home, methods=["GET"])]


async def _home(_request: Request) -> Response:
    return RedirectResponse("/ui/", status_code=307)
