"""Prometheus metrics of the gateway, in a registry of its own (one per gateway)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SCORE_BUCKETS = tuple(i / 10 for i in range(1, 11))


class GatewayMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry: CollectorRegistry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("shipyard_requests", "Prediction requests answered", ["model", "version", "status"], registry=r)
        self.latency = Histogram(
            "shipyard_request_seconds", "Time from request to response", ["model", "version"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.errors = Counter("shipyard_errors", "Requests refused or failed, by reason", ["model", "reason"], registry=r)
        self.batch_size = Histogram(
            "shipyard_batch_rows", "Rows per predict call", ["model", "version"], buckets=BATCH_BUCKETS, registry=r
        )
        self.scores = Histogram(
            "shipyard_prediction_score",
            "Positive-class scores predicted",
            ["model", "version"],
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.load_seconds = Gauge("shipyard_model_load_seconds", "Time to load a model version", ["model", "version"], registry=r)
        self.loaded = Gauge("shipyard_model_loaded", "1 while a model version is loaded", ["model", "version"], registry=r)
        self.challenger_failures = Counter(
            "shipyard_challenger_failures", "Challenger errors answered by the champion", ["model", "version"], registry=r
        )
        self.stale = Gauge(
            "shipyard_model_stale",
            "1 while the gateway cannot load the deployed champion (it serves the previous one, or none)",
            ["model"],
            registry=r,
        )
        self.generation = Gauge("shipyard_deployment_generation", "Deployment generation applied", registry=r)
        self.log_dropped = Gauge("shipyard_prediction_log_dropped_rows", "Prediction log rows dropped on overflow", registry=r)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
