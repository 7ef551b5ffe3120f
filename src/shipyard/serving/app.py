"""The gateway's HTTP face: Open Inference Protocol (KServe V2), plain JSON, /metrics.

The predictions are answered by `shipyard.serving.predictions`, in front of this Starlette app,
which serves health, metadata, configuration, statistics, the repository index, /metrics and
the OpenAPI document. Handlers read the Gateway from ``request.app.state.gateway``, parse,
call it, render. Every refusal is a ShipyardError raised to one exception handler, which
renders the Open Inference Protocol's error body: ``{"error": "<message>"}`` with the details
(``code``, ``hint``, ``field``, ``row``) beside it. Nothing a client sends can produce a 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard import __version__
from shipyard.domain.errors import ShipyardError, http_status
from shipyard.serving.explain import explain_v1
from shipyard.serving.gateway import Usage
from shipyard.serving.http import (
    REQUEST_ID,
    Disconnected,
    error_body,
    header,
    json_bytes,
    new_request_id,
    parse_version,
    read_body,
    served,
    token_refusal,
    unauthenticated_body,
)
from shipyard.serving.inputs import InvalidInput, load_json, show
from shipyard.serving.openapi import openapi_document
from shipyard.serving.predictions import Predictions

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from shipyard.serving.gateway import Gateway

_REQUEST_ID_KEY = "shipyard.request_id"  # where a handler leaves the request id for the error handler
# The Open Inference Protocol extensions answered in full (GET /v2 lists them, as Triton does). The repository
# index is answered too, but not claimed: the model_repository extension also loads and unloads models.
EXTENSIONS = ("binary_tensor_data", "model_configuration", "statistics")


def create_app(gateway: Gateway) -> Predictions:
    """The predictions (`Predictions`, plain ASGI) in front of a Starlette app serving every other route."""
    # Only the routes that serve or describe models need a token; probes and the OpenAPI document stay open.
    guard = [Middleware(BearerAuth)] if gateway.config.auth else None
    # The router tries routes in order. Only /v2/models/stats also matches another route (the metadata of a
    # model named "stats"), and comes before it, as in Triton.
    routes = [
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/models/stats", statistics, methods=["GET"], middleware=guard),
        Route("/v2/models/{name}", model_metadata, methods=["GET"], middleware=guard),
        Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}", model_metadata, methods=["GET"], middleware=guard),
        Route("/v2/models/{name}/versions/{version}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{name}/config", model_config, methods=["GET"], middleware=guard),
        Route("/v2/models/{name}/versions/{version}/config", model_config, methods=["GET"], middleware=guard),
        Route("/v2/models/{name}/stats", statistics, methods=["GET"], middleware=guard),
        Route("/v2/models/{name}/versions/{version}/stats", statistics, methods=["GET"], middleware=guard),
        Route("/v2/repository/index", repository_index, methods=["POST"], middleware=guard),
        Route("/v1/models/{name}:explain", explain_v1, methods=["POST"], middleware=guard),
        Route("/v1/models/{name}/versions/{version}:explain", explain_v1, methods=["POST"], middleware=guard),
        Route("/metrics", metrics_endpoint, methods=["GET"], middleware=guard),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    handlers = {ShipyardError: refused, HTTPException: no_route}
    app = Starlette(routes=routes, lifespan=_lifespan, exception_handlers=handlers)
    app.state.gateway = gateway
    return Predictions(app, gateway)


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    gateway: Gateway = app.state.gateway
    await gateway.start()
    try:
        yield
    finally:
        await gateway.stop()


# -- rendering ---------------------------------------------------------------------------------


def _json(status: int, body: dict[str, Any] | list[Any], request_id: str | None = None) -> Response:
    headers = {REQUEST_ID: request_id} if request_id else None
    return Response(json_bytes(body), status_code=status, media_type="application/json", headers=headers)


async def refused(request: Request, exc: Exception) -> Response:
    """The one renderer of refusals: the Open Inference Protocol's error body, with the HTTP status the error carries."""
    if not isinstance(exc, ShipyardError):  # registered for ShipyardError only: anything else stays a server error
        raise exc
    return _json(http_status(exc), error_body(exc), request.scope.get(_REQUEST_ID_KEY))


