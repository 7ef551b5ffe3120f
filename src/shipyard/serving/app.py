"""The gateway's HTTP face: Open Inference Protocol (KServe V2), plain JSON, /metrics.

Handlers read the Gateway from ``request.app.state.gateway``, parse, call it, render.
Every refusal is a ShipyardError raised to one exception handler, which renders the
Open Inference Protocol's error body: ``{"error": "<message>"}`` with the details
(``code``, ``hint``, ``field``, ``row``) beside it. Nothing a client sends can produce a 500.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard import __version__
from shipyard.domain.errors import ModelFailed, NotServed, ShipyardError, Unauthenticated, http_status, oip_body
from shipyard.serving import binary
from shipyard.serving.gateway import Usage
from shipyard.serving.inputs import Decoded, InvalidInput, decode_v1, decode_v2, encode_v2_response, load_json, show
from shipyard.serving.openapi import openapi_document

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from shipyard.serving.batching import Batcher
    from shipyard.serving.gateway import Answer, Gateway
    from shipyard.serving.gateway import Route as Traffic

REQUEST_ID = "x-request-id"
_REQUEST_ID_KEY = "shipyard.request_id"  # where a handler leaves the request id for the error handler
UNKNOWN = "<unknown>"  # the metric label of every model name or version the gateway does not serve
OUTPUTS = ("predict", "probability")  # every model's output tensors, in the order a response lists them
# The Open Inference Protocol extensions answered in full (GET /v2 lists them, as Triton does). The repository
# index is answered too, but not claimed: the model_repository extension also loads and unloads models.
EXTENSIONS = ("binary_tensor_data", "statistics")


def create_app(gateway: Gateway) -> Starlette:
    # Only the routes that serve or describe models need a token; probes and the OpenAPI document stay open.
    guard = [Middleware(BearerAuth)] if gateway.config.auth else None
    # The router tries routes in order: predictions first, they are the traffic. Only /v2/models/stats also
    # matches another route (the metadata of a model named "stats"), and comes before it, as in Triton.
    routes = [
        Route("/v2/models/{name}/infer", infer_v2, methods=["POST"], middleware=guard),
        Route("/v1/models/{name}:predict", infer_v1, methods=["POST"], middleware=guard),
        Route("/v2/models/{name}/versions/{version}/infer", infer_v2, methods=["POST"], middleware=guard),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/models/stats", statistics, methods=["GET"], middleware=guard),
        Route("/v2/models/{name}", model_metadata, methods=["GET"], middleware=guard),
        Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}", model_metadata, methods=["GET"], middleware=guard),
        Route("/v2/models/{name}/versions/{version}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{name}/stats", statistics, methods=["GET"], middleware=guard),
        Route("/v2/models/{name}/versions/{version}/stats", statistics, methods=["GET"], middleware=guard),
        Route("/v2/repository/index", repository_index, methods=["POST"], middleware=guard),
        Route("/metrics", metrics_endpoint, methods=["GET"], middleware=guard),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    handlers = {ShipyardError: refused, HTTPException: no_route}
    app = Starlette(routes=routes, lifespan=_lifespan, exception_handlers=handlers)
    app.state.gateway = gateway
    return app


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
    return Response(json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json", headers=headers)


async def refused(request: Request, exc: Exception) -> Response:
    """The one renderer of refusals: the Open Inference Protocol's error body, with the HTTP status the error carries."""
    if not isinstance(exc, ShipyardError):  # registered for ShipyardError only: anything else stays a server error
        raise exc
    body = oip_body(exc, **exc.details()) if isinstance(exc, InvalidInput) else oip_body(exc)
    return _json(http_status(exc), body, request.scope.get(_REQUEST_ID_KEY))


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


def _header_safe(request_id: str) -> str:
    """A body's "id" as a header value: headers carry ASCII, so other text travels percent-encoded."""
    return request_id if request_id.isascii() else quote(request_id, safe="")


def _request_id(request: Request) -> str:
    request_id = request.headers.get(REQUEST_ID) or uuid.uuid4().hex
    request.scope[_REQUEST_ID_KEY] = request_id
    return request_id


# -- authentication ----------------------------------------------------------------------------

_SEND_TOKEN = "Send Authorization: Bearer <token>; `shipyard token create NAME --scope predict` makes one."


