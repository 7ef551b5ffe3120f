"""Request bodies over the configured limit get 413, before more of them is read into memory."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from shipyard.domain.errors import TooLarge, control_plane_body

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large(size: int, limit: int) -> TooLarge:
    return TooLarge(
        f"the request body ({size:,} bytes so far) is over this server's limit of {limit:,} bytes",
        hint="Send less at once, or raise server.max_body_bytes in shipyard.yaml.",
    )


class BodyLimit:
    """ASGI middleware: refuse a declared Content-Length over ``limit`` at once; a body streamed past it
    raises TooLarge where the app reads it, which the app renders as its other errors."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            body = json.dumps(control_plane_body(too_large(int(declared), self.limit))).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 413, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise too_large(seen, self.limit)
            return message

        await self.app(scope, counted, send)
