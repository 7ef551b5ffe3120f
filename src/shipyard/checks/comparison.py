"""Champion/challenger statistics: paired bootstrap, DeLong's test and McNemar's test.

A candidate and the production model are scored on the same holdout rows, so
every comparison here is paired: the two models see the same resampled rows.
Metrics follow `shipyard.checks.evaluation.binary_metrics`: positive-class
probabilities clipped to [1e-15, 1 - 1e-15], labels 0/1, threshold 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shipyard.checks.evaluation import THRESHOLD
from shipyard.domain.errors import InvalidSpec
from shipyard.domain.tasks import LOWER_IS_BETTER

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    from numpy.typing import ArrayLike, NDArray

METRICS = ("roc_auc", "accuracy", "f1", "log_loss", "brier")
MIN_RESAMPLES = 100
CLIP = 1e-15
# Below this many discordant pairs the chi-square approximation is poor.
MCNEMAR_EXACT_BELOW = 25
# A resample lacks a class with probability (1 - π)^n + π^n; this many redraws
# can only fail on absurdly small holdouts, which are then refused.
_MAX_REDRAWS = 1000
# Resamples are drawn in blocks of about this many (resample, row) cells to bound memory.
_BLOCK_CELLS = 2**22


@dataclass(frozen=True, slots=True, kw_only=True)
class BootstrapResult:
    """A metric on both models and a percentile interval for the candidate's improvement."""

    metric: str
    candidate: float
    champion: float
    difference: float
    improvement: float
    ci_low: float
    ci_high: float
    confidence: float
    resamples: int
    seed: int

    def to_dict(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "candidate": float(self.candidate),
            "champion": float(self.champion),
            "difference": float(self.difference),
            "improvement": float(self.improvement),
            "ci_low": float(self.ci_low),
            "ci_high": float(self.ci_high),
            "confidence": float(self.confidence),
            "resamples": int(self.resamples),
            "seed": int(self.seed),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class HypothesisTest:
    """A hypothesis test's statistic, two-sided p-value and the numbers behind them."""

    name: str
    statistic: float
    p_value: float
    details: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "statistic": float(self.statistic),
            "p_value": float(self.p_value),
            "details": {key: float(value) for key, value in self.details.items()},
        }


