"""`shipyard costs`: CPU time from the log's model time, counted once per batch and scaled by the sampling rate."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.predlog import PredictionLog
from shipyard.service import Shipyard


def predict(log: PredictionLog, batches: list[tuple[int, float]], *, prefix: str, routing: str = "champion") -> None:
    """Batches of (rows, the model call's milliseconds), logged as the gateway logs them: the call's time on each row."""
    now = time.time()
    for b, (rows, model_ms) in enumerate(batches):
        log.append(
            model="churn",
            version=1,
            request_ids=[f"{prefix}{b}-{i}" for i in range(rows)],
            received_at=[now] * rows,
            routing=[routing] * rows,
            features={"tenure": list(range(rows))},
            predictions=[0] * rows,
            scores=[0.5] * rows,
            latency_ms=[model_ms + 1.0] * rows,
            status=[200] * rows,
            model_ms=[model_ms] * rows,
        )


def test_a_batch_s_model_time_is_counted_once_not_once_per_row(project: Path) -> None:
    with PredictionLog(project / ".shipyard" / "predictions") as log:
        predict(log, [(64, 32.0), (1, 0.5), (1000, 400.0)], prefix="a")
        predict(log, [(10, 5.0)], prefix="s", routing="shadow")  # the challenger's shadow calls cost CPU too
    with Shipyard.open(project, actor="rui", env={}) as service:
        (churn,) = service.costs("30d").models
    assert churn.cpu_seconds == pytest.approx((32.0 + 0.5 + 400.0 + 5.0) / 1000)  # summing rows would give 420 s
    assert churn.predictions == 64 + 1 + 1000  # answered, shadow rows not counted as served
    assert churn.cpu_seconds_per_1000 == pytest.approx(churn.cpu_seconds / 1065 * 1000)
    assert churn.logged_rows == 1075 and churn.unattributed_rows == 0
    assert churn.log_bytes > 0 and churn.artifact_bytes == 0 and churn.lineage_bytes == 0


def test_a_sampled_log_is_scaled_back(project: Path) -> None:
    with PredictionLog(project / ".shipyard" / "predictions", sample_rate=0.25, seed=3) as log:
        predict(log, [(100, 50.0)] * 40, prefix="b")
    with Shipyard.open(project, actor="rui", env={}) as service:
        (churn,) = service.costs("30d").models
    kept = churn.logged_rows
    assert 0 < kept < 4000
    assert churn.predictions == pytest.approx(kept / 0.25)
    assert churn.cpu_seconds == pytest.approx(kept * (50.0 / 100) / 0.25 / 1000)
    # Each kept row stands for four: the estimate lands near the true 2.0 CPU-seconds and 4,000 predictions.
    assert churn.cpu_seconds == pytest.approx(2.0, rel=0.15) and churn.predictions == pytest.approx(4000, rel=0.15)


def test_costs_on_the_command_line(trained_project: Path) -> None:
    result = CliRunner().invoke(app, ["--project", str(trained_project), "costs", "--since", "7d", "--json"])
    assert result.exit_code == 0, result.output
    (churn,) = json.loads(result.stdout)["models"]
    assert churn["predictions"] == 0 and churn["cpu_seconds_per_1000"] is None
    assert churn["storage_bytes"]["artifacts"] > 0 and churn["storage_bytes"]["lineage"] > 0
    bad = CliRunner().invoke(app, ["--project", str(trained_project), "costs", "--since", "soon"])
    assert bad.exit_code != 0 and "not a duration" in bad.stderr and "Traceback" not in bad.output
