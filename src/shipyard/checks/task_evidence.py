"""Evidence about a regression or a multiclass model: the same sections as a binary classifier's, per task.

Sections that cannot be computed for the model (probability metrics of a model that only predicts labels)
are left out and named, with the reason, under ``not_applicable``; the gate report shows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shipyard.checks import outputs, task_fairness, task_metrics

if TYPE_CHECKING:
    import pandas as pd


def _slices(
    task: str, y: Any, output: Any, holdout: pd.DataFrame, columns: Sequence[str], metric_names: Sequence[str]
) -> dict[str, Any]:
    import numpy as np

    slices: dict[str, Any] = {}
    for column in columns:
        groups: dict[str, Any] = {}
        values = holdout[column].to_numpy()
        for value in sorted(set(values.tolist()), key=str):
            mask = values == value
            entry: dict[str, Any] = {"rows": int(mask.sum())}
            ones = np.ones((1, int(mask.sum())))
            for metric in metric_names:
                if task == "regression" and metric == "r2" and mask.sum() < 2:
                    continue
                if task == "regression" and metric == "mape" and np.any(np.asarray(y)[mask] == 0):
                    continue
                value_ = float(task_metrics.metric_values(task, metric, np.asarray(y)[mask], np.asarray(output)[mask], ones)[0])
                if np.isfinite(value_):
                    entry[metric] = value_
            groups[str(value)] = entry
        slices[column] = groups
    return slices


def champion_classes(champion_model: Any) -> list[str] | None:
    found = getattr(champion_model, "classes_", None)
    return None if found is None else [str(c) for c in found]


def collect(
    *,
    task: str,
    model: Any,
    holdout: pd.DataFrame,
    holdout_x: pd.DataFrame,
    holdout_target: pd.Series,
    train_target: pd.Series,
    slice_columns: Sequence[str],
    fairness_columns: Sequence[str],
    champion_model: Any | None,
    champion_x: pd.DataFrame | None,
    comparison: tuple[str, int, float] | None,
    seed: int,
) -> dict[str, Any]:
    """metrics (holdout, slices), comparison, fairness, robustness and not_applicable for one model."""
    import numpy as np

    from shipyard.checks import robustness
    from shipyard.checks.targets import classes as label_set

    holdout = holdout.reset_index(drop=True)
    not_applicable: dict[str, str] = {}
    found: dict[str, Any] = {}
    if task == "regression":
        y: Any = holdout_target.to_numpy(dtype=float)
        output: Any = outputs.predictions(model, holdout_x)
        predicted: Any = output
        holdout_metrics = task_metrics.regression_metrics(y, output)
        names = list(holdout_metrics)
        if "mape" not in holdout_metrics:
            not_applicable["metric mape"] = "the holdout target has zeros, where MAPE is undefined"
        metrics: dict[str, Any] = {"holdout": holdout_metrics}
        scale = float(np.std(y)) or 1.0
        probe_fn = lambda rows: outputs.predictions(model, rows) / scale  # noqa: E731
        found["target"] = {"mean": float(np.mean(y)), "std": float(np.std(y))}
    else:
        classes = label_set(train_target)
        found["classes"] = [str(c) for c in classes]
        y = outputs.label_indices(holdout_target.to_numpy(), classes)
        output = outputs.class_probabilities(model, holdout_x, classes)
        predicted = outputs.class_indices(model, holdout_x, classes, output)
        if output is None:
            one_hot = np.eye(len(classes))[predicted]
            holdout_metrics = {k: v for k, v in task_metrics.multiclass_metrics(y, one_hot).items() if k != "log_loss"}
            not_applicable["metric log_loss"] = "the model gives no class probabilities (no predict_proba)"
            output = one_hot
        else:
            holdout_metrics = task_metrics.multiclass_metrics(y, output)
        names = list(holdout_metrics)
        metrics = {"holdout": holdout_metrics, "per_class_recall": task_metrics.per_class_recall(y, output, classes)}
        if "metric log_loss" in not_applicable:
            probe_fn = lambda rows: np.ones(len(rows))  # noqa: E731
            not_applicable["robustness"] = "the model gives no class probabilities to measure a change in"
        else:
            probe_fn = lambda rows: outputs.class_probabilities(model, rows, classes).max(axis=1)  # type: ignore[union-attr]  # noqa: E731
    metrics["slices"] = _slices(task, y, output, holdout, slice_columns, names)
    found["metrics"] = metrics

    found["comparison"] = None
    if champion_model is not None and comparison is not None:
        metric, resamples, confidence = comparison
        found["comparison"] = _compare(
            task, metric, model_output=output, y=y, champion_model=champion_model, champion_x=champion_x,
            classes=found.get("classes"), resamples=resamples, seed=seed, confidence=confidence,
            not_applicable=not_applicable,
        )  # fmt: skip
    found["fairness"] = task_fairness.reports(
        task, holdout, fairness_columns, y=y, predicted=predicted, classes=found.get("classes") or ()
    )
    if "robustness" not in not_applicable:
        found["robustness"] = robustness.probe(probe_fn, holdout_x, seed=seed, bounded=task != "regression")
    found["not_applicable"] = not_applicable
    return found


def _compare(
    task: str, metric: str, *, model_output: Any, y: Any, champion_model: Any, champion_x: Any, classes: list[str] | None,
    resamples: int, seed: int, confidence: float, not_applicable: dict[str, str],
) -> dict[str, Any] | None:  # fmt: skip
    import numpy as np

    if task == "multiclass":
        theirs = champion_classes(champion_model)
        if theirs is not None and classes is not None and sorted(theirs) != sorted(classes):
            return {
                "metric": metric,
                "label_set_changed": {"candidate": classes, "champion": theirs},
            }
        champion_out = outputs.class_probabilities(champion_model, champion_x, classes or [])
        if champion_out is None:
            champion_out = np.eye(len(classes or []))[outputs.class_indices(champion_model, champion_x, classes or [], None)]
    else:
        champion_out = outputs.predictions(champion_model, champion_x)
    if f"metric {metric}" in not_applicable:
        not_applicable["comparison"] = not_applicable[f"metric {metric}"]
        return None
    return task_metrics.compare(
        task, y, model_output, champion_out, metric=metric, resamples=resamples, seed=seed, confidence=confidence
    )
