"""The UI's Starlette app, mounted under /ui: its routes, its state, and how it answers errors (as pages)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from shipyard.domain.errors import ShipyardError, http_status
from shipyard.server.ui import forms, login, monitoring, pages
from shipyard.server.ui.sessions import KEY_FILE, Sessions, load_or_create_key
from shipyard.server.ui.web import SecurityHeaders, render

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from shipyard.server.verification import Verified
    from shipyard.service import Shipyard

log = logging.getLogger("shipyard.server")


@dataclass(frozen=True, slots=True, kw_only=True)
class UiState:
    service: Shipyard  # the server's own; every request acts through ``acting`` as the signed-in principal
    sessions: Sessions
    identify: Callable[[Request], str]  # the API's: a trusted proxy's header, or a bearer token
    acting: Callable[[Shipyard, str, str], Shipyard]  # the API's: the service acting as a known principal
    identity_headers: tuple[str, ...]  # headers that carry identity on each request (``identify`` judges them)
    verified: Callable[[], Verified | None] = lambda: None  # the server's latest full audit verification
    # The overview's trend lines by (audit head, five-minute slot): the same for everyone, and they only move when
    # events arrive or the windows slide.
    trends: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)


def ui_app(
    service: Shipyard,
    *,
    identify: Callable[[Request], str],
    acting: Callable[[Shipyard, str, str], Shipyard],
    identity_headers: tuple[str, ...],
    verified: Callable[[], Verified | None] | None = None,
) -> Starlette:
    settings = service.settings
    server = settings.spec.server
    folder = settings.resolve(server.key_file).parent if server is not None else settings.state_dir / "server"
    secure = server is not None and server.url.startswith("https://")
    state = UiState(
        service=service,
        sessions=Sessions(load_or_create_key(folder / KEY_FILE), secure=secure),
        identify=identify,
        acting=acting,
        identity_headers=identity_headers,
        verified=verified or (lambda: None),
    )
    model = "/models/{model}"
    version = model + "/versions/{version:int}"
    routes = [
        Route("/", pages.overview, methods=["GET"], name="overview"),
        Route("/login", login.page, methods=["GET"], name="login"),
        Route("/login", login.submit, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"], name="logout"),
        Route(model, pages.model, methods=["GET"], name="model"),
        Route(version, pages.version, methods=["GET"], name="version"),
        Route(version + "/approvals", forms.approve, methods=["POST"]),
        Route(version + "/promote", forms.promote, methods=["POST"]),
        Route(version + "/rollout", forms.start_rollout, methods=["POST"]),
        Route(model + "/rollout", pages.rollout, methods=["GET"], name="rollout"),
        Route(model + "/rollout/{action}", forms.steer_rollout, methods=["POST"]),
        Route(model + "/monitoring", monitoring.page, methods=["GET"], name="monitoring"),
        Route(model + "/monitoring/chart", monitoring.chart_part, methods=["GET"]),
        Route("/audit", pages.audit, methods=["GET"], name="audit"),
        Route("/trace", pages.trace, methods=["GET"], name="trace"),
        Mount("/static", StaticFiles(packages=[("shipyard.server.ui", "static")]), name="static"),
    ]
    handlers: dict[Any, Any] = {login.SignedOut: login.signed_out, ShipyardError: refused, HTTPException: http_error}
    app = Starlette(routes=routes, exception_handlers=handlers, middleware=[Middleware(SecurityHeaders), Middleware(Failsafe)])
    app.state.ui = state
    # What the API's ``identify`` reads from the app it is called in, the same here as there.
    app.state.service = service
    app.state.trusted_proxies = frozenset(server.trusted_proxies if server is not None else ())
    return app


async def refused(request: Request, exc: Exception) -> Response:
    error = exc if isinstance(exc, ShipyardError) else ShipyardError(str(exc))
    return error_page(request, error)


def error_page(request: Request, error: ShipyardError, *, status: int | None = None) -> Response:
    viewer = getattr(request.state, "viewer", None)
    status = status or http_status(error)
    return render("error.html", {"viewer": viewer, "error": error, "status": status}, status=status)


async def http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = "no such page" if status == 404 else f"{request.method} is not allowed here" if status == 405 else str(exc)
    return error_page(request, ShipyardError(f"{message}: {request.url.path}", hint="Start from the overview."), status=status)


class Failsafe:
    """A bug, not a refusal: logged with its traceback and answered with a page that names no detail."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if scope["type"] != "http":
                raise
            request = Request(scope)
            log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
            if started:
                return
            error = ShipyardError(
                f"the server failed on {request.method} {request.url.path}: {type(exc).__name__}",
                hint="This is a bug in Shipyard; the server's log has the details.",
            )
            await render("error.html", {"viewer": None, "error": error, "status": 500}, status=500)(scope, receive, send)
