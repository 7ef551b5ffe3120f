"""The rollout analysis on a prediction log written by the real log writer."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from shipyard.domain.rollouts import Rollout
from shipyard.predlog import PredictionLog
from shipyard.rollout import analyze, score_psi


def rollout(**checks: float) -> Rollout:
    now = datetime.now(UTC) - timedelta(seconds=5)
    return Rollout(
        id=1,
        model="churn",
        version=2,
        champion=1,
        strategy="canary",
        steps=(50.0, 100.0),
        step_index=0,
        interval_seconds=1.0,
        checks={"min_requests": 100, **checks},
        failure_limit=2,
        failures=0,
        state="running",
        history=(),
        started_by="t",
        started_at=now,
        step_started_at=now,
    )


def write(
    root: Path,
    version: int,
    routing: str,
    scores: np.ndarray,
    *,
    status: int = 200,
    latency: float = 2.0,
    model_ms: float | None = 1.0,
    ago: float = 0.0,
) -> list[str]:
    n = len(scores)
    ids = [f"{routing}-{version}-{ago}-{i}" for i in range(n)]
    with PredictionLog(root) as log:
        log.append(
            model="churn",
            version=version,
            request_ids=ids,
            received_at=[time.time() - ago] * n,
            routing=[routing] * n,
            features={"x": list(range(n))},
            predictions=(scores >= 0.5).astype(int),
            scores=scores,
            latency_ms=[latency] * n,
            status=[status] * n,
            model_ms=None if model_ms is None else [model_ms] * n,
        )
    return ids


def test_psi_matches_the_textbook_formula_and_is_zero_for_equal_samples() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(5000)
    assert score_psi(a, a) == pytest.approx(0.0, abs=1e-12)
    b = np.clip(a + 0.2, 0, 1)
    edges = np.quantile(a, np.linspace(0, 1, 11))
    edges[0], edges[-1] = -np.inf, np.inf
    e = (np.histogram(a, edges)[0] + 0.5) / (len(a) + 5)
    o = (np.histogram(b, edges)[0] + 0.5) / (len(b) + 5)
    assert score_psi(a, b) == pytest.approx(float(np.sum((o - e) * np.log(o / e))), rel=1e-12)


def test_sampling_noise_is_not_drift() -> None:
    from shipyard.rollout import score_psi_excess

    rng = np.random.default_rng(3)
    same = [score_psi_excess(rng.beta(2, 5, 300), rng.beta(2, 5, 100)) for _ in range(200)]
    raw = [score_psi(rng.beta(2, 5, 300), rng.beta(2, 5, 100)) for _ in range(200)]
    assert np.mean(raw) > 0.08 and np.mean(same) < 0.03
    assert score_psi_excess(rng.beta(2, 5, 300), np.clip(rng.beta(2, 5, 100) + 0.2, 0, 1)) > 0.25


def test_waits_for_enough_challenger_traffic(tmp_path: Path) -> None:
    write(tmp_path, 1, "champion", np.full(200, 0.3))
    write(tmp_path, 2, "challenger", np.full(20, 0.3))
    result = analyze(tmp_path, rollout())
    assert result.passed is None and result.challenger_requests == 20


def test_a_similar_challenger_passes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    write(tmp_path, 1, "champion", rng.beta(2, 5, 400))
    write(tmp_path, 2, "challenger", rng.beta(2, 5, 400))
    result = analyze(tmp_path, rollout())
    assert result.passed is True, result.to_dict()


@pytest.mark.parametrize(
    ("challenger", "failing"),
    [
        ({"status": 500}, "error rate increase"),
        ({"latency": 50.0}, "p95 latency factor"),
        ({"model_ms": 8.0}, "p95 model time factor"),
        ({"shift": 0.3}, "score divergence (PSI)"),
    ],
)
def test_each_check_fails_on_its_own(tmp_path: Path, challenger: dict[str, float], failing: str) -> None:
    rng = np.random.default_rng(2)
    write(tmp_path, 1, "champion", rng.beta(2, 5, 400))
    scores = np.clip(rng.beta(2, 5, 400) + challenger.get("shift", 0.0), 0, 1)
    write(tmp_path, 2, "challenger", scores, latency=challenger.get("latency", 2.0), model_ms=challenger.get("model_ms", 1.0))
    if "status" in challenger:  # a fifth of the challenger's requests broke the model
        write(tmp_path, 2, "challenger", np.full(100, np.nan), status=int(challenger["status"]))
    result = analyze(tmp_path, rollout())
    assert result.passed is False
    assert [c.name for c in result.checks if not c.passed] == [failing]


def test_a_challenger_slow_in_its_own_time_fails_even_when_shared_load_hides_it(tmp_path: Path) -> None:
    """A CPU-heavy challenger slows every answer in the process alike; its predict calls' own time still shows it."""
    rng = np.random.default_rng(4)
    write(tmp_path, 1, "champion", rng.beta(2, 5, 400), latency=30.0, model_ms=2.0)
    write(tmp_path, 2, "challenger", rng.beta(2, 5, 400), latency=40.0, model_ms=16.0)
    result = analyze(tmp_path, rollout())
    checks = {c.name: c for c in result.checks}
    assert checks["p95 latency factor"].passed and checks["p95 latency factor"].observed == pytest.approx(4 / 3, abs=1e-3)
    assert not checks["p95 model time factor"].passed and checks["p95 model time factor"].observed == pytest.approx(8.0)
    assert result.passed is False