async def no_route(request: Request, exc: Exception) -> Response:
    """The router's refusals (no such path, or not with that method) in the same error body as every other."""
    if not isinstance(exc, HTTPException):
        raise exc
    if exc.status_code == 404:
        message = f"no route {request.url.path!r}: see /openapi.json for the gateway's routes"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path!r} (allowed: {(exc.headers or {}).get('Allow', '')})"
    else:
        message = exc.detail
    body = {"error": message, "code": "not_found" if exc.status_code == 404 else "http_error"}
    response = _json(exc.status_code, body)
    response.headers.update(exc.headers or {})
    return response


def _request_id(request: Request) -> str:
    request_id = request.headers.get(REQUEST_ID) or new_request_id()
    request.scope[_REQUEST_ID_KEY] = request_id
    return request_id


# -- authentication ----------------------------------------------------------------------------


class BearerAuth:
    """Refuses a request whose bearer token the gateway does not accept (unknown, revoked, expired) before its
    handler runs, saying which. The check is in memory (``Gateway.tokens``): no store query per request.

    Plain ASGI rather than BaseHTTPMiddleware, which runs every request in a task of its own.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway: Gateway = scope["app"].state.gateway
        refusal = token_refusal(gateway, scope["headers"])
        if refusal is None:
            await self.app(scope, receive, send)
            return
        headers = {REQUEST_ID: header(scope["headers"], REQUEST_ID.encode()) or new_request_id(), "www-authenticate": "Bearer"}
        response = Response(unauthenticated_body(refusal), status_code=401, media_type="application/json", headers=headers)
        await response(scope, receive, send)


# -- health, metadata, metrics -------------------------------------------------------------------


async def live(request: Request) -> Response:
    return _json(200, {"live": True})


async def ready(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    if gateway.draining:
        reason = "the gateway is shutting down: it still answers requests, but send new ones elsewhere"
        return _json(503, {"ready": False, "draining": True, "reason": reason})
    body: dict[str, Any] = {"ready": gateway.ready}
    if gateway.stale:  # serving, perhaps, but not what the store deploys: say which model, which versions, why
        body["stale"] = [{"model": name, **stale.to_dict()} for name, stale in sorted(gateway.stale.items())]
    return _json(200 if gateway.ready else 503, body)


async def model_metadata(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    request_id = _request_id(request)
    name = request.path_params["name"]
    version = parse_version(request.path_params.get("version"))
    route = gateway.route(name)
    loaded = served(route, name, version).loaded
    schema = loaded.schema
    return _json(
        200,
        {
            "name": name,
            "versions": [str(v) for v in sorted(route.versions)],
            "platform": "sklearn",
            "parameters": {"runtime": loaded.runtime},
            "inputs": [{"name": f.name, "datatype": _oip_type(f.type), "shape": [-1]} for f in schema.fields],
            "outputs": _output_metadata(loaded.task, loaded.classes),
        },
        request_id,
    )


async def model_config(request: Request) -> Response:
    """Triton's model configuration extension: the served version's inputs and outputs in Triton's types, and how
    the gateway batches it (its runtime in ``backend``)."""
    gateway: Gateway = request.app.state.gateway
    request_id = _request_id(request)
    name = request.path_params["name"]
    version = parse_version(request.path_params.get("version"))
    route = gateway.route(name)
    loaded = served(route, name, version).loaded
    return _json(
        200,
        {
            "name": name,
            "platform": "sklearn",
            "backend": loaded.runtime,
            "max_batch_size": gateway.config.max_batch,
            "version_policy": {"specific": {"versions": [str(v) for v in sorted(route.versions)]}},
            "input": [{"name": f.name, "data_type": _config_type(f.type), "dims": [1]} for f in loaded.schema.fields],
            "output": [
                {
                    "name": o["name"],
                    "data_type": f"TYPE_{'STRING' if o['datatype'] == 'BYTES' else o['datatype']}",
                    "dims": [1] if len(o["shape"]) == 1 else [o["shape"][1]],
                }
                for o in _output_metadata(loaded.task, loaded.classes)
            ],
            "dynamic_batching": {"max_queue_delay_microseconds": round(gateway.config.max_wait_ms * 1000)},
            "parameters": {"runtime_reason": {"string_value": loaded.runtime_reason}},
        },
        request_id,
    )


def _output_metadata(task: str, classes: tuple[Any, ...]) -> list[dict[str, Any]]:
    """The outputs a version answers, by its task (regression: the value; multiclass: label and class probabilities)."""
    if task == "regression":
        return [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    if task == "multiclass":
        label = "INT64" if all(isinstance(c, int) for c in classes) else "BYTES"
        return [
            {"name": "predict", "datatype": label, "shape": [-1]},
            {"name": "probability", "datatype": "FP64", "shape": [-1, len(classes)], "classes": [str(c) for c in classes]},
        ]
    return [{"name": "predict", "datatype": "INT64", "shape": [-1]}, {"name": "probability", "datatype": "FP64", "shape": [-1]}]


def _config_type(mlflow_type: str) -> str:
    """Triton's configuration names for the protocol's datatypes (BYTES is TYPE_STRING there)."""
    oip = _oip_type(mlflow_type)
    return "TYPE_STRING" if oip == "BYTES" else f"TYPE_{oip}"


async def server_metadata(request: Request) -> Response:
    return _json(200, {"name": "shipyard", "version": __version__, "extensions": list(EXTENSIONS)})


async def statistics(request: Request) -> Response:
    """Triton's statistics extension, with the figures the gateway keeps: requests answered and their time,
    predict calls, rows and their CPU time, per served version (all of them, one model's, or one version)."""
    gateway: Gateway = request.app.state.gateway
    request_id = _request_id(request)
    name = request.path_params.get("name")
    version = parse_version(request.path_params.get("version"))
    if name is None:
        keys = sorted((model, v) for model, route in gateway.routes.items() for v in route.versions)
    else:
        route = gateway.route(name)
        if version is not None:
            served(route, name, version)  # NotServed names the versions there are
            keys = [(name, version)]
        else:
            keys = [(name, v) for v in sorted(route.versions)]
    stats = [gateway.usage.get(key, Usage()).to_dict(*key) for key in keys]
    return _json(200, {"model_stats": stats}, request_id)


async def repository_index(request: Request) -> Response:
    """The models the gateway serves or should: each served version READY, a deployed champion it could not
    load UNAVAILABLE with the reason. ``{"ready": true}`` lists only the ready ones."""
    gateway: Gateway = request.app.state.gateway
    request_id = _request_id(request)
    try:
        body = await read_body(request.receive, request.headers.get("content-length"), gateway.config.max_body_bytes)
    except Disconnected:
        return Response(status_code=400)  # nobody is left to read it
    only_ready = False
    if body.strip():
        doc = load_json(body)
        only_ready = doc.get("ready", False)
        if type(only_ready) is not bool:
            raise InvalidInput(400, f'"ready" must be true or false, got {show(only_ready)}', field="ready")
    index: list[dict[str, Any]] = []
    for name, route in sorted(gateway.routes.items()):
        index.extend({"name": name, "version": str(v), "state": "READY"} for v in sorted(route.versions))
    if not only_ready:
        for name, stale in sorted(gateway.stale.items()):
            index.append({"name": name, "version": str(stale.deployed), "state": "UNAVAILABLE", "reason": stale.error})
        for name in sorted(gateway.expected - gateway.routes.keys() - gateway.stale.keys()):
            index.append({"name": name, "state": "UNAVAILABLE", "reason": "deployed but not loaded yet"})
    return _json(200, index, request_id)


async def model_ready(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    name = request.path_params["name"]
    version = parse_version(request.path_params.get("version"))
    route = gateway.route(name)
    is_ready = version is None or version in route.versions
    body: dict[str, Any] = {"name": name, "ready": is_ready}
    stale = gateway.stale.get(name)
    if stale is not None:
        body["stale"] = stale.to_dict()
    return _json(200 if is_ready else 404, body)


async def metrics_endpoint(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    body, content_type = gateway.metrics.render()
    return Response(body, media_type=content_type)


async def openapi(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    return _json(200, openapi_document(sorted(gateway.routes)))


def _oip_type(mlflow_type: str) -> str:
    return {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32", "boolean": "BOOL"}.get(mlflow_type, "BYTES")
