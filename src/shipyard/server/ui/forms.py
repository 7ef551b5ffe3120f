"""The UI's forms: each posts to one of these, which checks its CSRF token and calls the service method the API
calls for the same operation, acting as the viewer. A refusal — a missing role, separation of duties, a gate,
the stage machine — is the service's, audited by it, and shown on the version's page with its status."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from shipyard.domain.errors import ShipyardError, Unauthenticated
from shipyard.server.ui.login import checked_form, viewer
from shipyard.server.ui.pages import ROLLOUT_DONE, rollout_page, version_number, version_page
from shipyard.server.ui.web import PREFIX, redirect, seg

if TYPE_CHECKING:
    from shipyard.service import Shipyard


async def approve(request: Request) -> Response:
    """Approve or reject the version for a gated stage, with a comment (``Shipyard.approve``)."""

    def call(acting: Shipyard, model: str, number: int, fields: dict[str, str]) -> dict[str, str]:
        decision = fields.get("decision", "approve")
        stage = fields.get("stage", "")
        acting.approve(model, number, stage, comment=fields.get("comment", ""), decision=decision)
        return {"done": decision, "stage": stage, "gate": stage}  # and show the gate as it stands now

    return await _submit(request, call)


async def promote(request: Request) -> Response:
    """Move the version to a stage through that stage's gate (``Shipyard.promote``)."""

    def call(acting: Shipyard, model: str, number: int, fields: dict[str, str]) -> dict[str, str]:
        target = fields.get("to", "")
        acting.promote(model, number, target, reason=fields.get("reason", ""))
        return {"done": "promote", "stage": target}

    return await _submit(request, call)


async def start_rollout(request: Request) -> Response:
    """Start rolling the version out with its model's configured strategy (``Shipyard.start_rollout``)."""

    def call(acting: Shipyard, model: str, number: int, fields: dict[str, str]) -> dict[str, str]:
        acting.start_rollout(model, number)
        return {"done": "rollout"}  # the version's page says so, and links to the rollout's

    return await _submit(request, call)


async def steer_rollout(request: Request) -> Response:
    """Pause, resume or abort the model's rollout, with a reason (``Shipyard.rollout_action``)."""
    seen, acting = await viewer(request)
    fields = await checked_form(request, seen, acting)
    model, action = request.path_params["model"], request.path_params["action"]
    try:
        await run_in_threadpool(lambda: acting.rollout_action(model, action, reason=fields.get("reason", "").strip() or None))
    except Unauthenticated:
        raise
    except ShipyardError as exc:
        return await rollout_page(request, seen, acting, error=exc)
    shown = action if action in ROLLOUT_DONE else ""
    return redirect(f"{PREFIX}/models/{seg(model)}/rollout?{urlencode({'done': shown})}")


async def _submit(request: Request, call: Callable[[Shipyard, str, int, dict[str, str]], dict[str, str]]) -> Response:
    seen, acting = await viewer(request)
    fields = await checked_form(request, seen, acting)
    model, number = request.path_params["model"], version_number(request)
    try:
        shown: dict[str, Any] = await run_in_threadpool(call, acting, model, number, fields)
    except Unauthenticated:
        raise
    except ShipyardError as exc:
        return await version_page(request, seen, acting, error=exc)
    anchor = "#gates" if "gate" in shown else ""
    return redirect(f"{PREFIX}/models/{seg(model)}/versions/{number}?{urlencode(shown)}{anchor}")