class BearerAuth:
    """Refuses a request whose bearer token the gateway does not accept (unknown, revoked, expired) before its
    handler runs, saying which. The check is in memory (``Gateway.tokens``): no store query per request.

    Plain ASGI rather than BaseHTTPMiddleware, which runs every request in a task of its own.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway: Gateway = scope["app"].state.gateway
        request_id = None
        authorization = b""
        for key, value in scope["headers"]:
            if key == b"authorization":
                authorization = value
            elif key == b"x-request-id":
                request_id = value.decode("latin-1")
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() == b"bearer" and token.strip():
            refusal = gateway.tokens.refusal(hashlib.sha256(token.strip()).hexdigest(), time.time())
            if refusal is None:
                await self.app(scope, receive, send)
                return
        else:
            refusal = "no bearer token"
        body = json.dumps(oip_body(Unauthenticated(refusal, hint=_SEND_TOKEN)), separators=(",", ":")).encode()
        headers = {REQUEST_ID: request_id or uuid.uuid4().hex, "www-authenticate": "Bearer"}
        await Response(body, status_code=401, media_type="application/json", headers=headers)(scope, receive, send)


# -- predictions -------------------------------------------------------------------------------


async def infer_v1(request: Request) -> Response:
    return await _infer(request, "v1")


async def infer_v2(request: Request) -> Response:
    return await _infer(request, "v2")


async def _infer(request: Request, protocol: str) -> Response:
    gateway: Gateway = request.app.state.gateway
    config = gateway.config
    request_id = _request_id(request)
    name = request.path_params["name"]
    raw_version = request.path_params.get("version")
    started = time.perf_counter()
    try:
        version = _parse_version(raw_version)
        route = gateway.route(name)
        schema = _served(route, name, version).loaded.schema
        body = await _read_body(request, config.max_body_bytes)
        chosen = None
        if protocol == "v2":
            header_length = request.headers.get(binary.HEADER)
            if header_length is None:
                decoded = decode_v2(body, schema, max_rows=config.max_rows)
            else:
                decoded = binary.decode_v2_binary(body, header_length, schema, max_rows=config.max_rows)
            if decoded.outputs is not None or "binary_data_output" in decoded.parameters:
                chosen = binary.chosen_outputs(decoded, OUTPUTS)
            if decoded.request_id and REQUEST_ID not in request.headers:
                request_id = decoded.request_id
                request.scope[_REQUEST_ID_KEY] = _header_safe(request_id)
        else:
            decoded = decode_v1(body, schema, max_rows=config.max_rows)
        key = _routing_key(request, decoded, route.routing_key)
        answer = await gateway.predict(name, decoded, request_id=request_id, key=key, version=version)
    except ShipyardError as exc:
        _count_refusal(gateway, name, raw_version, exc, time.perf_counter() - started)
        raise
    metrics = gateway.metrics
    version_label = str(answer.version)
    elapsed = time.perf_counter() - started
    metrics.requests.labels(name, version_label, "200").inc()
    metrics.latency.labels(name, version_label, "200").observe(elapsed)
    gateway.answered(name, answer.version, elapsed)
    if answer.task != "binary":
        return _task_response(answer, protocol, request_id)
    if protocol == "v2":
        outputs: dict[str, list[Any]] = {"predict": answer.predictions, "probability": answer.scores}
        headers = {REQUEST_ID: _header_safe(request_id)}
        if chosen is None:
            body_bytes = encode_v2_response(name, version_label, request_id, outputs)
            return Response(body_bytes, media_type="application/json", headers=headers)
        body_bytes, json_length = binary.encode_response(name, version_label, request_id, outputs, chosen)
        if json_length is None:
            return Response(body_bytes, media_type="application/json", headers=headers)
        headers["Inference-Header-Content-Length"] = str(json_length)
        return Response(body_bytes, media_type="application/octet-stream", headers=headers)
    return _json(200, _v1_body(answer, request_id), request_id)


def _count_refusal(gateway: Gateway, name: str, raw_version: str | None, exc: ShipyardError, seconds: float) -> None:
    """Count a refused request under labels the store bounds: names and versions a client made up become UNKNOWN."""
    route = gateway.routes.get(name)
    if route is None and name not in gateway.expected:
        model, version = UNKNOWN, "-" if raw_version is None else UNKNOWN
    elif raw_version is None:
        model, version = name, "-"
    else:
        known = route is not None and raw_version.isascii() and raw_version.isdigit() and int(raw_version) in route.versions
        model, version = name, str(int(raw_version)) if known else UNKNOWN
    metrics = gateway.metrics
    if not isinstance(exc, ModelFailed):  # the batch's bookkeeping counts model failures once per batch
        metrics.errors.labels(model, "invalid_input" if isinstance(exc, InvalidInput) else type(exc).__name__).inc()
    metrics.requests.labels(model, version, str(http_status(exc))).inc()
    metrics.latency.labels(model, version, str(http_status(exc))).observe(seconds)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, read chunk by chunk: one that passes ``limit`` is refused then, whether or not it declared a length."""
    length = request.headers.get("content-length")
    if length is not None and length.isascii() and length.isdigit() and int(length) > limit:
        raise InvalidInput(413, f"the body of {length} bytes exceeds the limit of {limit} bytes")
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:  # stop reading here: the rest of an upload never reaches memory
            raise InvalidInput(413, f"the body exceeds the limit of {limit} bytes (refused after {size} bytes)")
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def _served(route: Traffic, name: str, version: int | None) -> Batcher:
    """The batcher answering for ``version`` (the champion when None); NotServed names the versions there are."""
    batcher = route.champion if version is None else route.versions.get(version)
    if batcher is None:
        known = ", ".join(str(v) for v in sorted(route.versions))
        raise NotServed(f"version {version} of {name!r} is not served here", hint=f"Served versions: {known}.")
    return batcher


