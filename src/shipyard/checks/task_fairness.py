"""Group fairness of regression and multiclass models, beside ``fairness`` for binary ones.

Regression: each group's size, mean error (prediction minus truth: positive over-predicts), mean absolute
error, mean prediction and mean target; the gaps between groups in mean error and in mean prediction.
Multiclass: each group's size, and per class the share of its rows predicted as that class (the selection
rate) and the class's recall; the gap is the largest, over classes, of the spread of selection rates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.checks.fairness import MISSING_GROUP
from shipyard.domain.errors import InvalidSpec

if TYPE_CHECKING:
    import pandas as pd

# Which differences each task's fairness report gives, and so which fairness rule metrics apply to it.
METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    "binary": ("demographic_parity_difference", "equalized_odds_difference"),
    "regression": ("mean_error_difference", "mean_prediction_difference"),
    "multiclass": ("demographic_parity_difference",),
}


def _groups(sensitive: pd.Series) -> Any:
    import numpy as np
    import pandas as pd

    return np.array([MISSING_GROUP if pd.isna(v) else str(v) for v in list(sensitive)], dtype=object)


def regression_report(y: Any, predicted: Any, sensitive: pd.Series) -> dict[str, Any]:
    import numpy as np

    truth, guess = np.asarray(y, dtype=float), np.asarray(predicted, dtype=float)
    groups = _groups(sensitive)
    by_group: dict[str, dict[str, Any]] = {}
    for key in sorted(set(groups.tolist())):
        members = groups == key
        error = guess[members] - truth[members]
        by_group[key] = {
            "count": int(members.sum()),
            "mean_error": float(error.mean()),
            "mean_abs_error": float(np.abs(error).mean()),
            "mean_prediction": float(guess[members].mean()),
            "mean_target": float(truth[members].mean()),
        }
    report: dict[str, Any] = {"column": str(sensitive.name), "task": "regression", "by_group": by_group, "warnings": []}
    report.update({metric: difference(metric, by_group) for metric in METRICS_BY_TASK["regression"]})
    return report


def multiclass_report(labels: Any, predicted: Any, classes: Sequence[Any], sensitive: pd.Series) -> dict[str, Any]:
    import numpy as np

    y, guess = np.asarray(labels, dtype=int), np.asarray(predicted, dtype=int)
    groups = _groups(sensitive)
    by_group: dict[str, dict[str, Any]] = {}
    for key in sorted(set(groups.tolist())):
        members = groups == key
        rates = {str(c): float((guess[members] == i).mean()) for i, c in enumerate(classes)}
        recall = {
            str(c): float((guess[members & (y == i)] == i).mean()) if (members & (y == i)).any() else None
            for i, c in enumerate(classes)
        }
        by_group[key] = {"count": int(members.sum()), "selection_rate": rates, "recall": recall}
    report: dict[str, Any] = {"column": str(sensitive.name), "task": "multiclass", "by_group": by_group, "warnings": []}
    report["demographic_parity_difference"] = difference("demographic_parity_difference", by_group)
    return report


def difference(metric: str, by_group: Mapping[str, Mapping[str, Any]]) -> float:
    """The largest gap between these groups (max minus min), for a regression or multiclass report."""
    rows = list(by_group.values())
    if not rows:
        return 0.0
    if metric == "mean_error_difference":
        values = [float(g["mean_error"]) for g in rows]
        return max(values) - min(values)
    if metric == "mean_prediction_difference":
        values = [float(g["mean_prediction"]) for g in rows]
        return max(values) - min(values)
    classes = list(rows[0]["selection_rate"])
    return max(
        (max(float(g["selection_rate"][c]) for g in rows) - min(float(g["selection_rate"][c]) for g in rows) for c in classes),
        default=0.0,
    )


def describe(metric: str, group: str, entry: Mapping[str, Any]) -> str:
    if metric == "mean_error_difference":
        return f"{group} (n={entry['count']}): mean error {entry['mean_error']:+.3f}, MAE {entry['mean_abs_error']:.3f}"
    if metric == "mean_prediction_difference":
        prediction, target = entry["mean_prediction"], entry["mean_target"]
        return f"{group} (n={entry['count']}): mean prediction {prediction:.3f}, mean target {target:.3f}"
    rates = ", ".join(f"{c} {r:.2f}" for c, r in entry["selection_rate"].items())
    return f"{group} (n={entry['count']}): predicted {rates}"


def reports(
    task: str, frame: pd.DataFrame, columns: Sequence[str], *, y: Any, predicted: Any, classes: Sequence[Any] = ()
) -> dict[str, dict[str, Any]]:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidSpec(
            f"sensitive column(s) {', '.join(map(repr, missing))} not in the data; "
            f"available columns: {', '.join(map(str, frame.columns))}",
            hint="Fix the policy's sensitive list or fairness rules, or add the column to the dataset.",
        )
    if task == "regression":
        return {c: regression_report(y, predicted, frame[c]) for c in dict.fromkeys(columns)}
    return {c: multiclass_report(y, predicted, classes, frame[c]) for c in dict.fromkeys(columns)}
