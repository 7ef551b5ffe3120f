"""Regression and multiclass metrics, their bootstrap, task inference and fairness by group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.checks import task_fairness, task_metrics
from shipyard.checks.targets import check_target, infer_task
from shipyard.domain.errors import InvalidSpec
from shipyard.domain.tasks import ALL_METRICS, LOWER_IS_BETTER, METRICS_BY_TASK, MetricName


def test_regression_metrics_match_scikit_learn() -> None:
    from sklearn.metrics import mean_absolute_error, mean_absolute_percentage_error, mean_squared_error, r2_score

    rng = np.random.default_rng(0)
    y = rng.uniform(1, 20, 300)
    predicted = y + rng.normal(0, 2, 300)
    found = task_metrics.regression_metrics(y, predicted)
    assert found["rmse"] == pytest.approx(mean_squared_error(y, predicted) ** 0.5)
    assert found["mae"] == pytest.approx(mean_absolute_error(y, predicted))
    assert found["r2"] == pytest.approx(r2_score(y, predicted))
    assert found["mape"] == pytest.approx(mean_absolute_percentage_error(y, predicted))


def test_mape_is_left_out_where_a_target_is_zero() -> None:
    found = task_metrics.regression_metrics([0.0, 1.0, 2.0], [0.5, 1.0, 2.5])
    assert "mape" not in found and set(found) == {"rmse", "mae", "r2"}


def test_multiclass_metrics_match_scikit_learn() -> None:
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 400)
    logits = rng.normal(0, 1, (400, 3)) + 2 * np.eye(3)[y] * rng.uniform(0, 1, (400, 1))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    found = task_metrics.multiclass_metrics(y, proba)
    predicted = proba.argmax(axis=1)
    assert found["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert found["f1_macro"] == pytest.approx(f1_score(y, predicted, average="macro"))
    assert found["f1_weighted"] == pytest.approx(f1_score(y, predicted, average="weighted"))
    assert found["log_loss"] == pytest.approx(log_loss(y, proba, labels=[0, 1, 2]))
    recall = task_metrics.per_class_recall(y, proba, ["a", "b", "c"])
    assert recall["b"] == pytest.approx(((predicted == 1) & (y == 1)).sum() / (y == 1).sum())


def test_one_table_of_metrics_and_directions() -> None:
    import typing

    assert set(typing.get_args(MetricName)) == set(ALL_METRICS)
    assert {"rmse", "mae", "mape", "log_loss", "brier"} == LOWER_IS_BETTER
    assert set(METRICS_BY_TASK["regression"]) == {"rmse", "mae", "r2", "mape"}


def test_bootstrap_says_a_lower_error_is_an_improvement() -> None:
    rng = np.random.default_rng(2)
    y = rng.uniform(0, 10, 500)
    good = y + rng.normal(0, 0.5, 500)
    bad = y + rng.normal(0, 2.0, 500)
    better = task_metrics.compare("regression", y, good, bad, metric="rmse", resamples=500, seed=0, confidence=0.9)
    worse = task_metrics.compare("regression", y, bad, good, metric="rmse", resamples=500, seed=0, confidence=0.9)
    assert better["bootstrap"]["improvement"] > 0 and better["bootstrap"]["ci_low"] > 0
    assert worse["bootstrap"]["ci_high"] < 0
    assert better["wilcoxon"]["p_value"] < 0.01


def test_multiclass_accuracy_comparison_has_mcnemar() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 300)
    right = np.eye(3)[y] * 0.8 + 0.2 / 3
    noisy = np.eye(3)[rng.integers(0, 3, 300)] * 0.8 + 0.2 / 3
    found = task_metrics.compare("multiclass", y, right, noisy, metric="accuracy", resamples=200, seed=0, confidence=0.9)
    assert found["bootstrap"]["improvement"] > 0.5
    assert found["mcnemar"]["p_value"] < 1e-6


def test_a_metric_of_another_task_is_refused() -> None:
    with pytest.raises(InvalidSpec, match="'roc_auc' does not apply to a regression model"):
        task_metrics.compare(
            "regression", [1.0, 2.0], [1.0, 2.0], [1.0, 2.0], metric="roc_auc", resamples=100, seed=0, confidence=0.9
        )


@pytest.mark.parametrize(
    ("values", "task"),
    [
        ([0, 1, 1, 0], "binary"),
        (["yes", "no", "yes"], "binary"),
        (["a", "b", "c"], "multiclass"),
        ([1.5, 2.0, 7.25], "regression"),
        ([3, 7, 15, 9], "regression"),
    ],
)
def test_task_inferred_from_the_target(values: list[object], task: str) -> None:
    assert infer_task(pd.Series(values)) == task


def test_a_continuous_target_declared_binary_names_column_and_values() -> None:
    with pytest.raises(InvalidSpec) as caught:
        check_target("binary", pd.Series([1.5, 2.25, 9.0]), column="price", declared=True)
    message = str(caught.value)
    assert "'price'" in message and "continuous values 1.5, 2.25, 9.0" in message and "task: binary" in message


def test_text_labels_are_no_regression() -> None:
    with pytest.raises(InvalidSpec, match="non-numeric values Adelie, Gentoo"):
        check_target("regression", pd.Series(["Adelie", "Gentoo"]), column="species", declared=True)


def test_regression_fairness_reports_errors_and_predictions_by_group() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    predicted = np.array([2.0, 3.0, 3.0, 4.0])  # group a over-predicted by 1
    report = task_fairness.regression_report(y, predicted, pd.Series(["a", "a", "b", "b"], name="g"))
    assert report["by_group"]["a"] == {
        "count": 2, "mean_error": 1.0, "mean_abs_error": 1.0, "mean_prediction": 2.5, "mean_target": 1.5,
    }  # fmt: skip
    assert report["mean_error_difference"] == pytest.approx(1.0)
    assert report["mean_prediction_difference"] == pytest.approx(1.0)


def test_multiclass_fairness_is_per_class_selection_rates() -> None:
    labels = np.array([0, 1, 2, 0, 1, 2])
    predicted = np.array([0, 0, 0, 0, 1, 2])
    report = task_fairness.multiclass_report(labels, predicted, ["x", "y", "z"], pd.Series(list("aaabbb"), name="g"))
    assert report["by_group"]["a"]["selection_rate"] == {"x": 1.0, "y": 0.0, "z": 0.0}
    assert report["by_group"]["b"]["count"] == 3
    assert report["demographic_parity_difference"] == pytest.approx(2 / 3)


def test_live_regression_error_from_delayed_labels_against_the_holdout() -> None:
    from shipyard.monitoring.monitor import live_performance

    rng = np.random.default_rng(4)
    truth = rng.uniform(5, 15, 200)
    predicted = truth + rng.normal(0, 3, 200)  # live error about 3, the holdout's was 1
    ids = [f"r{i}" for i in range(200)]
    frame = pd.DataFrame({"request_id": ids, "score": predicted})
    labels = pd.DataFrame({"request_id": ids, "label": truth})
    result, notes = live_performance(frame, labels, metric="rmse", holdout=1.0)
    assert result is not None and not notes
    assert result["live"]["value"] == pytest.approx(float(np.sqrt(np.mean((predicted - truth) ** 2))))
    assert result["decay"] > 1.5 and result["significant"] is True
    result, notes = live_performance(frame, labels, metric="f1_macro", holdout=0.9)
    assert result is None and "not measured for this model's task" in notes[0]
