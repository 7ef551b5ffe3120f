"""What a model predicts (its task) and the metrics that judge each task: one table for every reader.

The evidence, the champion comparison, the policy's ``metric`` and ``compare_champion`` rules and the
monitor all read the direction of a metric from ``LOWER_IS_BETTER`` here.
"""

from __future__ import annotations

from typing import Literal

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")
MetricName = Literal["roc_auc", "accuracy", "f1", "log_loss", "brier", "f1_macro", "f1_weighted", "rmse", "mae", "r2", "mape"]

METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "accuracy", "f1", "log_loss", "brier"),
    "multiclass": ("accuracy", "f1_macro", "f1_weighted", "log_loss"),
    "regression": ("rmse", "mae", "r2", "mape"),
}
# Every metric a rule or a comparison may name, in a stable order.
ALL_METRICS: tuple[str, ...] = tuple(dict.fromkeys(m for metrics in METRICS_BY_TASK.values() for m in metrics))
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae", "mape"})
DEFAULT_METRIC: dict[str, str] = {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "rmse"}

# Evidence kinds that need class probabilities: a model that only predicts (a plain pyfunc) cannot give them.
NEEDS_PROBABILITIES = frozenset({"roc_auc", "log_loss", "brier"})


def metric_for(task: str, metric: str | None) -> str:
    """The metric to judge ``task`` by: the one named, else the task's default."""
    return metric or DEFAULT_METRIC.get(task, "roc_auc")


def metric_error(task: str, metric: str) -> str | None:
    """Why ``metric`` cannot judge a ``task`` model, or None when it can."""
    if metric in METRICS_BY_TASK.get(task, ()):
        return None
    return (
        f"metric {metric!r} does not apply to a {task} model; expected one of {', '.join(METRICS_BY_TASK.get(task, ALL_METRICS))}"
    )
