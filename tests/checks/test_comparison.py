from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from scipy.stats import binomtest, chi2, norm
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, log_loss, roc_auc_score

from shipyard.checks import comparison
from shipyard.checks.comparison import METRICS, compare, delong_test, mcnemar_test, paired_bootstrap
from shipyard.checks.evaluation import binary_metrics
from shipyard.domain.errors import InvalidSpec

Array = np.ndarray[Any, Any]


def sklearn_metric(metric: str, y: Array, p: Array, sample_weight: Array | None = None) -> float:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    predicted = (p >= 0.5).astype(int)
    if metric == "roc_auc":
        return float(roc_auc_score(y, p, sample_weight=sample_weight))
    if metric == "accuracy":
        return float(accuracy_score(y, predicted, sample_weight=sample_weight))
    if metric == "f1":
        return float(f1_score(y, predicted, zero_division=0, sample_weight=sample_weight))
    if metric == "log_loss":
        return float(log_loss(y, p, labels=[0, 1], sample_weight=sample_weight))
    return float(brier_score_loss(y, p, sample_weight=sample_weight))


def holdout(rows: int, seed: int, *, gap: float = 0.1, decimals: int = 2) -> tuple[Array, Array, Array]:
    """Labels and two models' probabilities; rounding makes ties, and some scores hit 0 and 1 exactly."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    signal = y - 0.5
    candidate = np.clip(0.5 + (0.3 + gap) * signal + rng.normal(0, 0.3, rows), 0, 1).round(decimals)
    champion = np.clip(0.5 + 0.3 * signal + rng.normal(0, 0.3, rows), 0, 1).round(decimals)
    return y, candidate, champion


def all_weights(y: Array, resamples: int, seed: int) -> Array:
    return np.concatenate(list(comparison._bootstrap_weights(y, resamples, seed)))


@pytest.mark.parametrize("metric", METRICS)
def test_full_sample_values_equal_scikit_learn(metric: str) -> None:
    y, candidate, champion = holdout(500, seed=1)
    assert {0.0, 1.0} <= set(candidate.tolist())
    result = paired_bootstrap(y, candidate, champion, metric=metric, resamples=100)
    assert result.candidate == pytest.approx(sklearn_metric(metric, y, candidate), rel=1e-12, abs=1e-12)
    assert result.champion == pytest.approx(sklearn_metric(metric, y, champion), rel=1e-12, abs=1e-12)
    assert result.candidate == pytest.approx(binary_metrics(y, candidate)[metric], rel=1e-12, abs=1e-12)
    assert result.difference == result.candidate - result.champion


@pytest.mark.parametrize(("metric", "sign"), [("roc_auc", 1), ("accuracy", 1), ("f1", 1), ("log_loss", -1), ("brier", -1)])
def test_improvement_is_positive_when_the_candidate_is_better(metric: str, sign: int) -> None:
    y, candidate, champion = holdout(2000, seed=2, gap=0.3)
    result = paired_bootstrap(y, candidate, champion, metric=metric, resamples=500)
    assert result.improvement == sign * result.difference
    assert result.improvement > 0
    assert 0 < result.ci_low <= result.improvement <= result.ci_high


@pytest.mark.parametrize("metric", METRICS)
def test_vectorized_resamples_equal_a_naive_loop(metric: str) -> None:
    y, candidate, _ = holdout(60, seed=3)
    weights = all_weights(y, 200, seed=4)
    assert weights.shape == (200, 60)
    assert (weights.sum(axis=1) == 60).all()
    rows = np.arange(len(y))
    fast = comparison._metric_values(metric, y, np.clip(candidate, 1e-15, 1 - 1e-15), weights)
    for counts, value in zip(weights, fast, strict=True):
        drawn = np.repeat(rows, counts.astype(int))
        assert value == pytest.approx(sklearn_metric(metric, y[drawn], candidate[drawn]), rel=1e-12, abs=1e-12)
        assert value == pytest.approx(sklearn_metric(metric, y, candidate, sample_weight=counts), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("metric", METRICS)
def test_interval_equals_percentiles_of_a_naive_loop(metric: str) -> None:
    y, candidate, champion = holdout(80, seed=5)
    result = paired_bootstrap(y, candidate, champion, metric=metric, resamples=300, seed=6, confidence=0.9)
    sign = -1 if metric in ("log_loss", "brier") else 1
    improvements = []
    for counts in all_weights(y, 300, seed=6):
        drawn = np.repeat(np.arange(len(y)), counts.astype(int))
        difference = sklearn_metric(metric, y[drawn], candidate[drawn]) - sklearn_metric(metric, y[drawn], champion[drawn])
        improvements.append(sign * difference)
    low, high = np.quantile(improvements, [0.05, 0.95])
    assert result.ci_low == pytest.approx(low, rel=1e-9, abs=1e-12)
    assert result.ci_high == pytest.approx(high, rel=1e-9, abs=1e-12)


def test_resamples_missing_a_class_are_redrawn(monkeypatch: pytest.MonkeyPatch) -> None:
    # One positive in twelve rows: about a third of plain resamples would miss it.
    y = np.array([1] + [0] * 11)
    monkeypatch.setattr(comparison, "_BLOCK_CELLS", 12 * 7)
    blocks = list(comparison._bootstrap_weights(y, 500, seed=0))
    assert len(blocks) > 1
    weights = np.concatenate(blocks)
    assert weights.shape == (500, 12)
    assert (weights[:, 0] > 0).all()
    assert (weights.sum(axis=1) == 12).all()
    scores = np.linspace(0.05, 0.95, 12)
    result = paired_bootstrap(y, scores, scores[::-1], metric="roc_auc", resamples=500)
    assert math.isfinite(result.ci_low)
    assert math.isfinite(result.ci_high)


@pytest.mark.parametrize("metric", METRICS)
def test_same_seed_same_interval_other_seed_other_interval(metric: str) -> None:
    y, candidate, champion = holdout(300, seed=7)
    first = paired_bootstrap(y, candidate, champion, metric=metric, resamples=200, seed=11)
    again = paired_bootstrap(y, candidate, champion, metric=metric, resamples=200, seed=11)
    other = paired_bootstrap(y, candidate, champion, metric=metric, resamples=200, seed=12)
    assert first == again
    assert (first.ci_low, first.ci_high) != (other.ci_low, other.ci_high)
    assert other.seed == 12


@pytest.mark.parametrize("metric", METRICS)
def test_identical_models_give_a_zero_interval(metric: str) -> None:
    y, candidate, _ = holdout(300, seed=8)
    result = paired_bootstrap(y, candidate, candidate.copy(), metric=metric, resamples=200)
    assert (result.difference, result.improvement, result.ci_low, result.ci_high) == (0, 0, 0, 0)


def test_to_dict_holds_plain_json_values() -> None:
    y, candidate, champion = holdout(200, seed=9)
    data = paired_bootstrap(y, candidate, champion, metric="f1", resamples=100, seed=3).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert {type(value) for key, value in data.items() if key != "metric"} <= {float, int}
    assert (data["resamples"], data["seed"], data["confidence"]) == (100, 3, 0.95)


def delong_reference(y: Array, first: Array, second: Array) -> tuple[float, float, float]:
    """DeLong's test from its definition: O(n²) placements and their covariance matrix."""
    positive, negative = y == 1, y == 0
    v10, v01 = [], []
    for scores in (first, second):
        x, z = scores[positive][:, None], scores[negative][None, :]
        psi = (x > z) + 0.5 * (x == z)
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    aucs = np.array([v.mean() for v in v10])
    s = np.cov(np.array(v10)) / positive.sum() + np.cov(np.array(v01)) / negative.sum()
    contrast = np.array([1.0, -1.0])
    variance = float(contrast @ s @ contrast)
    return float(aucs[0]), float(aucs[1]), variance


