"""Holdout metrics for regression and multiclass models, and their paired bootstrap against a champion.

Every metric is computed from sample weights, so one function gives the holdout value (all weights 1) and
each bootstrap resample (weights = how often a row was drawn). Regression outputs are predictions; multiclass
outputs are class-probability matrices whose columns follow ``classes`` and labels are column indices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import InvalidSpec
from shipyard.domain.tasks import LOWER_IS_BETTER, METRICS_BY_TASK

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

CLIP = 1e-15


def _check(task: str, metric: str) -> None:
    if metric not in METRICS_BY_TASK[task]:
        raise InvalidSpec(
            f"metric {metric!r} does not apply to a {task} model; expected one of {', '.join(METRICS_BY_TASK[task])}"
        )


def metric_values(task: str, metric: str, y: Any, output: Any, weights: Any) -> NDArray[np.float64]:
    """``metric`` once per row of ``weights`` (resamples × rows)."""
    import numpy as np

    _check(task, metric)
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    total = w.sum(axis=1)
    if task == "regression":
        truth, predicted = np.asarray(y, dtype=float), np.asarray(output, dtype=float)
        error = predicted - truth
        if metric == "rmse":
            result: NDArray[np.float64] = np.sqrt(w @ error**2 / total)
        elif metric == "mae":
            result = w @ np.abs(error) / total
        elif metric == "mape":
            result = w @ np.abs(error / truth) / total
        else:  # r2, about each resample's own weighted mean
            mean = (w @ truth) / total
            spread = w @ truth**2 / total - mean**2
            result = 1.0 - (w @ error**2 / total) / np.where(spread > 0, spread, np.nan)
        return result
    labels = np.asarray(y, dtype=int)
    proba = np.asarray(output, dtype=float)
    predicted = proba.argmax(axis=1)
    if metric == "accuracy":
        result = w @ (predicted == labels).astype(float) / total
        return result
    if metric == "log_loss":
        picked = np.clip(proba[np.arange(len(labels)), labels], CLIP, 1.0)
        result = w @ -np.log(picked) / total
        return result
    k = proba.shape[1]
    truth_1h = np.eye(k)[labels]
    pred_1h = np.eye(k)[predicted]
    tp = w @ (truth_1h * pred_1h)
    support = w @ truth_1h
    called = w @ pred_1h
    denominator = support + called
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    if metric == "f1_weighted":
        result = (f1 * support).sum(axis=1) / total
        return result
    present = denominator > 0  # as scikit-learn: the classes among the labels or the predictions
    result = (f1 * present).sum(axis=1) / present.sum(axis=1)
    return result


def regression_metrics(y: Any, predicted: Any) -> dict[str, float]:
    """rmse, mae, r2, and mape when no target is 0 (where it is undefined)."""
    import numpy as np

    truth = np.asarray(y, dtype=float)
    ones = np.ones((1, len(truth)))
    names = [m for m in METRICS_BY_TASK["regression"] if m != "mape" or bool(np.all(truth != 0))]
    if len(truth) < 2:
        names = [m for m in names if m != "r2"]
    return {m: float(metric_values("regression", m, truth, predicted, ones)[0]) for m in names}


def multiclass_metrics(labels: Any, proba: Any) -> dict[str, float]:
    """accuracy, f1_macro, f1_weighted and log_loss; labels are column indices of ``proba``."""
    import numpy as np

    ones = np.ones((1, len(np.asarray(labels))))
    return {m: float(metric_values("multiclass", m, labels, proba, ones)[0]) for m in METRICS_BY_TASK["multiclass"]}


def per_class_recall(labels: Any, proba: Any, classes: list[Any]) -> dict[str, float | None]:
    import numpy as np

    y = np.asarray(labels, dtype=int)
    predicted = np.asarray(proba).argmax(axis=1)
    out: dict[str, float | None] = {}
    for index, name in enumerate(classes):
        members = y == index
        out[str(name)] = float((predicted[members] == index).mean()) if members.any() else None
    return out


def paired_bootstrap(
    task: str, metric: str, y: Any, candidate: Any, champion: Any, *, resamples: int, seed: int, confidence: float
) -> dict[str, Any]:
    """The candidate's improvement on ``metric`` over the champion, with a percentile interval (same rows for both)."""
    import numpy as np

    from shipyard.checks.comparison import _BLOCK_CELLS, _check_bootstrap_settings, _draw_counts

    _check(task, metric)
    _check_bootstrap_settings(resamples, seed, confidence)
    rows = len(np.asarray(y))
    rng = np.random.default_rng(seed)
    ones = np.ones((1, rows))
    cand_value = float(metric_values(task, metric, y, candidate, ones)[0])
    champ_value = float(metric_values(task, metric, y, champion, ones)[0])
    block = max(1, _BLOCK_CELLS // max(rows, 1))
    spread = []
    for start in range(0, resamples, block):
        counts = _draw_counts(rng, min(block, resamples - start), rows)
        spread.append(
            _improvement(
                metric, metric_values(task, metric, y, candidate, counts), metric_values(task, metric, y, champion, counts)
            )
        )
    values = np.concatenate(spread)
    values = values[np.isfinite(values)]
    alpha = 1.0 - confidence
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2]) if len(values) else (np.nan, np.nan)
    return {
        "metric": metric,
        "candidate": cand_value,
        "champion": champ_value,
        "difference": cand_value - champ_value,
        "improvement": float(_improvement(metric, np.array([cand_value]), np.array([champ_value]))[0]),
        "ci_low": float(low),
        "ci_high": float(high),
        "confidence": float(confidence),
        "resamples": int(resamples),
        "seed": int(seed),
    }


