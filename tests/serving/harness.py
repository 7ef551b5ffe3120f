"""A real gateway on a free loopback port, in a background thread, for tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from shipyard.examples.churn.generator import SAMPLE_CUSTOMER
from shipyard.service import Shipyard
from shipyard.serving.app import create_app
from shipyard.serving.gateway import Gateway, GatewayConfig
from shipyard.serving.server import BackgroundServer

ROW = SAMPLE_CUSTOMER


class Server:
    def __init__(self, root: Path, *, actor: str = "rui", env: dict[str, str] | None = None, **config: Any) -> None:
        self.service = Shipyard.open(root, actor=actor, env=env or {})
        defaults: dict[str, Any] = {"reload_seconds": 0.2, "log_flush_seconds": 0.2}
        self.gateway: Gateway = self.service.gateway(GatewayConfig(**{**defaults, **config}))
        self.background = BackgroundServer(create_app(self.gateway))

    @property
    def url(self) -> str:
        return self.background.url

    @property
    def port(self) -> int:
        return self.background.port

    def __enter__(self) -> Server:
        self.background.start()
        return self

    def stop(self) -> None:
        self.background.stop()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
        self.service.close()


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
