"""The gateway's request-size limit holds for bodies that do not declare their length (chunked uploads)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import Server, ship

from shipyard.service import Shipyard
from shipyard.serving.app import create_app
from shipyard.serving.gateway import GatewayConfig

LIMIT = 64 * 1024
CHUNK = 16 * 1024


@pytest.fixture
def served(trained_project: Path) -> Path:
    ship(trained_project, 1)
    return trained_project


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
    }


@pytest.mark.parametrize("path", ["/v1/models/churn:predict", "/v2/models/churn/infer"])
def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(served: Path, path: str) -> None:
    """Driven at the ASGI level: a body of 10,000 chunks (160 MB of JSON whitespace) with no length declared."""
    consumed = 0

    async def receive() -> dict[str, Any]:
        nonlocal consumed
        consumed += 1
        return {"type": "http.request", "body": b" " * CHUNK, "more_body": consumed < 10_000}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        with Shipyard.open(served, actor="rui", env={}) as service:
            app = create_app(service.gateway(GatewayConfig(max_body_bytes=LIMIT)))
            # The predictions answer in front of the Starlette app, whose lifespan starts the gateway.
            async with app.app.router.lifespan_context(app.app):
                await app(_scope(path), receive, send)

    asyncio.run(run())
    assert sent[0]["status"] == 413
    assert consumed == LIMIT // CHUNK + 1  # the chunk that passed the limit is the last one read
    assert b"exceeds the limit of 65536 bytes" in sent[1]["body"]


class BodyMeter:
    """An ASGI app around the gateway's, counting the request body bytes the gateway reads."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.read = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def counting() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            self.read += len(message.get("body", b""))
            return message

        await self.app(scope, counting, send)


def test_a_chunked_upload_far_above_the_limit_gets_a_413_over_http(served: Path) -> None:
    meters: list[BodyMeter] = []

    def wrap(app: Any) -> BodyMeter:
        meters.append(BodyMeter(app))
        return meters[0]

    def upload(megabytes: int) -> Iterator[bytes]:
        chunk = b" " * (1 << 20)
        for _ in range(megabytes):
            yield chunk

    with Server(served, wrap=wrap, max_body_bytes=LIMIT) as server, httpx.Client(timeout=120) as client:
        response = client.post(f"{server.url}/v1/models/churn:predict", content=upload(256))  # 256 MB, chunked
        assert response.status_code == 413
        # Whatever uvicorn had buffered when the gateway stopped reading: far from the 256 MB sent.
        assert meters[0].read < LIMIT + (1 << 20), meters[0].read
        assert "exceeds the limit of 65536 bytes" in response.json()["error"]
        after = client.post(f"{server.url}/v1/models/churn:predict", json={"instances": [{"tenure_months": 1}]})
        assert after.status_code == 422  # the connection and the gateway still answer
        metrics = client.get(f"{server.url}/metrics").text
    assert 'shipyard_requests_total{model="churn",status="413",version="-"} 1.0' in metrics
