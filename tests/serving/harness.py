"""A real gateway on a free loopback port, for tests: in a background thread, or as its own `shipyard serve` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from shipyard.examples.churn.generator import SAMPLE_CUSTOMER
from shipyard.service import Shipyard
from shipyard.serving.app import create_app
from shipyard.serving.gateway import Gateway, GatewayConfig
from shipyard.serving.inputs import Decoded
from shipyard.serving.runtime import LoadedModel
from shipyard.serving.server import BackgroundServer, free_port

ROW = SAMPLE_CUSTOMER


def ship(root: Path, version: int, env: dict[str, str] | None = None) -> None:
    """Take a candidate to production the governed way."""
    with Shipyard.open(root, actor="alice", env=env or {}) as service:
        service.promote("churn", version, "staging", reason="ready")
    with Shipyard.open(root, actor="vera", env=env or {}) as service:
        service.approve("churn", version, "production", comment="ok")
    with Shipyard.open(root, actor="rui", env=env or {}) as service:
        service.promote("churn", version, "production", reason="ship")


class Server:
    """The gateway app on uvicorn in a background thread; with ``worker=True`` a worker beside it, as `shipyard
    serve` runs one; ``wrap`` puts an ASGI app around it (to observe it)."""

    def __init__(
        self,
        root: Path,
        *,
        actor: str = "rui",
        env: dict[str, str] | None = None,
        worker: bool = False,
        wrap: Callable[[Any], Any] | None = None,
        **config: Any,
    ) -> None:
        from shipyard.worker import Worker

        self.service = Shipyard.open(root, actor=actor, env=env or {})
        defaults: dict[str, Any] = {"reload_seconds": 0.2, "log_flush_seconds": 0.2}
        self.gateway: Gateway = self.service.gateway(GatewayConfig(**{**defaults, **config}))
        self.worker = Worker(self.service) if worker else None
        if self.worker is not None:
            self.gateway.metrics.registry.register(self.worker.figures)
        app = create_app(self.gateway)
        self.background = BackgroundServer(wrap(app) if wrap is not None else app)

    @property
    def url(self) -> str:
        return self.background.url

    @property
    def port(self) -> int:
        return self.background.port

    def __enter__(self) -> Server:
        self.background.start()
        if self.worker is not None:
            self.worker.start()
        return self

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.background.stop()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
        self.service.close()


class ServeProcess:
    """`shipyard serve` in its own process: what a user runs, with its own interpreter lock.

    Load tests that judge latency need this: a gateway sharing the test's process also
    shares its lock with the load generator and the test's own polling.
    """

    def __init__(self, root: Path, *, actor: str = "rui", env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [str(Path(sys.executable).with_name("shipyard")), "--project", str(root), "--actor", actor]
        self.command = [*command, "serve", "--port", str(self.port), *args]
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServeProcess:
        self.process = subprocess.Popen(self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        with httpx.Client() as client:
            wait_for(lambda: self._ready(client), timeout=90)
        return self

    def _ready(self, client: httpx.Client) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"shipyard serve exited with {self.process.returncode}: {self.process.communicate()[1][-3000:]}")
        try:
            return client.get(f"{self.url}/v2/health/ready").status_code == 200
        except httpx.TransportError:
            return False

    def sigterm(self) -> None:
        """What Kubernetes sends a pod it stops; returns at once."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def terminate(self) -> tuple[int, str]:
        """SIGTERM, then the exit status and what the process wrote to stderr."""
        assert self.process is not None
        self.sigterm()
        try:
            _, errors = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, errors = self.process.communicate()
        return self.process.returncode, errors

    def __exit__(self, *_exc: object) -> None:
        self.terminate()


def wait_for(condition: Any, timeout: float = 30.0, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(every)


class CountingExecutor(ThreadPoolExecutor):
    """The predict thread a Batcher hands calls to, counting the calls it is handed."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.calls = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.calls += 1
        return super().submit(fn, *args, **kwargs)


async def submit_one(loaded: LoadedModel, executor: ThreadPoolExecutor, decoded: Decoded) -> tuple[list[int], list[float]]:
    """One request through a real Batcher on its own, as a lone client's request arrives."""
    from shipyard.serving.batching import Batcher

    batcher = Batcher(loaded, executor=executor)
    batcher.start()
    try:
        return await batcher.submit(decoded, request_id="r", routing="champion", received_at=0.0)
    finally:
        await batcher.stop()


def customers(count: int = 500, seed: int = 11) -> list[dict[str, Any]]:
    """Varied churn rows as a client sends them: score distributions need spread for the divergence check."""
    from shipyard.examples.churn.generator import generate

    frame = generate(count, seed=seed).drop(columns=["customer_id", "signup_date", "churned"])
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


class Load:
    """Clients sending single-row predictions until stopped, after ``max_requests``, or once ``seconds`` have
    passed; every status, and every answering version, is kept. ``model`` and ``rows`` send another model's
    rows (abalone, penguins); ``answered`` keeps each answered request's id and the index of the row it sent,
    so a test can label what was served."""

    def __init__(
        self,
        url: str,
        *,
        clients: int = 4,
        bad_share: float = 0.0,
        seconds: float | None = None,
        max_requests: int = 20_000,
        rows: list[dict[str, Any]] | None = None,
        model: str = "churn",
    ) -> None:
        self.url, self.bad_share, self.max_requests, self.model = url, bad_share, max_requests, model
        self.answered: list[tuple[str, int]] = []
        self.until = time.monotonic() + seconds if seconds is not None else float("inf")
        self.rows = rows if rows is not None else customers()
        self.statuses: list[int] = []
        self.versions: list[int] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]

    def _run(self, seed: int) -> None:
        import json
        import random

        rng = random.Random(seed)
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set() and len(self.statuses) < self.max_requests and time.monotonic() < self.until:
                index = rng.randrange(len(self.rows))
                row = self.rows[index]
                if rng.random() < self.bad_share:
                    row = {**row, "contract_type": "lifetime"}
                response = client.post(f"{self.url}/v1/models/{self.model}:predict", content=json.dumps({"instances": [row]}))
                self.statuses.append(response.status_code)
                if response.status_code == 200:
                    self.versions.append(response.json()["version"])
                    self.answered.append((response.headers["x-request-id"], index))

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)
