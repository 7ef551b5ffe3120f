"""What both of the gateway's HTTP faces share: request ids, bodies read under a limit, bearer tokens, the
served version of a route, refusal counting and the one error body.

The predictions (`shipyard.serving.predictions`) are plain ASGI and the other routes a Starlette app
(`shipyard.serving.app`); both render a refusal through `error_body` and count it with `count_refusal`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from shipyard.domain.errors import ModelFailed, NotServed, ShipyardError, Unauthenticated, http_status, oip_body
from shipyard.serving.inputs import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Iterable

    from starlette.types import Receive, Send

    from shipyard.serving.batching import Batcher
    from shipyard.serving.gateway import Gateway
    from shipyard.serving.gateway import Route as Traffic

REQUEST_ID = "x-request-id"
UNKNOWN = "<unknown>"  # the metric label of every model name or version the gateway does not serve
SEND_TOKEN = "Send Authorization: Bearer <token>; `shipyard token create NAME --scope predict` makes one."


class Disconnected(Exception):
    """The client went away before its body arrived: nobody is left to answer."""


def new_request_id() -> str:
    """128 random bits in hex, as a uuid4's hex but a third of its cost (it is made for every request)."""
    return os.urandom(16).hex()


def header_safe(request_id: str) -> str:
    """A body's "id" as a header value: headers carry ASCII, so other text travels percent-encoded."""
    return request_id if request_id.isascii() else quote(request_id, safe="")


def raw_header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case) in an ASGI scope's headers."""
    for key, value in headers:
        if key == name:
            return value
    return None


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), decoded as Starlette decodes it (latin-1)."""
    value = raw_header(headers, name)
    return None if value is None else value.decode("latin-1")


def json_bytes(body: dict[str, Any] | list[Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def error_body(exc: ShipyardError) -> dict[str, Any]:
    """The Open Inference Protocol's error body for a refusal, with the details an invalid input carries."""
    return oip_body(exc, **exc.details()) if isinstance(exc, InvalidInput) else oip_body(exc)


async def send_bytes(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]], content_type: bytes) -> None:
    """A whole response in two ASGI messages, without building a Response object."""
    start = [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive, length: str | None, limit: int) -> bytes:
    """The body, read chunk by chunk: one that passes ``limit`` is refused then, whether or not it declared a length."""
    if length is not None and length.isascii() and length.isdigit() and int(length) > limit:
        raise InvalidInput(413, f"the body of {length} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected()
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


def token_refusal(gateway: Gateway, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """Why the request's bearer token is not accepted (unknown, revoked, expired, missing); None when it is.
    The check is in memory (``Gateway.tokens``): no store query per request."""
    scheme, _, token = (raw_header(headers, b"authorization") or b"").partition(b" ")
    if scheme.lower() == b"bearer" and token.strip():
        return gateway.tokens.refusal(hashlib.sha256(token.strip()).hexdigest(), time.time())
    return "no bearer token"


def unauthenticated_body(refusal: str) -> bytes:
    return json_bytes(oip_body(Unauthenticated(refusal, hint=SEND_TOKEN)))


def served(route: Traffic, name: str, version: int | None) -> Batcher:
    """The batcher answering for ``version`` (the champion when None); NotServed names the versions there are."""
    batcher = route.champion if version is None else route.versions.get(version)
    if batcher is None:
        known = ", ".join(str(v) for v in sorted(route.versions))
        raise NotServed(f"version {version} of {name!r} is not served here", hint=f"Served versions: {known}.")
    return batcher


def parse_version(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):  # "³".isdigit() is True, int("³") fails
        raise InvalidInput(400, f"version must be a positive integer, got {raw!r}", field="version")
    return int(raw)


def count_refusal(gateway: Gateway, name: str, raw_version: str | None, exc: ShipyardError, seconds: float) -> None:
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
