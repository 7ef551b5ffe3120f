"""A real gateway on a free loopback port, in a background thread, for tests."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from shipyard.service import Shipyard
from shipyard.serving.app import create_app
from shipyard.serving.gateway import Gateway, GatewayConfig

ROW = {
    "tenure_months": 3,
    "contract_type": "month-to-month",
    "monthly_charges": 80.5,
    "payment_method": "electronic check",
    "internet_service": "fiber optic",
    "support_calls": 2,
    "gender": "female",
    "senior_citizen": 0,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, root: Path, *, actor: str = "rui", **config: Any) -> None:
        self.service = Shipyard.open(root, actor=actor, env={})
        defaults: dict[str, Any] = {"reload_seconds": 0.2, "log_flush_seconds": 0.2}
        self.gateway: Gateway = self.service.gateway(GatewayConfig(**{**defaults, **config}))
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(self.gateway), host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the gateway did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)

    def __exit__(self, *_exc: object) -> None:
        self.stop()
        self.service.close()


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
