"""Who is looking: the session (a token, authenticated again on every request) or a trusted proxy's header.

``viewer`` answers every page and form: the principal, its roles, the CSRF token its forms carry, and the
service acting as that principal. Logging in takes a token, as the API does; logging out forgets the session.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from shipyard.domain.errors import InvalidSpec, PermissionDenied, ShipyardError
from shipyard.server.ui.sessions import LOGIN_COOKIE, LOGIN_SECONDS
from shipyard.server.ui.web import PREFIX, redirect, render

if TYPE_CHECKING:
    from shipyard.server.ui.site import UiState
    from shipyard.service import Shipyard

MAX_FIELDS = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Viewer:
    name: str
    roles: tuple[str, ...]
    csrf: str
    session: str | None  # None: a proxy names the principal on every request, there is nothing to log out of


class SignedOut(Exception):
    """No session (or one that just ended): the answer is the login page, saying why when there is a why."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "not signed in")
        self.reason = reason


def ui(request: Request) -> UiState:
    state: UiState = request.app.state.ui
    return state


def _source(request: Request) -> str:
    return request.client.host if request.client else ""


def resolve(request: Request) -> tuple[Viewer, Shipyard]:
    """The viewer, and the service acting as them. Blocking: call it on a worker thread (``viewer``)."""
    state = ui(request)
    session_id = None
    if any(header in request.headers for header in state.identity_headers):
        name = state.identify(request)  # the API's own judgement of a proxy's header or a bearer token
        csrf = state.sessions.csrf_for_principal(name)
    else:
        cookie = request.cookies.get(state.sessions.cookie)
        session = state.sessions.get(cookie)
        if session is None:
            raise SignedOut("Your session has ended; log in again." if cookie else None)
        try:
            principal = state.service.authenticate(session.secret, scope="api", source=_source(request))
        except ShipyardError as exc:  # revoked, expired, its principal removed: the session ends with its token
            state.sessions.end(session.id)
            raise SignedOut(f"Your session ended: {exc.message}.") from None
        name, csrf, session_id = principal.name, state.sessions.csrf_for_session(session), session.id
    acting = state.acting(state.service, name, "ui")
    viewer = Viewer(name=name, roles=tuple(sorted(acting.access.roles(name))), csrf=csrf, session=session_id)
    request.state.viewer = viewer
    return viewer, acting


async def viewer(request: Request) -> tuple[Viewer, Shipyard]:
    return await run_in_threadpool(resolve, request)


async def read_form(request: Request) -> dict[str, str]:
    """A posted form's fields (the first value of each); only url-encoded forms are taken."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise InvalidSpec(f"a form must be posted as application/x-www-form-urlencoded, not {kind or 'nothing'}")
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidSpec(f"the form could not be read: {exc}") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


async def checked_form(request: Request, seen: Viewer, acting: Shipyard) -> dict[str, str]:
    """The form, once its CSRF token is the viewer's; a post without it is refused and audited (``csrf.denied``)."""
    try:
        fields = await read_form(request)
    except InvalidSpec:  # not a form at all: it carries no token either, and that is the refusal to give
        fields = {}
    if not ui(request).sessions.matches(seen.csrf, fields.get("csrf")):
        refusal = PermissionDenied(
            "this form carries no valid CSRF token, so it was not sent from a page of this server for your session",
            hint="Reload the page and send the form again.",
        )
        asked = f"{request.method} {request.url.path}"
        await run_in_threadpool(acting.audit_denial, "csrf", request.url.path.removeprefix(PREFIX), refusal, asked=asked)
        raise refusal
    return fields


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a page of the UI, never another site."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/"


# -- handlers ---------------------------------------------------------------------------------------


def login_page(request: Request, *, reason: str | None = None, status: int = 200, target: str | None = None) -> Response:
    state = ui(request)
    nonce = secrets.token_urlsafe(24)
    context = {
        "viewer": None,
        "reason": reason,
        "csrf": state.sessions.csrf_for_login(nonce),
        "next": safe_next(target if target is not None else request.query_params.get("next")),
    }
    response = render("login.html", context, status=status)
    response.set_cookie(LOGIN_COOKIE, nonce, **state.sessions.cookie_options(LOGIN_SECONDS))  # type: ignore[arg-type]
    return response


async def page(request: Request) -> Response:
    has_session = request.cookies.get(ui(request).sessions.cookie) is not None
    carries_identity = any(h in request.headers for h in ui(request).identity_headers)
    if has_session or carries_identity:
        try:
            await viewer(request)
        except SignedOut as exc:
            return _forget(login_page(request, reason=exc.reason, status=401 if exc.reason else 200), request)
        return redirect(safe_next(request.query_params.get("next")))
    return login_page(request)


async def submit(request: Request) -> Response:
    state = ui(request)
    fields = await read_form(request)
    target = fields.get("next")
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not state.sessions.matches(state.sessions.csrf_for_login(nonce), fields.get("csrf")):
        reason = "The login form had expired or did not come from this server; it is shown again, send it once more."
        return login_page(request, reason=reason, status=403, target=target)
    secret = fields.get("token", "").strip()
    try:
        principal = await run_in_threadpool(state.service.authenticate, secret, scope="api", source=_source(request))
        await run_in_threadpool(state.acting, state.service, principal.name, "ui.login")
    except ShipyardError as exc:
        return login_page(request, reason=exc.message, status=401 if exc.http_status == 401 else 403, target=target)
    session = state.sessions.start(secret, principal.name)
    response = redirect(safe_next(target))
    response.set_cookie(state.sessions.cookie, session.id, **state.sessions.cookie_options(None))  # type: ignore[arg-type]
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


async def logout(request: Request) -> Response:
    seen, acting = await viewer(request)
    await checked_form(request, seen, acting)
    ui(request).sessions.end(seen.session)
    return _forget(redirect(f"{PREFIX}/login"), request)


async def signed_out(request: Request, exc: Exception) -> Response:
    reason = exc.reason if isinstance(exc, SignedOut) else None
    target = (request.url.path + (f"?{request.url.query}" if request.url.query else "")) if request.method == "GET" else None
    response = _forget(login_page(request, reason=reason, status=401, target=target), request)
    if "hx-request" in request.headers:
        response.headers["hx-refresh"] = "true"  # a partial update would hide the login form: load the page whole
    return response


def _forget(response: Response, request: Request) -> Response:
    sessions = ui(request).sessions
    if request.cookies.get(sessions.cookie) is not None:
        response.delete_cookie(sessions.cookie, path="/", secure=sessions.secure, httponly=True, samesite="strict")
    return response
