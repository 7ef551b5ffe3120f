"""Running the gateway app on uvicorn: in the foreground with a drain on SIGTERM (`shipyard serve`),
or in a background thread (the demo, tests, embedding)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:
    from shipyard.serving.gateway import Gateway

CLOSE_SECONDS = 2.0  # after a drain, how long open connections get to send their last requests


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve_gateway(gateway: Gateway, *, host: str, port: int, drain_seconds: float) -> None:
    """Serve until SIGTERM, then drain for ``drain_seconds`` and stop gracefully; SIGINT stops without a drain."""
    from shipyard.serving.app import create_app

    config = uvicorn.Config(
        create_app(gateway),
        host=host,
        port=port,
        log_level="warning",
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=30,
    )
    server = DrainingServer(config, drain_seconds=drain_seconds, on_drain=gateway.drain)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises SIGINT once it has shut down; as uvicorn.run, end there
        server.run()
    if not server.started:  # uvicorn logged why (the port is taken, start-up failed); exit as uvicorn.run does
        raise SystemExit(3)


class DrainingServer(uvicorn.Server):
    """uvicorn, stopping the way a Kubernetes pod should.

    Kubernetes sends SIGTERM and takes the pod out of its Service at the same time, and load
    balancers notice seconds later: requests keep coming meanwhile. On SIGTERM this server calls
    ``on_drain`` (readiness turns 503) and keeps answering for ``drain_seconds``; then it stops
    accepting, lets each open connection finish with "Connection: close", answers what it took,
    and returns, so the process exits 0. A second SIGTERM, or SIGINT, stops without waiting.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        drain_seconds: float,
        on_drain: Callable[[], None],
        on_started: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.on_drain = on_drain
        self.on_started = on_started
        self.drain_until: float | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.on_started is not None:
            self.on_started()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM:
            super().handle_exit(sig, frame)
            return
        # Not recorded for re-raising, as uvicorn would: a requested stop ends with exit status 0.
        if self.drain_until is None and self.drain_seconds > 0 and not self.should_exit:
            self.drain_until = time.monotonic() + self.drain_seconds
            self.on_drain()
        else:
            self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self.drain_until is not None and time.monotonic() >= self.drain_until:
            self.should_exit = True
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if not self.force_exit:
            await self._close_connections()
        await super().shutdown(sockets=sockets)

    async def _close_connections(self) -> None:
        """Stop accepting, then answer every request that still arrives with "Connection: close".

        uvicorn's own shutdown closes idle keep-alive connections at once, and a request a client
        sends on one at that moment is lost. Once the listener is closed, a client's next request
        needs a new connection, which is refused: nothing is sent, so nothing is lost.
        """
        for server in self.servers:
            server.close()
        # Responses to requests that start from now on say "Connection: close" (uvicorn adds these headers
        # to every response; its main loop, which would refresh them, has ended).
        self.server_state.default_headers = [*self.server_state.default_headers, (b"connection", b"close")]
        deadline = time.monotonic() + CLOSE_SECONDS
        while self.server_state.connections and time.monotonic() < deadline and not self.force_exit:
            await asyncio.sleep(0.02)


class BackgroundServer:
    """uvicorn serving ``app`` on a loopback port until ``stop()`` (which drains and shuts down)."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="gateway", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the gateway did not start on {self.url}")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 60.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def serve_workers(open_gateway: Callable[[], Gateway], *, host: str, port: int, workers: int, drain_seconds: float) -> int:
    """Serve on one port from ``workers`` processes, each with the gateway ``open_gateway`` makes there (its own
    batchers, prediction-log writer and reloads); returns the exit status. ``open_gateway`` travels to each
    process, so it must pickle (a module-level function, or a partial of one). The socket is bound here and
    shared: the kernel spreads the connections.

    SIGTERM and SIGINT are passed on to every process (SIGTERM drains, as `serve_gateway` does); a process that
    dies once it has served is replaced, one that dies before it could serve stops them all (the next would too).
    """
    import logging
    import multiprocessing

    multiprocessing.allow_connection_pickling()  # the listening socket travels to each process
    spawn = multiprocessing.get_context("spawn")
    log = logging.getLogger("shipyard.serving")
    listener = uvicorn.Config(app="shipyard.serving.app:create_app", host=host, port=port).bind_socket()  # binds only
    received: list[int] = []

    def start(index: int) -> tuple[Any, Any]:
        serving = spawn.Event()
        process = spawn.Process(
            target=_serve_one, args=(open_gateway, listener, drain_seconds, serving), name=f"gateway-{index}", daemon=False
        )
        process.start()
        return process, serving

    previous = {sig: signal.signal(sig, lambda sig, _frame: received.append(sig)) for sig in (signal.SIGTERM, signal.SIGINT)}
    processes = [start(i) for i in range(workers)]
    status = 0
    try:
        while not received:
            time.sleep(0.2)
            for index, (process, serving) in enumerate(processes):
                if process.is_alive():
                    continue
                if not serving.is_set():
                    log.error("gateway process %s exited with %s while starting; stopping the others", index, process.exitcode)
                    received.append(signal.SIGINT)
                    status = 3
                    break
                log.error("gateway process %s exited with %s; starting another", index, process.exitcode)
                processes[index] = start(index)
        for process, _ in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, received[0])
        for process, _ in processes:
            process.join(timeout=drain_seconds + CLOSE_SECONDS + 30)
            if process.is_alive():
                process.kill()
                process.join()
            if process.exitcode not in (0, None) and status == 0:
                status = 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        listener.close()
    return status


def _serve_one(open_gateway: Callable[[], Gateway], listener: socket.socket, drain_seconds: float, serving: Any) -> None:
    """One worker process: a gateway of its own over the project, serving the shared socket until signalled."""
    import logging

    from shipyard.serving.app import create_app

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("shipyard").setLevel(logging.INFO)
    gateway = open_gateway()
    uvicorn_config = uvicorn.Config(
        create_app(gateway), log_level="warning", loop="uvloop", http="httptools", timeout_graceful_shutdown=30
    )
    server = DrainingServer(uvicorn_config, drain_seconds=drain_seconds, on_drain=gateway.drain, on_started=serving.set)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[listener])
