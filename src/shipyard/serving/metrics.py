"""Prometheus metrics of the gateway, in a registry of its own (one per gateway).

Conventions (https://prometheus.io/docs/practices/naming/): base units (seconds), counters for what
only accumulates (exposed with ``_total``), histograms rather than quantile labels, a
``shipyard_build_info`` gauge, and the process collector's ``process_*`` figures.
"""

from __future__ import annotations

import platform
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
MODEL_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SCORE_BUCKETS = tuple(i / 10 for i in range(1, 11))


class GatewayMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

        from shipyard import __version__

        self.registry: CollectorRegistry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("shipyard_requests", "Prediction requests answered", ["model", "version", "status"], registry=r)
        self.latency = Histogram(
            "shipyard_request_seconds",
            "Time from request to response, refused and failed requests included",
            ["model", "version", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_time = Histogram(
            "shipyard_model_seconds",
            "CPU time of one predict call on the version's thread (a batch): the model's own cost",
            ["model", "version"],
            buckets=MODEL_BUCKETS,
            registry=r,
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
        self.runtime = Gauge(
            "shipyard_model_runtime_info",
            "1 for what serves a loaded version: numpy-trees, onnxruntime or scikit-learn",
            ["model", "version", "runtime"],
            registry=r,
        )
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
        self.log_dropped = Counter("shipyard_prediction_log_dropped_rows", "Prediction log rows dropped on overflow", registry=r)
        self._dropped_seen = 0
        self._dropped_lock = threading.Lock()
        build = Gauge("shipyard_build_info", "Shipyard's version, always 1", ["version", "python"], registry=r)
        build.labels(__version__, platform.python_version()).set(1)
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, open fds, start time

    def dropped_rows(self, total: int) -> None:
        """Count the prediction log's drops: ``total`` is its running count since the log opened."""
        with self._dropped_lock:
            if total > self._dropped_seen:
                self.log_dropped.inc(total - self._dropped_seen)
                self._dropped_seen = total

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
