"""The control plane's HTTP face: every operation of ``endpoints.ENDPOINTS`` under /api/v1.

A request is authenticated (a bearer token, or a trusted single-sign-on proxy's header), its path,
query and body are validated as one parameter model, and the service method runs, acting as the
principal, on a worker thread. Every refusal is a ShipyardError rendered as one body:
``{"status", "error", "message", "hint"}``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from shipyard.domain.errors import InvalidSpec, PermissionDenied, ShipyardError, Unauthenticated, control_plane_body, http_status
from shipyard.server import ui
from shipyard.server.endpoints import API, ENDPOINTS, Endpoint, Params, result_type
from shipyard.server.limits import BodyLimit
from shipyard.server.openapi import openapi_document
from shipyard.server.verification import Verifier

if TYPE_CHECKING:
    from shipyard.service import Shipyard

log = logging.getLogger("shipyard.server")

MAX_PAGE = 1000
CLAIMED_IDENTITY = ("x-actor", "x-shipyard-actor", "x-user", "x-remote-user", "remote-user")
PROXY_IDENTITY = ("x-forwarded-email", "x-forwarded-user")


def create_app(service: Shipyard) -> Starlette:
    """The app over a service opened by the server (``settings.hosted``): the store's one writer."""
    server = service.settings.spec.server
    routes: list[BaseRoute] = [Route(f"{API}{e.path}", _handler(e), methods=[e.method], name=e.name) for e in ENDPOINTS]
    routes += [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route(f"{API}/openapi.json", openapi, methods=["GET"]),
    ]
    headers = (*CLAIMED_IDENTITY, *PROXY_IDENTITY, "authorization")
    verifier = Verifier(service)
    # The web UI, under /ui: the API's own identity checks, and the latest full audit verification.
    routes += ui.routes(service, identify=identify, acting=acting, identity_headers=headers, verified=verifier.latest)
    handlers = {ShipyardError: refused, 404: not_found, 405: not_allowed, Exception: failed}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        verifier.start()
        try:
            yield
        finally:
            verifier.stop()

    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.state.service = service
    app.state.verifier = verifier
    app.state.trusted_proxies = frozenset(server.trusted_proxies if server else ())
    limit = server.max_body_bytes if server else 64 * 1024 * 1024
    return BodyLimit(app, limit)  # type: ignore[return-value]  # an ASGI app around the Starlette one


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json")


async def refused(_request: Request, exc: Exception) -> Response:
    error = exc if isinstance(exc, ShipyardError) else ShipyardError(str(exc))
    response = _json(http_status(error), control_plane_body(error))
    if isinstance(error, Unauthenticated):
        response.headers["www-authenticate"] = 'Bearer realm="shipyard"'
    return response


