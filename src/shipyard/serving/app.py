"""The gateway's HTTP face: Open Inference Protocol (KServe V2), plain JSON, /metrics.

Handlers parse, call the Gateway, render. Every refusal is a 4xx that names the
field and the reason; nothing a client sends can produce a 500.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.domain.errors import ShipyardError
from shipyard.serving.batching import ModelFailed
from shipyard.serving.gateway import Answer, Gateway, NotServed
from shipyard.serving.inputs import Decoded, InvalidInput, decode_v1, decode_v2, encode_v2_response
from shipyard.serving.openapi import openapi_document

log = logging.getLogger("shipyard.serving")
REQUEST_ID = "x-request-id"
Handler = Callable[[Request], Awaitable[Response]]


def _json(status: int, body: dict[str, Any], request_id: str | None = None) -> Response:
    headers = {REQUEST_ID: request_id} if request_id else None
    return Response(json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json", headers=headers)


def _error(status: int, message: str, request_id: str | None, **extra: Any) -> Response:
    return _json(status, {"error": message, **{k: v for k, v in extra.items() if v is not None}}, request_id)


def create_app(gateway: Gateway) -> Starlette:
    metrics = gateway.metrics
    config = gateway.config

    def authorized(request: Request) -> bool:
        if not config.auth:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hashlib.sha256(token.strip().encode()).hexdigest() in gateway.tokens

    def guarded(handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            request_id = request.headers.get(REQUEST_ID) or uuid.uuid4().hex
            if not authorized(request):
                return _error(401, "missing or unknown bearer token", request_id, hint="Send Authorization: Bearer <token>.")
            request.state.request_id = request_id
            return await handler(request)

        return wrapped

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and length.isascii() and length.isdigit() and int(length) > config.max_body_bytes:
            raise InvalidInput(413, f"body of {length} bytes exceeds the limit of {config.max_body_bytes}")
        body = await request.body()
        if len(body) > config.max_body_bytes:
            raise InvalidInput(413, f"body of {len(body)} bytes exceeds the limit of {config.max_body_bytes}")
        return body

    async def infer(request: Request, protocol: str) -> Response:
        request_id: str = request.state.request_id
        name = request.path_params["name"]
        raw_version = request.path_params.get("version")
        started = time.perf_counter()
        label_version = raw_version or "-"
        try:
            version = _parse_version(raw_version)
            route = gateway.route(name)
            pinned = route.versions.get(version) if version is not None else route.champion
            if pinned is None:
                known = ", ".join(str(v) for v in sorted(route.versions))
                raise NotServed(f"version {version} of {name!r} is not served here", hint=f"Served versions: {known}.")
            schema = pinned.loaded.schema
            body = await read_body(request)
            if protocol == "v2":
                decoded = decode_v2(body, schema, max_rows=config.max_rows)
            else:
                decoded = decode_v1(body, schema, max_rows=config.max_rows)
            if protocol == "v2" and decoded.request_id and REQUEST_ID not in request.headers:
                request_id = decoded.request_id
            key = _routing_key(request, decoded, route.routing_key)
            answer = await gateway.predict(name, decoded, request_id=request_id, key=key, version=version)
        except InvalidInput as exc:
            metrics.errors.labels(name, "invalid_input").inc()
            metrics.requests.labels(name, label_version, str(exc.status)).inc()
            return _json(exc.status, exc.to_dict(), request_id)
        except ModelFailed as exc:
            metrics.requests.labels(name, label_version, "422").inc()
            return _error(422, f"the model could not score this input: {exc}", request_id)
        except ShipyardError as exc:
            status = exc.http_status if exc.http_status < 500 or exc.http_status == 503 else 503
            metrics.errors.labels(name, type(exc).__name__).inc()
            metrics.requests.labels(name, label_version, str(status)).inc()
            return _error(status, exc.message, request_id, hint=exc.hint)
        version_label = str(answer.version)
        metrics.requests.labels(name, version_label, "200").inc()
        metrics.latency.labels(name, version_label).observe(time.perf_counter() - started)
        if protocol == "v2":
            body_bytes = encode_v2_response(
                name, version_label, request_id, {"predict": answer.predictions, "probability": answer.scores}
            )
            return Response(body_bytes, media_type="application/json", headers={REQUEST_ID: request_id})
        return _json(200, _v1_body(answer, request_id), request_id)

    async def v1_predict(request: Request) -> Response:
        return await infer(request, "v1")

    async def v2_infer(request: Request) -> Response:
        return await infer(request, "v2")

    async def live(request: Request) -> Response:
        return _json(200, {"live": True})

    async def ready(request: Request) -> Response:
        return _json(200 if gateway.ready else 503, {"ready": gateway.ready})

    async def model_metadata(request: Request) -> Response:
        request_id = request.state.request_id
        name = request.path_params["name"]
        try:
            version = _parse_version(request.path_params.get("version"))
            route = gateway.route(name)
        except InvalidInput as exc:
            return _json(exc.status, exc.to_dict(), request_id)
        except ShipyardError as exc:
            return _error(exc.http_status, exc.message, request_id, hint=exc.hint)
        batcher = route.versions.get(version) if version else route.champion
        if batcher is None:
            return _error(404, f"version {version} of {name!r} is not served here", request_id)
        schema = batcher.loaded.schema
        return _json(
            200,
            {
                "name": name,
                "versions": [str(v) for v in sorted(route.versions)],
                "platform": "sklearn",
                "inputs": [{"name": f.name, "datatype": _oip_type(f.type), "shape": [-1]} for f in schema.fields],
                "outputs": [
                    {"name": "predict", "datatype": "INT64", "shape": [-1]},
                    {"name": "probability", "datatype": "FP64", "shape": [-1]},
                ],
            },
            request_id,
        )

    async def model_ready(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            version = _parse_version(request.path_params.get("version"))
            route = gateway.route(name)
        except InvalidInput as exc:
            return _json(exc.status, exc.to_dict())
        except ShipyardError as exc:
            return _error(exc.http_status, exc.message, None)
        is_ready = version is None or version in route.versions
        return _json(200 if is_ready else 404, {"name": name, "ready": is_ready})

    async def metrics_endpoint(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    async def openapi(request: Request) -> Response:
        return _json(200, openapi_document(sorted(gateway.routes)))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    routes = [
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2/models/{name}", guarded(model_metadata), methods=["GET"]),
        Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{name}/infer", guarded(v2_infer), methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}", guarded(model_metadata), methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/infer", guarded(v2_infer), methods=["POST"]),
        Route("/v1/models/{name}:predict", guarded(v1_predict), methods=["POST"]),
        Route("/metrics", guarded(metrics_endpoint), methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.gateway = gateway
    return app


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


def _oip_type(mlflow_type: str) -> str:
    return {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32", "boolean": "BOOL"}.get(mlflow_type, "BYTES")


def _v1_body(answer: Answer, request_id: str) -> dict[str, Any]:
    return {
        "model": answer.model,
        "version": answer.version,
        "request_id": request_id,
        "routing": answer.routing,
        "predictions": answer.predictions,
        "probabilities": answer.scores,
    }