@pytest.mark.parametrize(("rows", "seed", "decimals"), [(40, 0, 1), (301, 1, 2), (1000, 2, 1)])
def test_delong_matches_the_quadratic_definition(rows: int, seed: int, decimals: int) -> None:
    y, candidate, champion = holdout(rows, seed=seed, decimals=decimals)
    auc_a, auc_b, variance = delong_reference(y, candidate, champion)
    result = delong_test(y, candidate, champion)
    assert result.name == "delong"
    assert result.details["auc_candidate"] == pytest.approx(auc_a, abs=1e-9)
    assert result.details["auc_champion"] == pytest.approx(auc_b, abs=1e-9)
    assert result.details["auc_candidate"] == pytest.approx(roc_auc_score(y, candidate), abs=1e-12)
    assert result.details["auc_difference"] == pytest.approx(auc_a - auc_b, abs=1e-9)
    assert result.details["variance"] == pytest.approx(variance, abs=1e-9)
    z = (auc_a - auc_b) / math.sqrt(variance)
    assert result.statistic == pytest.approx(z, rel=1e-9)
    assert result.p_value == pytest.approx(2 * norm.cdf(-abs(z)), rel=1e-9)


def test_delong_on_identical_rankings_is_zero_with_p_one() -> None:
    y, candidate, _ = holdout(200, seed=3)
    for champion in (candidate.copy(), candidate**2):
        result = delong_test(y, candidate, champion)
        assert (result.statistic, result.p_value) == (0.0, 1.0)
        assert result.details["variance"] == 0.0


def test_delong_without_any_variance_but_a_difference_rejects() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    result = delong_test(y, y * 0.8 + 0.1, np.full(6, 0.5))
    assert result.p_value == 0.0
    assert result.statistic == math.inf


def predictions_with(b: int, c: int, both_right: int = 30, both_wrong: int = 10) -> tuple[Array, Array, Array]:
    """Labels and predictions with b rows only the candidate gets right and c only the champion."""
    rng = np.random.default_rng(b * 1000 + c)
    candidate_right = np.array([True] * b + [False] * c + [True] * both_right + [False] * both_wrong)
    champion_right = np.array([False] * b + [True] * c + [True] * both_right + [False] * both_wrong)
    y = rng.integers(0, 2, len(candidate_right))
    return y, np.where(candidate_right, y, 1 - y), np.where(champion_right, y, 1 - y)