def test_a_fraction_of_a_millisecond_is_never_a_latency_failure(tmp_path: Path) -> None:
    """3.5 times slower at 0.2 ms is noise, a cold first call, nothing a client notices."""
    rng = np.random.default_rng(8)
    write(tmp_path, 1, "champion", rng.beta(2, 5, 400), latency=0.3, model_ms=0.2)
    write(tmp_path, 2, "challenger", rng.beta(2, 5, 400), latency=1.05, model_ms=0.7)
    result = analyze(tmp_path, rollout())
    checks = {c.name: c for c in result.checks}
    assert checks["p95 model time factor"].observed == pytest.approx(3.5) and checks["p95 model time factor"].passed
    assert checks["p95 latency factor"].observed == pytest.approx(3.5) and checks["p95 latency factor"].passed
    assert result.passed is True and checks["p95 latency factor"].threshold == "≤ 3.0× or under 1 ms slower"


def test_latency_checks_show_both_versions_p95_in_milliseconds(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    write(tmp_path, 1, "champion", rng.beta(2, 5, 400), latency=3.0, model_ms=0.36)
    write(tmp_path, 2, "challenger", rng.beta(2, 5, 400), latency=18.0, model_ms=15.6)
    result = analyze(tmp_path, rollout())
    checks = {c.name: c for c in result.checks}
    latency, model = checks["p95 latency factor"], checks["p95 model time factor"]
    assert (latency.challenger_p95_ms, latency.champion_p95_ms, latency.observed) == (18.0, 3.0, 6.0)
    assert (model.challenger_p95_ms, model.champion_p95_ms) == (15.6, 0.36) and not model.passed
    # the audit events carry the analysis as a dict: the times travel with it
    recorded = {c["name"]: c for c in result.to_dict()["checks"]}
    assert recorded["p95 model time factor"]["challenger_p95_ms"] == 15.6
    assert recorded["error rate increase"]["challenger_p95_ms"] is None


@pytest.mark.parametrize(("limit", "passes"), [(20.0, True), (17.0, False)])
def test_max_latency_ms_judges_the_challengers_p95_latency_instead_of_the_factor(
    tmp_path: Path, limit: float, passes: bool
) -> None:
    """A model without a fast path (15.6 ms of model time against 0.36) passes when it answers within the limit."""
    rng = np.random.default_rng(7)
    write(tmp_path, 1, "champion", rng.beta(2, 5, 400), latency=2.0, model_ms=0.36)
    write(tmp_path, 2, "challenger", rng.beta(2, 5, 400), latency=18.0, model_ms=15.6)
    assert analyze(tmp_path, rollout()).passed is False  # the factor (9×, 43×) fails it by default
    result = analyze(tmp_path, rollout(max_latency_ms=limit))
    checks = {c.name: c for c in result.checks}
    latency, model = checks["p95 latency"], checks["p95 model time"]
    assert latency.passed is passes and model.passed is True  # 15.6 ms of model time is within both limits
    assert latency.threshold == f"challenger p95 ≤ {limit:g} ms (max_latency_ms)"
    assert latency.observed == 9.0 and latency.challenger_p95_ms == 18.0 and latency.champion_p95_ms == 2.0
    assert result.passed is passes


def test_max_latency_ms_holds_model_time_to_the_same_limit(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    write(tmp_path, 1, "champion", rng.beta(2, 5, 400), latency=1.0, model_ms=0.5)
    write(tmp_path, 2, "challenger", rng.beta(2, 5, 400), latency=9.0, model_ms=12.0)  # CPU time across threads
    result = analyze(tmp_path, rollout(max_latency_ms=10.0))
    assert [c.name for c in result.checks if not c.passed] == ["p95 model time"]


def test_a_log_written_without_model_times_is_judged_without_that_check(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    write(tmp_path, 1, "champion", rng.beta(2, 5, 400), model_ms=None)
    write(tmp_path, 2, "challenger", rng.beta(2, 5, 400), model_ms=None)
    result = analyze(tmp_path, rollout())
    assert result.passed is True and "p95 model time factor" not in [c.name for c in result.checks]


def test_champion_traffic_before_the_rollout_is_not_its_baseline(tmp_path: Path) -> None:
    """Serving two versions costs both: the challenger is compared with the champion under the same load."""
    rng = np.random.default_rng(7)
    write(tmp_path, 1, "champion", rng.beta(2, 5, 400), latency=5.0, ago=30.0)  # alone, before the rollout began
    write(tmp_path, 1, "champion", rng.beta(2, 5, 400), latency=30.0)
    write(tmp_path, 2, "challenger", rng.beta(2, 5, 400), latency=30.0)
    result = analyze(tmp_path, rollout())
    assert result.passed is True and result.champion_requests == 400, result.to_dict()


def labels(root: Path, ids: list[str], y: np.ndarray) -> Path:
    import pandas as pd

    from shipyard.labels import ingest

    path = root / "labels.csv"
    pd.DataFrame({"request_id": ids, "label": y}).to_csv(path, index=False)
    ingest(path, model="churn", log_root=root / "log", labels_root=root / "labels", label_column="label")
    return root / "labels"


@pytest.mark.parametrize(("inverted", "passed"), [(False, True), (True, False)])
def test_once_labels_arrive_the_challenger_must_not_rank_significantly_worse(
    tmp_path: Path, inverted: bool, passed: bool
) -> None:
    rng = np.random.default_rng(5)
    y_a, y_b = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    informative = np.clip(0.3 + 0.4 * y_a + rng.normal(0, 0.15, 300), 0, 1)
    a = write(tmp_path / "log", 1, "champion", informative)
    challenger = np.clip(0.3 + 0.4 * (1 - y_b if inverted else y_b) + rng.normal(0, 0.15, 300), 0, 1)
    b = write(tmp_path / "log", 2, "challenger", challenger)
    folder = labels(tmp_path, a + b, np.concatenate([y_a, y_b]))
    without = analyze(tmp_path / "log", rollout(max_divergence=10.0))
    assert "online roc_auc vs champion" not in [c.name for c in without.checks]
    result = analyze(tmp_path / "log", rollout(max_divergence=10.0), folder)
    (online,) = [c for c in result.checks if c.name.startswith("online")]
    assert online.passed is passed and result.passed is passed, online
