"""The gateway (serve) and the worker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.render import esc
from shipyard.cli.root import err_console, log_decisions, svc


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 8080,
    models: Annotated[
        str | None, typer.Option("--models", help="Comma-separated models (default: every deployed model).")
    ] = None,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Most rows in one predict call.")] = 64,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", help="Under concurrency, wait this long for a batch to fill (0: never).")
    ] = 1.0,
    log_sample: Annotated[float, typer.Option("--log-sample", help="Share of requests written to the prediction log.")] = 1.0,
    predict_in_thread: Annotated[
        bool, typer.Option("--predict-in-thread/--predict-on-loop", help="Run predict calls in a worker thread.")
    ] = True,
    auth: Annotated[
        bool | None, typer.Option("--auth/--no-auth", help="Require bearer tokens (default: on unless bound to loopback).")
    ] = None,
    worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker",
            help="Also run the worker (rollouts, monitor runs, /metrics figures) in this process; "
            "training still runs in a child process (default: on, except in team mode, where the server runs it).",
        ),
    ] = None,
    max_body_mb: Annotated[
        float | None,
        typer.Option(
            "--max-body-mb", min=0.001, help="Refuse request bodies larger than this with 413 (default: gateway.max_body_mb, 1)."
        ),
    ] = None,
    runtime: Annotated[
        str | None,
        typer.Option(
            "--runtime",
            help="auto: the fastest runtime that answers as the model does (numpy tree walk, ONNX Runtime); "
            "scikit-learn: always the model's own predict_proba (default: gateway.runtime, auto).",
        ),
    ] = None,
    drain_seconds: Annotated[
        float,
        typer.Option("--drain-seconds", min=0.0, help="On SIGTERM: answer, but report not ready, this long; then stop."),
    ] = 5.0,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Gateway processes sharing the port, each with its own batchers and prediction-log writer; the worker "
            "(rollouts, monitor runs) stays one. With more than one, /metrics answers for the process that takes the scrape.",
        ),
    ] = 1,
    package: Annotated[
        Path | None,
        typer.Option(
            "--package",
            help="Serve the one version packaged in this folder (`shipyard package`; no project or store): its files "
            "are checked against their recorded digests first.",
        ),
    ] = None,
) -> None:
    """Serve the deployed models: Open Inference Protocol, plain JSON, /metrics, prediction log.

    On a laptop one command runs everything: the worker runs beside the gateway unless --no-worker
    (then run `shipyard worker` on its own).
    """
    import os

    # Before numpy and scikit-learn load: OpenMP threads fighting over the cores cost throughput.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from shipyard.serving.gateway import GatewayConfig, auth_by_default
    from shipyard.serving.server import serve_gateway, serve_workers

    log_decisions()
    if not 0.0 <= log_sample <= 1.0:
        raise typer.BadParameter(f"--log-sample must be within [0, 1], got {log_sample}")
    if runtime not in (None, "auto", "scikit-learn"):
        raise typer.BadParameter(f"--runtime must be auto or scikit-learn, got {runtime!r}")
    if package is not None:
        from shipyard.serving.packaged import packaged_gateway

        if workers != 1:
            raise typer.BadParameter("--package serves from one process; scale it with replicas, not --workers")

        config = GatewayConfig(
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            predict_in_thread=predict_in_thread,
            log_sample=log_sample,
            max_body_bytes=round((1.0 if max_body_mb is None else max_body_mb) * (1 << 20)),
            auth=False if auth is None else auth,
            runtime=runtime or "auto",
        )
        gateway = packaged_gateway(package, config)
        err_console().print(f"Serving the package in {esc(str(package))} on http://{esc(host)}:{port}", highlight=False)
        serve_gateway(gateway, host=host, port=port, drain_seconds=drain_seconds)
        return
    service = svc(ctx)
    body_mb = service.settings.spec.gateway.max_body_mb if max_body_mb is None else max_body_mb
    config = GatewayConfig(
        models=[m.strip() for m in models.split(",") if m.strip()] if models else None,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        predict_in_thread=predict_in_thread,
        log_sample=log_sample,
        max_body_bytes=round(body_mb * (1 << 20)),
        auth=auth_by_default(host) if auth is None else auth,
        runtime=runtime or service.settings.spec.gateway.runtime,
    )
    service.check_recording()
    hosted = None
    if worker is None:  # in team mode the server runs the worker: its changes are the server's to make
        worker = not service.settings.team
    if worker:
        from shipyard.worker import Worker

        hosted = Worker(service)
    processes = f"{workers} gateway processes" if workers > 1 else "one gateway process"
    err_console().print(
        f"Serving {esc(', '.join(config.models or ['every deployed model']))} on http://{esc(host)}:{port} "
        f"({processes}; auth {'on' if config.auth else 'off'}; worker {'in this process' if hosted else 'elsewhere'}; "
        f"prediction log in {esc(str(service.settings.predictions_dir))})"
    )
    if workers == 1:
        gateway = service.gateway(config)
        if hosted is not None:
            gateway.metrics.registry.register(hosted.figures)
    if hosted is not None:
        hosted.start()
    try:
        if workers == 1:
            serve_gateway(gateway, host=host, port=port, drain_seconds=drain_seconds)
        else:
            import functools

            from shipyard.service.delivery import open_gateway

            opener = functools.partial(open_gateway, service.settings, config)
            status = serve_workers(opener, host=host, port=port, workers=workers, drain_seconds=drain_seconds)
            if status:
                raise typer.Exit(status)
    finally:
        if hosted is not None:
            hosted.stop()


def worker(
    ctx: typer.Context,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Serve the worker's /metrics (open alerts, KPIs) on this port.")
    ] = None,
    metrics_host: Annotated[str, typer.Option("--metrics-host", help="Address for --metrics-port.")] = "127.0.0.1",
) -> None:
    """Run the worker alone: rollouts, monitor runs and their actions, /metrics figures (one worker acts per store).

    Stops on SIGTERM or Ctrl-C after the current step; a retrain in progress finishes first.
    """
    import signal
    import threading

    from shipyard.worker import Worker

    log_decisions()
    service = svc(ctx)
    service.check_recording()
    running = Worker(service)
    if metrics_port is not None:
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry()
        registry.register(running.figures)
        start_http_server(metrics_port, addr=metrics_host, registry=registry)
    err_console().print(
        f"Worker {esc(running.holder)} for {esc(service.settings.root)}, acting as {esc(running.service.actor)}"
        + (f"; /metrics on http://{esc(metrics_host)}:{metrics_port}" if metrics_port is not None else "")
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    running.run(stop=stop)
