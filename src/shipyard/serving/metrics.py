"""Prometheus metrics of the gateway, in a registry of its own (one per gateway).

Conventions (https://prometheus.io/docs/practices/naming/): base units (seconds), counters for what
only accumulates (exposed with ``_total``), histograms rather than quantile labels, a
``shipyard_build_info`` gauge, and the process collector's ``process_*`` figures.
"""

from __future__ import annotations

import platform
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from shipyard.domain.monitoring import MonitorRun

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
MODEL_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SCORE_BUCKETS = tuple(i / 10 for i in range(1, 11))


@dataclass(frozen=True, slots=True)
class Meters:
    """One version's children of the per-request and per-batch metrics, looked up once rather than per call
    (a ``labels()`` look-up costs as much as the observation)."""

    answered: Any  # shipyard_requests_total{status="200"}
    latency: Any  # shipyard_request_seconds{status="200"}
    batch_rows: Any
    model_seconds: Any


class ScoreHistogram:
    """``shipyard_prediction_score``: a histogram of positive-class scores per version, observed a batch at a
    time (numpy counts the buckets; observing row by row cost more than the rest of a batch's bookkeeping)."""

    name = "shipyard_prediction_score"
    documentation = "Positive-class scores predicted"

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.bounds = buckets
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], tuple[Any, list[float]]] = {}  # per-bucket counts, [sum]

    def observe_many(self, model: str, version: str, scores: np.ndarray) -> None:
        import numpy as np

        found = np.bincount(np.searchsorted(self.bounds, scores, side="left"), minlength=len(self.bounds) + 1)
        total = float(scores.sum())
        with self._lock:
            counts = self._counts.get((model, version))
            if counts is None:
                counts = self._counts[(model, version)] = (np.zeros(len(self.bounds) + 1, dtype=np.int64), [0.0])
            counts[0][:] += found
            counts[1][0] += total

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(self.name, self.documentation, labels=["model", "version"])
        with self._lock:
            snapshot = [(key, counts.cumsum().tolist(), total[0]) for key, (counts, total) in sorted(self._counts.items())]
        for (model, version), cumulative, total in snapshot:
            edges = [*(repr(float(b)) for b in self.bounds), "+Inf"]
            family.add_metric([model, version], list(zip(edges, cumulative, strict=True)), total)
        yield family

    def describe(self) -> Iterator[Metric]:
        return iter(())


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
        self.scores = ScoreHistogram(SCORE_BUCKETS)
        r.register(self.scores)  # a collector by its methods (collect, describe)
        self._meters: dict[tuple[str, str], Meters] = {}
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
        self.monitor_signal = Gauge(
            "shipyard_monitor_signal",
            "The latest monitor run's reading of each alert signal it could judge (the value its alert rules compare)",
            ["model", "signal"],
            registry=r,
        )
        self.monitor_decay_significant = Gauge(
            "shipyard_monitor_metric_decay_significant",
            "1 when the latest monitor run found the live primary metric significantly worse than the holdout's",
            ["model"],
            registry=r,
        )
        self.monitor_run_at = Gauge(
            "shipyard_monitor_run_timestamp_seconds", "When the latest monitor run was recorded, Unix time", ["model"], registry=r
        )
        self._monitored: dict[str, tuple[int, set[str]]] = {}  # model -> its run id shown, and the signals it read
        self.log_dropped = Counter("shipyard_prediction_log_dropped_rows", "Prediction log rows dropped on overflow", registry=r)
        self._dropped_seen = 0
        self._dropped_lock = threading.Lock()
        build = Gauge("shipyard_build_info", "Shipyard's version, always 1", ["version", "python"], registry=r)
        build.labels(__version__, platform.python_version()).set(1)
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, open fds, start time

    def meters(self, model: str, version: str) -> Meters:
        """The version's metric children (created on first use; versions are few, so they are kept)."""
        found = self._meters.get((model, version))
        if found is None:
            found = self._meters[(model, version)] = Meters(
                answered=self.requests.labels(model, version, "200"),
                latency=self.latency.labels(model, version, "200"),
                batch_rows=self.batch_size.labels(model, version),
                model_seconds=self.model_time.labels(model, version),
            )
        return found

    def monitor_runs(self, runs: Mapping[str, MonitorRun]) -> None:
        """Show each model's latest monitor run: its time and readings, of the fixed signal names only (the labels
        stay bounded). A signal the run could not judge (too few rows, no labels) has no sample."""
        from shipyard.config import SIGNALS

        for model in self._monitored.keys() - runs.keys():
            for signal in self._monitored.pop(model)[1]:
                _remove(self.monitor_signal, model, signal)
            _remove(self.monitor_decay_significant, model)
            _remove(self.monitor_run_at, model)
        for model, run in runs.items():
            shown = self._monitored.get(model)
            if shown is not None and shown[0] == run.id:
                continue
            readings = {
                str(r["signal"]): float(r["observed"])
                for r in run.report.get("signals") or ()
                if r.get("signal") in SIGNALS and isinstance(r.get("observed"), (int, float))
            }
            for signal in (shown[1] if shown is not None else set()) - readings.keys():
                _remove(self.monitor_signal, model, signal)
            for signal, observed in readings.items():
                self.monitor_signal.labels(model, signal).set(observed)
            significant = (run.report.get("performance") or {}).get("significant")
            if isinstance(significant, bool):
                self.monitor_decay_significant.labels(model).set(1 if significant else 0)
            else:
                _remove(self.monitor_decay_significant, model)
            self.monitor_run_at.labels(model).set(run.at.timestamp())
            self._monitored[model] = (run.id, set(readings))

    def dropped_rows(self, total: int) -> None:
        """Count the prediction log's drops: ``total`` is its running count since the log opened."""
        with self._dropped_lock:
            if total > self._dropped_seen:
                self.log_dropped.inc(total - self._dropped_seen)
                self._dropped_seen = total

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _remove(metric: Any, *labels: str) -> None:
    """Drop one labelled child. prometheus_client warns that removal is not implemented in multi-process mode
    whenever PROMETHEUS_MULTIPROC_DIR is set, and importing Feast sets it; these metrics live in this process's
    memory (the gateway never runs prometheus_client's multi-process mode), so the removal is real."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Removal of labels has not been implemented", UserWarning)
        metric.remove(*labels)