def paired_bootstrap(
    y_true: ArrayLike,
    candidate_scores: ArrayLike,
    champion_scores: ArrayLike,
    *,
    metric: str,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> BootstrapResult:
    """Paired bootstrap of `metric` for candidate versus champion.

    Each resample draws the same rows (with replacement) for both models. A
    resample in which one class is absent is redrawn, for every metric, so that
    AUC is always defined and all metrics bootstrap the same distribution. The
    interval is the percentile interval of the improvement (positive: the
    candidate is better).
    """
    import numpy as np

    _check_metric(metric)
    _check_bootstrap_settings(resamples, seed, confidence)
    y = _labels(y_true, need_both=True)
    candidate = _probabilities("candidate_scores", candidate_scores, len(y))
    champion = _probabilities("champion_scores", champion_scores, len(y))

    full = np.ones((1, len(y)))
    candidate_value = float(_metric_values(metric, y, candidate, full)[0])
    champion_value = float(_metric_values(metric, y, champion, full)[0])
    spread = np.concatenate(
        [
            _improvements(metric, _metric_values(metric, y, candidate, weights), _metric_values(metric, y, champion, weights))
            for weights in _bootstrap_weights(y, resamples, seed)
        ]
    )
    alpha = 1.0 - confidence
    low, high = np.quantile(spread, [alpha / 2, 1 - alpha / 2])
    return BootstrapResult(
        metric=metric,
        candidate=candidate_value,
        champion=champion_value,
        difference=candidate_value - champion_value,
        improvement=float(_improvements(metric, np.array([candidate_value]), np.array([champion_value]))[0]),
        ci_low=float(low),
        ci_high=float(high),
        confidence=float(confidence),
        resamples=resamples,
        seed=seed,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Interval:
    """A metric and its bootstrap percentile interval."""

    metric: str
    value: float
    ci_low: float
    ci_high: float
    confidence: float
    rows: int

    def to_dict(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "value": float(self.value),
            "ci_low": float(self.ci_low),
            "ci_high": float(self.ci_high),
            "confidence": float(self.confidence),
            "rows": int(self.rows),
        }


def bootstrap_interval(
    y_true: ArrayLike, scores: ArrayLike, *, metric: str, resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> Interval:
    """`metric` on one set of labelled scores, with a percentile bootstrap interval (the same resampling as above)."""
    import numpy as np

    _check_metric(metric)
    _check_bootstrap_settings(resamples, seed, confidence)
    y = _labels(y_true, need_both=True)
    p = _probabilities("scores", scores, len(y))
    value = float(_metric_values(metric, y, p, np.ones((1, len(y))))[0])
    spread = np.concatenate([_metric_values(metric, y, p, weights) for weights in _bootstrap_weights(y, resamples, seed)])
    alpha = 1.0 - confidence
    low, high = np.quantile(spread, [alpha / 2, 1 - alpha / 2])
    return Interval(metric=metric, value=value, ci_low=float(low), ci_high=float(high), confidence=confidence, rows=len(y))


# Labelled answers (of both classes) a live metric needs before it is judged, per side: the monitor's
# live metric and a rollout's online comparison both wait for this many.
MIN_LABELLED = 30


def unpaired_difference(
    y_a: ArrayLike, scores_a: ArrayLike, y_b: ArrayLike, scores_b: ArrayLike, *, metric: str, resamples: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """`metric` of b minus a, with a 95% percentile interval from independent bootstraps (different requests, not paired)."""
    import numpy as np

    _check_metric(metric)
    ya, yb = _labels(y_a, need_both=True, name="y_a"), _labels(y_b, need_both=True, name="y_b")
    pa, pb = _probabilities("scores_a", scores_a, len(ya)), _probabilities("scores_b", scores_b, len(yb))
    a = np.concatenate([_metric_values(metric, ya, pa, w) for w in _bootstrap_weights(ya, resamples, seed)])
    b = np.concatenate([_metric_values(metric, yb, pb, w) for w in _bootstrap_weights(yb, resamples, seed + 1)])
    full_a = float(_metric_values(metric, ya, pa, np.ones((1, len(ya))))[0])
    full_b = float(_metric_values(metric, yb, pb, np.ones((1, len(yb))))[0])
    low, high = np.quantile(_improvements(metric, b, a), [0.025, 0.975])
    return float(_improvements(metric, np.array([full_b]), np.array([full_a]))[0]), float(low), float(high)


def delong_test(y_true: ArrayLike, candidate_scores: ArrayLike, champion_scores: ArrayLike) -> HypothesisTest:
    """DeLong's test that two correlated ROC AUCs are equal (two-sided).

    Uses the O(n log n) midrank algorithm of Sun & Xu (2014) for the structural
    components of DeLong, DeLong & Clarke-Pearson (1988).
    """
    import numpy as np
    from scipy.stats import norm

    y = _labels(y_true, need_both=True)
    candidate = _finite_scores("candidate_scores", candidate_scores, len(y))
    champion = _finite_scores("champion_scores", champion_scores, len(y))
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    if min(positives, negatives) < 2:
        raise InvalidSpec(
            f"DeLong's test needs at least 2 rows of each class; got {positives} positive and {negatives} negative",
            hint="Use a larger holdout.",
        )
    is_positive = y == 1
    auc_a, v10_a, v01_a = _structural_components(candidate[is_positive], candidate[~is_positive])
    auc_b, v10_b, v01_b = _structural_components(champion[is_positive], champion[~is_positive])
    difference = auc_a - auc_b
    # Var(AUC_a - AUC_b) = L S L' with L = (1, -1); the components of the
    # difference give it directly, and exactly 0 when the rankings agree.
    variance = float(np.var(v10_a - v10_b, ddof=1) / positives + np.var(v01_a - v01_b, ddof=1) / negatives)
    if variance > 0:
        statistic = difference / math.sqrt(variance)
        p_value = float(2 * norm.sf(abs(statistic)))
    elif difference == 0:
        statistic, p_value = 0.0, 1.0
    else:
        # No sampling variability at all (e.g. a constant champion against a perfect candidate).
        statistic, p_value = math.copysign(math.inf, difference), 0.0
    return HypothesisTest(
        name="delong",
        statistic=float(statistic),
        p_value=p_value,
        details={"auc_candidate": auc_a, "auc_champion": auc_b, "auc_difference": difference, "variance": variance},
    )


def mcnemar_test(y_true: ArrayLike, candidate_pred: ArrayLike, champion_pred: ArrayLike) -> HypothesisTest:
    """McNemar's test on predicted 0/1 labels (two-sided).

    Exact binomial test when there are fewer than 25 discordant rows (the
    statistic is then min(b, c)), otherwise chi-square with continuity correction.
    """
    import numpy as np
    from scipy.stats import binomtest, chi2

    y = _labels(y_true, need_both=False)
    candidate = _labels(candidate_pred, need_both=False, name="candidate_pred", rows=len(y))
    champion = _labels(champion_pred, need_both=False, name="champion_pred", rows=len(y))
    candidate_right, champion_right = candidate == y, champion == y
    b = int(np.count_nonzero(candidate_right & ~champion_right))
    c = int(np.count_nonzero(~candidate_right & champion_right))
    exact = b + c < MCNEMAR_EXACT_BELOW
    if b + c == 0:
        statistic, p_value = 0.0, 1.0
    elif exact:
        statistic, p_value = float(min(b, c)), float(binomtest(b, b + c, 0.5).pvalue)
    else:
        statistic = (abs(b - c) - 1) ** 2 / (b + c)
        p_value = float(chi2.sf(statistic, 1))
    return HypothesisTest(
        name="mcnemar", statistic=statistic, p_value=p_value, details={"b": b, "c": c, "exact": 1.0 if exact else 0.0}
    )


def compare(
    y_true: ArrayLike,
    candidate_scores: ArrayLike,
    champion_scores: ArrayLike,
    *,
    metric: str,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, object]:
    """Bootstrap of `metric`, plus DeLong's test for roc_auc or McNemar's test for accuracy."""
    import numpy as np

    bootstrap = paired_bootstrap(
        y_true, candidate_scores, champion_scores, metric=metric, resamples=resamples, seed=seed, confidence=confidence
    )
    y = np.asarray(y_true)
    result: dict[str, object] = {"metric": metric, "bootstrap": bootstrap.to_dict(), "rows": len(y)}
    # Clipping can merge extreme scores into ties; clip as the bootstrap does so the AUCs agree.
    if metric == "roc_auc":
        result["delong"] = delong_test(y, _clipped(candidate_scores), _clipped(champion_scores)).to_dict()
    elif metric == "accuracy":
        result["mcnemar"] = mcnemar_test(
            y, _clipped(candidate_scores) >= THRESHOLD, _clipped(champion_scores) >= THRESHOLD
        ).to_dict()
    return result


def _metric_values(
    metric: str, y: NDArray[np.int64], p: NDArray[np.float64], weights: NDArray[np.float64]
) -> NDArray[np.float64]:
    """`metric` once per row of `weights` (one weight per holdout row), as sample weights."""
    import numpy as np

    if metric == "roc_auc":
        return _weighted_auc(y, p, weights)
    positive = y.astype(float)
    if metric in ("accuracy", "f1"):
        predicted = (p >= THRESHOLD).astype(float)
        columns = [predicted * positive, predicted * (1 - positive), (1 - predicted) * positive, np.ones_like(p)]
        tp, fp, fn, total = (weights @ np.column_stack(columns)).T
        if metric == "accuracy":
            result: NDArray[np.float64] = (total - fp - fn) / total
            return result
        denominator = 2 * tp + fp + fn
        f1: NDArray[np.float64] = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
        return f1
    per_row = -(positive * np.log(p) + (1 - positive) * np.log(1 - p)) if metric == "log_loss" else (positive - p) ** 2
    sums, total = (weights @ np.column_stack([per_row, np.ones_like(p)])).T
    mean: NDArray[np.float64] = sums / total
    return mean


def _weighted_auc(y: NDArray[np.int64], p: NDArray[np.float64], weights: NDArray[np.float64]) -> NDArray[np.float64]:
    """Weighted Mann-Whitney AUC per row of `weights`, ties counted as one half.

    Each positive contributes its weight times the negative weight strictly
    below its score plus half the negative weight at its score; with integer
    weights every sum is exact, so only the final division rounds.
    """
    import numpy as np

    positive_rows = np.flatnonzero(y == 1)
    negative_rows = np.flatnonzero(y == 0)
    negative_rows = negative_rows[np.argsort(p[negative_rows], kind="stable")]
    negative_scores = p[negative_rows]
    # Column 0 is "no negatives yet", so an index from searchsorted needs no -1.
    cumulative = np.zeros((weights.shape[0], len(negative_rows) + 1))
    np.cumsum(weights[:, negative_rows], axis=1, out=cumulative[:, 1:])
    positive_scores = p[positive_rows]
    below = cumulative[:, np.searchsorted(negative_scores, positive_scores, side="left")]
    at_or_below = cumulative[:, np.searchsorted(negative_scores, positive_scores, side="right")]
    positive_weights = weights[:, positive_rows]
    pairs = np.einsum("ij,ij->i", positive_weights, below + at_or_below) / 2
    result: NDArray[np.float64] = pairs / (positive_weights.sum(axis=1) * cumulative[:, -1])
    return result


def _bootstrap_weights(y: NDArray[np.int64], resamples: int, seed: int) -> Iterator[NDArray[np.float64]]:
    """How often each row is drawn, in blocks of resamples of shape (block, rows).

    Rows are drawn uniformly with replacement; resamples missing a class are
    redrawn. Blocks bound memory on large holdouts.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = len(y)
    positive = y.astype(np.float64)
    block = max(1, _BLOCK_CELLS // rows)
    for start in range(0, resamples, block):
        counts = _draw_counts(rng, min(block, resamples - start), rows)
        missing = np.flatnonzero(np.isin(counts @ positive, (0, rows)))
        for _ in range(_MAX_REDRAWS):
            if len(missing) == 0:
                break
            counts[missing] = _draw_counts(rng, len(missing), rows)
            missing = missing[np.isin(counts[missing] @ positive, (0, rows))]
        else:
            raise InvalidSpec(
                f"could not draw bootstrap resamples containing both classes from {rows} rows with {int(y.sum())} positive",
                hint="Use a larger holdout with more rows of the rarer class.",
            )
        yield counts


def _draw_counts(rng: np.random.Generator, resamples: int, rows: int) -> NDArray[np.float64]:
    import numpy as np

    dtype = np.int32 if resamples * rows < 2**31 else np.int64
    draws = rng.integers(0, rows, size=(resamples, rows), dtype=dtype)
    # One bincount for all resamples: shift each resample's row ids into a block of its own.
    np.add(draws, (np.arange(resamples) * rows)[:, None], out=draws, casting="same_kind")
    counts: NDArray[np.float64] = (
        np.bincount(draws.ravel(), minlength=resamples * rows).reshape(resamples, rows).astype(np.float64)
    )
    return counts


def _improvements(metric: str, candidate: NDArray[np.float64], champion: NDArray[np.float64]) -> NDArray[np.float64]:
    result: NDArray[np.float64] = champion - candidate if metric in LOWER_IS_BETTER else candidate - champion
    return result


def _structural_components(
    positive_scores: NDArray[np.float64], negative_scores: NDArray[np.float64]
) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """AUC and DeLong's placements V10 (one per positive) and V01 (one per negative), from midranks."""
    import numpy as np
    from scipy.stats import rankdata

    m, n = len(positive_scores), len(negative_scores)
    combined = rankdata(np.concatenate([positive_scores, negative_scores]))
    v10 = (combined[:m] - rankdata(positive_scores)) / n
    v01 = 1.0 - (combined[m:] - rankdata(negative_scores)) / m
    return float(v10.mean()), v10, v01


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise InvalidSpec(f"unknown metric {metric!r}; expected one of: {', '.join(METRICS)}")


def _check_bootstrap_settings(resamples: int, seed: int, confidence: float) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < MIN_RESAMPLES:
        raise InvalidSpec(
            f"resamples must be an integer of at least {MIN_RESAMPLES}, got {resamples!r}",
            hint="Promotion gates should use 1000 or more.",
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidSpec(f"seed must be a non-negative integer, got {seed!r}")
    if not 0 < confidence < 1:
        raise InvalidSpec(f"confidence must be strictly between 0 and 1, got {confidence!r}", hint="For example 0.95.")


def _labels(values: ArrayLike, *, need_both: bool, name: str = "y_true", rows: int | None = None) -> NDArray[np.int64]:
    """0/1 labels as integers, one-dimensional and (when `rows` is given) of that length."""
    import numpy as np

    array = _vector(name, values, rows)
    if array.dtype.kind not in "biuf":
        raise InvalidSpec(f"{name} must hold 0/1 labels, got values of type {array.dtype}")
    unexpected = np.unique(array[(array != 0) & (array != 1)])
    if len(unexpected):
        raise InvalidSpec(f"{name} must hold only 0 and 1, found {unexpected[:5].tolist()}")
    labels = array.astype(np.int64)
    if need_both and labels.min() == labels.max():
        raise InvalidSpec(
            f"{name} must contain both classes; found only {int(labels[0])}",
            hint="A holdout with a single class cannot compare ranking or calibration.",
        )
    return labels


def _finite_scores(name: str, values: ArrayLike, rows: int) -> NDArray[np.float64]:
    import numpy as np

    array = _vector(name, values, rows)
    if array.dtype.kind not in "biuf":
        raise InvalidSpec(f"{name} must be numeric, got values of type {array.dtype}")
    scores = array.astype(np.float64)
    if not np.isfinite(scores).all():
        raise InvalidSpec(f"{name} contains {int(np.count_nonzero(~np.isfinite(scores)))} NaN or infinite values")
    return scores


def _probabilities(name: str, values: ArrayLike, rows: int) -> NDArray[np.float64]:
    """Positive-class probabilities, clipped as `binary_metrics` clips them."""
    import numpy as np

    scores = _finite_scores(name, values, rows)
    outside = scores[(scores < 0) | (scores > 1)]
    if len(outside):
        raise InvalidSpec(
            f"{name} must be probabilities in [0, 1], found {outside[:5].tolist()}",
            hint="Pass predict_proba(...)[:, 1], not a decision function.",
        )
    return np.clip(scores, CLIP, 1 - CLIP)


def _clipped(values: ArrayLike) -> NDArray[np.float64]:
    import numpy as np

    return np.clip(np.asarray(values, dtype=np.float64), CLIP, 1 - CLIP)


def _vector(name: str, values: ArrayLike, rows: int | None) -> NDArray[np.generic]:
    import numpy as np

    array = np.asarray(values)
    if array.ndim != 1 or len(array) == 0:
        raise InvalidSpec(f"{name} must be a non-empty one-dimensional array, got shape {array.shape}")
    if rows is not None and len(array) != rows:
        raise InvalidSpec(f"{name} has {len(array)} rows but y_true has {rows}; score both models on the same holdout rows")
    return array
