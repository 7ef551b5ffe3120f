"""Running the control plane: uvicorn in the foreground, the worker beside it, audit checkpoints on a timer."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from shipyard.service import Shipyard

log = logging.getLogger("shipyard.server")
DEFAULT_PORT = 8700


def bind_address(url: str) -> tuple[str, int]:
    """Where to listen by default: loopback, on the port of the server's declared address."""
    parts = urlsplit(url)
    return "127.0.0.1", parts.port or (443 if parts.scheme == "https" else DEFAULT_PORT)


class Checkpointer:
    """Signs an audit checkpoint whenever one is due (the service decides: events arrived and time passed)."""

    def __init__(self, service: Shipyard, *, every: float = 1.0) -> None:
        self.service = service
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shipyard audit checkpoints", daemon=True)

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def _run(self) -> None:
        from shipyard.domain.errors import ShipyardError

        while not self._stop.wait(self.every):
            try:
                self.service.checkpoint_audit()
            except ShipyardError as exc:
                log.warning("signing an audit checkpoint failed: %s", exc.message)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            self.service.checkpoint_audit()  # the last events before a stop are signed too
        except Exception as exc:  # the store may already be gone on the way out
            log.warning("signing the last audit checkpoint failed: %s", exc)


def serve_control_plane(service: Shipyard, *, host: str, port: int, worker: bool = True, checkpoints: bool = True) -> None:
    """Serve until SIGINT or SIGTERM (exit status 0); the worker and the checkpointer stop with it."""
    import contextlib

    import uvicorn

    from shipyard.server.app import create_app
    from shipyard.serving.server import DrainingServer

    hosted = None
    if worker:
        from shipyard.worker import Worker

        hosted = Worker(service).start()  # acting as its own service principal (worker.actor)
    signer = Checkpointer(service).start() if checkpoints else None  # only a team server holds an audit key
    try:
        config = uvicorn.Config(create_app(service), host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)
        server = DrainingServer(config, drain_seconds=0, on_drain=lambda: None)  # a stop is a stop: nothing to drain
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        if not server.started:  # uvicorn said why (the port is taken)
            raise SystemExit(3)
    finally:
        if hosted is not None:
            hosted.stop()
        if signer is not None:
            signer.stop()