def _improvement(metric: str, candidate: NDArray[np.float64], champion: NDArray[np.float64]) -> NDArray[np.float64]:
    result: NDArray[np.float64] = champion - candidate if metric in LOWER_IS_BETTER else candidate - champion
    return result


def compare(
    task: str, y: Any, candidate: Any, champion: Any, *, metric: str, resamples: int, seed: int, confidence: float
) -> dict[str, Any]:
    """The bootstrap, plus the paired test that fits: McNemar's on multiclass accuracy (right versus wrong per row),
    Wilcoxon's signed-rank on the absolute errors of a regression."""
    import numpy as np

    from shipyard.checks.comparison import mcnemar_test

    bootstrap = paired_bootstrap(task, metric, y, candidate, champion, resamples=resamples, seed=seed, confidence=confidence)
    result: dict[str, Any] = {"metric": metric, "bootstrap": bootstrap, "rows": len(np.asarray(y))}
    if task == "multiclass" and metric == "accuracy":
        labels = np.asarray(y, dtype=int)
        right_a = (np.asarray(candidate).argmax(axis=1) == labels).astype(int)
        right_b = (np.asarray(champion).argmax(axis=1) == labels).astype(int)
        result["mcnemar"] = mcnemar_test(np.ones(len(labels), dtype=int), right_a, right_b).to_dict()
    elif task == "regression":
        from scipy.stats import wilcoxon

        truth = np.asarray(y, dtype=float)
        diff = np.abs(np.asarray(candidate, dtype=float) - truth) - np.abs(np.asarray(champion, dtype=float) - truth)
        if np.any(diff != 0):
            test = wilcoxon(diff, zero_method="wilcox")
            result["wilcoxon"] = {
                "name": "wilcoxon",
                "statistic": float(test.statistic),
                "p_value": float(test.pvalue),
                "details": {"median_abs_error_difference": float(np.median(diff))},
            }
    return result


def interval(
    task: str, metric: str, y: Any, output: Any, *, resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> dict[str, Any]:
    """``metric`` on one labelled sample with a percentile bootstrap interval (the live metric's shape)."""
    import numpy as np

    from shipyard.checks.comparison import _draw_counts

    _check(task, metric)
    rows = len(np.asarray(y))
    value = float(metric_values(task, metric, y, output, np.ones((1, rows)))[0])
    spread = metric_values(task, metric, y, output, _draw_counts(np.random.default_rng(seed), resamples, rows))
    spread = spread[np.isfinite(spread)]
    alpha = 1.0 - confidence
    low, high = np.quantile(spread, [alpha / 2, 1 - alpha / 2]) if len(spread) else (np.nan, np.nan)
    return {
        "metric": metric,
        "value": value,
        "ci_low": float(low),
        "ci_high": float(high),
        "confidence": confidence,
        "rows": rows,
    }