@pytest.mark.parametrize(("b", "c"), [(7, 2), (0, 5), (12, 12), (20, 4)])
def test_mcnemar_is_exact_for_few_discordant_rows(b: int, c: int) -> None:
    result = mcnemar_test(*predictions_with(b, c))
    assert result.details == {"b": b, "c": c, "exact": 1.0}
    assert result.p_value == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-12)
    assert result.statistic == min(b, c)


@pytest.mark.parametrize(("b", "c"), [(15, 10), (40, 20), (3, 60), (50, 50)])
def test_mcnemar_uses_corrected_chi_square_for_many_discordant_rows(b: int, c: int) -> None:
    result = mcnemar_test(*predictions_with(b, c))
    statistic = (abs(b - c) - 1) ** 2 / (b + c)
    assert result.details == {"b": b, "c": c, "exact": 0.0}
    assert result.statistic == pytest.approx(statistic, rel=1e-12)
    assert result.p_value == pytest.approx(chi2.sf(statistic, 1), rel=1e-12)


def test_mcnemar_without_discordant_rows() -> None:
    y, candidate, _ = predictions_with(0, 0)
    result = mcnemar_test(y, candidate, candidate)
    assert (result.statistic, result.p_value) == (0.0, 1.0)
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()


@pytest.mark.parametrize(("metric", "extra"), [("roc_auc", "delong"), ("accuracy", "mcnemar"), ("f1", None), ("log_loss", None)])
def test_compare_adds_the_test_that_fits_the_metric(metric: str, extra: str | None) -> None:
    y, candidate, champion = holdout(400, seed=10)
    result = compare(y, candidate, champion, metric=metric, resamples=100, seed=1)
    assert json.loads(json.dumps(result)) == result
    expected = {"metric", "bootstrap", "rows"} | ({extra} if extra else set())
    assert set(result) == expected
    assert result["rows"] == 400
    assert result["bootstrap"] == paired_bootstrap(y, candidate, champion, metric=metric, resamples=100, seed=1).to_dict()
    if extra == "delong":
        assert result["delong"] == delong_test(y, candidate, champion).to_dict()
    if extra == "mcnemar":
        assert result["mcnemar"] == mcnemar_test(y, candidate >= 0.5, champion >= 0.5).to_dict()


GOOD_Y = [0, 1, 0, 1, 1, 0, 0, 1, 0, 1]
GOOD_P = [0.1, 0.9, 0.2, 0.7, 0.6, 0.4, 0.3, 0.8, 0.5, 0.55]


@pytest.mark.parametrize(
    ("y", "candidate", "options", "message"),
    [
        (GOOD_Y, GOOD_P, {"resamples": 99}, "resamples must be an integer of at least 100, got 99"),
        (GOOD_Y, GOOD_P, {"metric": "auc"}, "unknown metric 'auc'; expected one of: roc_auc, accuracy, f1, log_loss, brier"),
        (GOOD_Y, GOOD_P[:-1], {}, "candidate_scores has 9 rows but y_true has 10"),
        ([*GOOD_Y[:-1], 2], GOOD_P, {}, r"y_true must hold only 0 and 1, found \[2\]"),
        (["no", "yes"] * 5, GOOD_P, {}, "y_true must hold 0/1 labels"),
        ([1] * 10, GOOD_P, {}, "y_true must contain both classes; found only 1"),
        (GOOD_Y, [*GOOD_P[:-1], 1.5], {}, r"candidate_scores must be probabilities in \[0, 1\], found \[1.5\]"),
        (GOOD_Y, [*GOOD_P[:-1], math.nan], {}, "candidate_scores contains 1 NaN or infinite values"),
        (GOOD_Y, GOOD_P, {"confidence": 1.0}, "confidence must be strictly between 0 and 1, got 1.0"),
        (GOOD_Y, GOOD_P, {"seed": -1}, "seed must be a non-negative integer, got -1"),
        ([GOOD_Y], [GOOD_P], {}, r"y_true must be a non-empty one-dimensional array, got shape \(1, 10\)"),
    ],
)
def test_bad_bootstrap_inputs_are_refused(y: list[Any], candidate: list[Any], options: dict[str, Any], message: str) -> None:
    options = {"metric": "roc_auc", **options}
    with pytest.raises(InvalidSpec, match=message):
        paired_bootstrap(y, candidate, GOOD_P, **options)
    with pytest.raises(InvalidSpec, match=message):
        compare(y, candidate, GOOD_P, **options)


def test_bad_test_inputs_are_refused() -> None:
    with pytest.raises(InvalidSpec, match="at least 2 rows of each class; got 1 positive and 9 negative"):
        delong_test([1] + [0] * 9, GOOD_P, GOOD_P)
    with pytest.raises(InvalidSpec, match="champion_scores has 3 rows but y_true has 10"):
        delong_test(GOOD_Y, GOOD_P, GOOD_P[:3])
    with pytest.raises(InvalidSpec, match=r"candidate_pred must hold only 0 and 1, found \[0.1\]"):
        mcnemar_test(GOOD_Y, GOOD_P[:1] * 10, GOOD_Y)
