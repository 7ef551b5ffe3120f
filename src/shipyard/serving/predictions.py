"""The gateway's predictions: `POST /v1/models/{name}:predict` and `POST /v2/models/{name}[/versions/{v}]/infer`.

They are the traffic, so they are answered by plain ASGI in front of the Starlette app that serves
every other route: no router walk, Request or Response objects, or exception middleware per
request (a third of a constant Starlette route's own cost, measured with `benchmarks/serving.py`).
What they answer is unchanged: the same decoding, tokens, refusals (the Open Inference
Protocol's error body, counted under bounded labels) and request ids as the other routes.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import ShipyardError, http_status
from shipyard.serving import binary
from shipyard.serving.features import request_schema
from shipyard.serving.http import (
    REQUEST_ID,
    Disconnected,
    count_refusal,
    error_body,
    header,
    header_safe,
    json_bytes,
    new_request_id,
    parse_version,
    read_body,
    send_bytes,
    served,
    token_refusal,
    unauthenticated_body,
)
from shipyard.serving.inputs import decode_v1, decode_v2, encode_v2_response

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from shipyard.serving.gateway import Answer, Gateway
    from shipyard.serving.inputs import Decoded

OUTPUTS = ("predict", "probability")  # every model's output tensors, in the order a response lists them
# As Starlette matches "{name}": one path segment, at least one character.
PATHS = (
    (re.compile(r"/v2/models/(?P<name>[^/]+)/infer"), "v2"),
    (re.compile(r"/v1/models/(?P<name>[^/]+):predict"), "v1"),
    (re.compile(r"/v2/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/infer"), "v2"),
)
JSON = b"application/json"
_REQUEST_ID_HEADER = REQUEST_ID.encode()


class Predictions:
    """Answers the prediction routes; hands every other request (and the lifespan) to ``app``."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v"):
            path = scope["path"]
            for pattern, protocol in PATHS:
                found = pattern.fullmatch(path)
                if found is None:
                    continue
                if scope["method"] != "POST":
                    message = f"{scope['method']} is not allowed on {path!r} (allowed: POST)"
                    body = json_bytes({"error": message, "code": "http_error"})
                    await send_bytes(send, 405, body, [(b"allow", b"POST")], JSON)
                    return
                await self.answer(scope, receive, send, protocol, found["name"], found.groupdict().get("version"))
                return
        await self.app(scope, receive, send)

    async def answer(self, scope: Scope, receive: Receive, send: Send, protocol: str, name: str, raw_version: str | None) -> None:
        gateway = self.gateway
        headers = scope["headers"]
        if gateway.config.auth:
            refusal = token_refusal(gateway, headers)
            if refusal is not None:
                request_id = header(headers, _REQUEST_ID_HEADER) or new_request_id()
                extra = [(_REQUEST_ID_HEADER, request_id.encode("latin-1")), (b"www-authenticate", b"Bearer")]
                await send_bytes(send, 401, unauthenticated_body(refusal), extra, JSON)
                return
        sent_id = header(headers, _REQUEST_ID_HEADER)
        request_id = sent_id or new_request_id()
        shown_id = request_id  # as the response headers carry it
        started = time.perf_counter()
        try:
            version = parse_version(raw_version)
            route = gateway.route(name)
            schema = request_schema(served(route, name, version))  # Feast-backed: entity keys (serving/features.py)
            config = gateway.config
            body = await read_body(receive, header(headers, b"content-length"), config.max_body_bytes)
            chosen = None
            if protocol == "v2":
                header_length = header(headers, binary.HEADER.lower().encode())
                if header_length is None:
                    decoded = decode_v2(body, schema, max_rows=config.max_rows)
                else:
                    decoded = binary.decode_v2_binary(body, header_length, schema, max_rows=config.max_rows)
                if decoded.outputs is not None or "binary_data_output" in decoded.parameters:
                    chosen = binary.chosen_outputs(decoded, OUTPUTS)
                if decoded.request_id and sent_id is None:
                    request_id = decoded.request_id
                    shown_id = header_safe(request_id)
            else:
                decoded = decode_v1(body, schema, max_rows=config.max_rows)
            key = _routing_key(headers, decoded, route.routing_key)
            answer = await gateway.predict(name, decoded, request_id=request_id, key=key, version=version)
        except Disconnected:
            return
        except ShipyardError as exc:
            count_refusal(gateway, name, raw_version, exc, time.perf_counter() - started)
            await send_bytes(send, http_status(exc), json_bytes(error_body(exc)), _id_header(shown_id), JSON)
            return
        gateway.answered(name, answer.version, time.perf_counter() - started)
        if answer.task != "binary":
            await send_bytes(send, 200, _task_body(answer, protocol, request_id), _id_header(shown_id), JSON)
            return
        if protocol == "v1":
            await send_bytes(send, 200, json_bytes(_v1_body(answer, request_id)), _id_header(shown_id), JSON)
            return
        version_label = str(answer.version)
        outputs: dict[str, list[Any]] = {"predict": answer.predictions, "probability": answer.scores}
        if chosen is None:
            await send_bytes(send, 200, encode_v2_response(name, version_label, request_id, outputs), _id_header(shown_id), JSON)
            return
        body_bytes, json_length = binary.encode_response(name, version_label, request_id, outputs, chosen)
        if json_length is None:
            await send_bytes(send, 200, body_bytes, _id_header(shown_id), JSON)
            return
        extra = [*_id_header(shown_id), (binary.HEADER.lower().encode(), str(json_length).encode())]
        await send_bytes(send, 200, body_bytes, extra, b"application/octet-stream")


def _id_header(request_id: str) -> list[tuple[bytes, bytes]]:
    return [(_REQUEST_ID_HEADER, request_id.encode("latin-1"))]


def _routing_key(headers: list[tuple[bytes, bytes]], decoded: Decoded, field: str | None) -> str | None:
    """Sticky assignment: the configured header, else the configured field of the first row."""
    if field is None:
        return None
    try:
        sent = header(headers, field.lower().encode("latin-1"))
    except UnicodeEncodeError:  # no header can carry that name: the field it names is in the rows
        sent = None
    if sent:
        return sent
    values = decoded.columns.get(field)
    return str(values[0]) if values else None


def _task_body(answer: Answer, protocol: str, request_id: str) -> bytes:
    """A regression's value ('predict'); a multiclass model's label ('predict') and each class's probability
    ('probability', rows of a 2-D tensor). JSON in both protocols: binary tensors are for binary models."""
    outputs: dict[str, list[Any]] = {"predict": answer.predictions}
    if answer.task == "multiclass":
        outputs["probability"] = answer.scores
    if protocol == "v2":
        return encode_v2_response(answer.model, str(answer.version), request_id, outputs)
    body = {k: v for k, v in _v1_body(answer, request_id).items() if k != "probabilities"}
    if "probability" in outputs:
        body["probabilities"] = outputs["probability"]
    return json_bytes(body)


def _v1_body(answer: Answer, request_id: str) -> dict[str, Any]:
    return {
        "model": answer.model,
        "version": answer.version,
        "request_id": request_id,
        "routing": answer.routing,
        "predictions": answer.predictions,
        "probabilities": answer.scores,
    }
