"""The UI's pages: each reads through the service acting as the viewer, and renders one template."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from shipyard.server.ui.login import viewer
from shipyard.server.ui.web import render


async def overview(request: Request) -> Response:
    seen, acting = await viewer(request)

    def gather() -> dict[str, Any]:
        return {"models": [{"model": m, "champion": acting.champion(m.name)} for m in acting.models()]}

    return render("overview.html", {"viewer": seen, **await run_in_threadpool(gather)})