def _parse_version(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):  # "³".isdigit() is True, int("³") fails
        raise InvalidInput(400, f"version must be a positive integer, got {raw!r}", field="version")
    return int(raw)


def _routing_key(request: Request, decoded: Decoded, field: str | None) -> str | None:
    """Sticky assignment: the configured header, else the configured field of the first row."""
    if field is None:
        return None
    header = request.headers.get(field)
    if header:
        return header
    values = decoded.columns.get(field)
    return str(values[0]) if values else None


def _task_outputs(answer: Answer) -> dict[str, list[Any]]:
    """A regression's value; a multiclass model's label and its probability for each class (rows of the 2-D tensor)."""
    if answer.task == "regression":
        return {"predict": answer.predictions}
    return {"predict": answer.predictions, "probability": answer.scores}


def _task_response(answer: Answer, protocol: str, request_id: str) -> Response:
    """Regression and multiclass answers, as JSON in both protocols (binary tensors are for binary models)."""
    outputs = _task_outputs(answer)
    if protocol == "v2":
        body_bytes = encode_v2_response(answer.model, str(answer.version), request_id, outputs)
        return Response(body_bytes, media_type="application/json", headers={REQUEST_ID: _header_safe(request_id)})
    body = {k: v for k, v in _v1_body(answer, request_id).items() if k != "probabilities"}
    if "probability" in outputs:
        body["probabilities"] = outputs["probability"]
    return _json(200, body, request_id)


def _v1_body(answer: Answer, request_id: str) -> dict[str, Any]:
    return {
        "model": answer.model,
        "version": answer.version,
        "request_id": request_id,
        "routing": answer.routing,
        "predictions": answer.predictions,
        "probabilities": answer.scores,
    }


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
    version = _parse_version(request.path_params.get("version"))
    route = gateway.route(name)
    loaded = _served(route, name, version).loaded
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


async def server_metadata(request: Request) -> Response:
    return _json(200, {"name": "shipyard", "version": __version__, "extensions": list(EXTENSIONS)})


async def statistics(request: Request) -> Response:
    """Triton's statistics extension, with the figures the gateway keeps: requests answered and their time,
    predict calls, rows and their CPU time, per served version (all of them, one model's, or one version)."""
    gateway: Gateway = request.app.state.gateway
    request_id = _request_id(request)
    name = request.path_params.get("name")
    version = _parse_version(request.path_params.get("version"))
    if name is None:
        keys = sorted((model, v) for model, route in gateway.routes.items() for v in route.versions)
    else:
        route = gateway.route(name)
        if version is not None:
            _served(route, name, version)  # NotServed names the versions there are
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
    body = await _read_body(request, gateway.config.max_body_bytes)
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
    version = _parse_version(request.path_params.get("version"))
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


def _output_metadata(task: str, classes: tuple[Any, ...]) -> list[dict[str, Any]]:
    if task == "regression":
        return [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    if task == "multiclass":
        label = "INT64" if all(isinstance(c, int) for c in classes) else "BYTES"
        return [
            {"name": "predict", "datatype": label, "shape": [-1]},
            {"name": "probability", "datatype": "FP64", "shape": [-1, len(classes)], "classes": [str(c) for c in classes]},
        ]
    return [{"name": "predict", "datatype": "INT64", "shape": [-1]}, {"name": "probability", "datatype": "FP64", "shape": [-1]}]


def _oip_type(mlflow_type: str) -> str:
    return {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32", "boolean": "BOOL"}.get(mlflow_type, "BYTES")