async def failed(request: Request, exc: Exception) -> Response:
    """A bug, not a refusal: logged with its traceback, answered with the same body shape as every error."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    body = {
        "status": 500,
        "error": "internal",
        "message": f"the server failed on {request.method} {request.url.path}: {type(exc).__name__}",
        "hint": "This is a bug in Shipyard, not in the request; the server's log has the details.",
    }
    return _json(500, body)


async def not_found(request: Request, _exc: Exception) -> Response:
    error = InvalidSpec(f"no such path: {request.url.path}", hint=f"The API lives under {API}; see /openapi.json.")
    return _json(404, {**control_plane_body(error), "status": 404, "error": "not_found"})


async def not_allowed(request: Request, _exc: Exception) -> Response:
    error = InvalidSpec(f"{request.method} is not allowed on {request.url.path}", hint="See /openapi.json.")
    return _json(405, {**control_plane_body(error), "status": 405, "error": "method_not_allowed"})


async def healthz(_request: Request) -> Response:
    return _json(200, {"status": "ok"})


async def openapi(_request: Request) -> Response:
    return _json(200, openapi_document())


# -- who is asking -------------------------------------------------------------------------------


def identify(request: Request) -> str:
    """The principal's name: from a trusted proxy's header, else from the bearer token. Never claimed."""
    service: Shipyard = request.app.state.service
    source = request.client.host if request.client else ""
    for header in CLAIMED_IDENTITY:
        if header in request.headers:
            raise Unauthenticated(
                f"the {header} header claims an identity, which this server does not accept",
                hint="Send a bearer token (Authorization: Bearer …); identity comes from the token alone.",
            )
    proxied = next((request.headers[h] for h in PROXY_IDENTITY if request.headers.get(h)), None)
    if proxied is not None:
        if source not in request.app.state.trusted_proxies:
            reason = f"a single-sign-on header came from {source or 'an unknown address'}, which is not a trusted proxy"
            refusal = Unauthenticated(reason)
            service.as_actor(f"unauthenticated@{source}").audit_denial("sso", proxied, refusal, asked=f"act as {proxied}")
            raise Unauthenticated(reason, hint="Only addresses listed in server.trusted_proxies may assert who is asking.")
        return proxied
    authorization = request.headers.get("authorization")
    secret = None
    if authorization is not None:
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated(
                "the Authorization header is not a bearer token",
                hint="Send `Authorization: Bearer <token>`; create one with `shipyard token create`.",
            )
        secret = secret.strip()
    principal = service.authenticate(secret, scope="api", source=source)
    return principal.name


# -- one handler per endpoint --------------------------------------------------------------------


def _handler(endpoint: Endpoint) -> Any:
    async def handle(request: Request) -> Response:
        name = await run_in_threadpool(identify, request)
        raw = await _raw_params(request, endpoint)
        page = _page(request) if endpoint.paged else None
        params_type: type[Params] = endpoint.params
        try:
            params = params_type.model_validate(raw)
        except ValidationError as exc:
            raise InvalidSpec(f"bad request to {endpoint.name}: {_problems(exc)}") from None
        if endpoint.body == "raw":
            params = params.model_copy(update={"file": str(await _store_upload(request))})
        result = await run_in_threadpool(_call, request.app.state.service, name, endpoint, params)
        encoded = _encoder(endpoint).dump_python(result, mode="json")
        if page is not None:
            offset, limit = page
            items = encoded[offset : offset + limit]
            following = offset + limit if offset + limit < len(encoded) else None
            return _json(200, {"items": items, "total": len(encoded), "next": following})
        return _json(200, {"result": encoded})

    handle.__name__ = endpoint.name
    return handle


def acting(service: Shipyard, name: str, asked: str) -> Shipyard:
    """The service acting as an authenticated name; one that is not a principal here is refused (audited)."""
    as_name = service.as_actor(name)
    if not as_name.access.roles(name):
        reason = f"{name} is not a principal of this server"
        as_name.audit_denial(asked, name, PermissionDenied(reason), asked=asked)
        raise PermissionDenied(reason, hint="An admin adds principals with `shipyard principals set NAME --role ROLE`.")
    return as_name


def _call(service: Shipyard, name: str, endpoint: Endpoint, params: Params) -> Any:
    return endpoint.call(acting(service, name, endpoint.name), params)


async def _raw_params(request: Request, endpoint: Endpoint) -> dict[str, Any]:
    params: dict[str, Any] = {k: v for k, v in request.query_params.items() if k not in ("limit", "offset")}
    if "file" in params:
        raise InvalidSpec("`file` is not a parameter a caller sets", hint="Send the file as the request body.")
    if request.method in ("POST", "PUT") and endpoint.body == "json":
        body = await request.body()
        if body.strip():
            try:
                document = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise InvalidSpec(f"the request body is not JSON: {exc}", hint="Send a JSON object.") from None
            if not isinstance(document, dict):
                raise InvalidSpec(f"the request body must be a JSON object, got {type(document).__name__}")
            params.update(document)
    params.update(request.path_params)  # the path wins over a body that names the same field
    return params


def _page(request: Request) -> tuple[int, int]:
    try:
        offset = int(request.query_params.get("offset", "0"))
        limit = int(request.query_params.get("limit", "100"))
    except ValueError:
        raise InvalidSpec(
            "offset and limit must be whole numbers", hint=f"e.g. ?offset=0&limit=100 (limit ≤ {MAX_PAGE})."
        ) from None
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise InvalidSpec(f"offset must be ≥ 0 and limit within 1–{MAX_PAGE}; got offset={offset}, limit={limit}")
    return offset, limit


async def _store_upload(request: Request) -> Path:
    """The body, kept under the project's state folder by its digest (a file ingested is evidence)."""
    service: Shipyard = request.app.state.service
    body = await request.body()
    if not body:
        raise InvalidSpec("the request body is empty", hint="Send the CSV or Parquet file as the body.")
    filename = request.query_params.get("filename", "labels.csv")
    suffix = Path(filename).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InvalidSpec(f"filename {filename!r} must end in .csv or .parquet", hint="It tells the server the format.")
    folder = service.settings.state_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{hashlib.sha256(body).hexdigest()}{suffix}"
    if not target.exists():
        with tempfile.NamedTemporaryFile(dir=folder, delete=False) as handle:
            handle.write(body)
        Path(handle.name).replace(target)
    return target


def _problems(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "(body)"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


@cache
def _encoder(endpoint: Endpoint) -> TypeAdapter[Any]:
    return TypeAdapter(result_type(endpoint))
