"""Group fairness of binary predictions, with fairlearn's MetricFrame.

Rates a group cannot have (a true positive rate without positive labels, a
false positive rate without negative labels) are reported as 0.0, as
fairlearn computes them, and named in ``warnings``: they also enter the
equalized odds difference, so a reader must know they are not measurements.
Inputs are matched by position, not by index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import InvalidSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MISSING_GROUP = "<missing>"


def fairness_report(y_true: Any, y_pred: Any, sensitive: pd.Series, *, scores: Any = None) -> dict[str, Any]:
    """Selection, true and false positive rates per group of ``sensitive``, and the largest gaps between groups.

    With ``scores`` (positive-class probabilities), each group also gets its ``mean_score``.
    """
    import numpy as np
    from fairlearn.metrics import MetricFrame, count, false_positive_rate, selection_rate, true_positive_rate

    label = getattr(sensitive, "name", None)
    name = "sensitive" if label is None else str(label)
    y = _binary(y_true, "y_true")
    predicted = _binary(y_pred, "y_pred")
    groups = _group_labels(sensitive)
    _same_length(name, y_true=len(y), y_pred=len(predicted), sensitive=len(groups))
    if len(y) == 0:
        raise InvalidSpec(f"fairness by {name}: no rows to judge", hint="Pass the holdout labels and predictions.")

    frame = MetricFrame(
        metrics={
            "count": count,
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
        },
        y_true=y,
        y_pred=predicted,
        sensitive_features=groups,
    )
    warnings: list[str] = []
    by_group: dict[str, dict[str, Any]] = {}
    for group, row in frame.by_group.iterrows():
        key = str(group)
        members = groups == key
        entry: dict[str, Any] = {
            "count": int(row["count"]),
            # The labels' own rate: the disparity in the data, next to the model's.
            "positive_rate": float(y[members].mean()),
            "selection_rate": _finite(row["selection_rate"], f"{name}={key} selection_rate", warnings),
            "true_positive_rate": _finite(row["true_positive_rate"], f"{name}={key} true_positive_rate", warnings),
            "false_positive_rate": _finite(row["false_positive_rate"], f"{name}={key} false_positive_rate", warnings),
        }
        if not y[members].any():
            warnings.append(f"{name}={key} has no positive labels: its true_positive_rate is 0.0 by convention, not measured")
        if y[members].all():
            warnings.append(f"{name}={key} has no negative labels: its false_positive_rate is 0.0 by convention, not measured")
        by_group[key] = entry
    if len(by_group) == 1:
        warnings.append(f"{name} has a single group ({next(iter(by_group))!r}): both differences are 0.0 by construction")
    if scores is not None:
        values = np.asarray(scores, dtype=float).ravel()
        _same_length(name, y_true=len(y), scores=len(values))
        if not np.isfinite(values).all():
            raise InvalidSpec(f"fairness by {name}: scores must be finite numbers; found NaN or infinity")
        for key, entry in by_group.items():
            entry["mean_score"] = float(values[groups == key].mean())

    # The gaps from the one MetricFrame, as fairlearn's demographic_parity_difference and
    # equalized_odds_difference define them (each of those builds two more frames of its own).
    gaps = frame.difference(method="between_groups")
    return {
        "column": name,
        "demographic_parity_difference": _finite(gaps["selection_rate"], "demographic_parity_difference", warnings),
        "equalized_odds_difference": _finite(
            max(gaps["true_positive_rate"], gaps["false_positive_rate"]), "equalized_odds_difference", warnings
        ),
        "by_group": by_group,
        "warnings": warnings,
    }


def fairness_reports(
    y_true: Any, y_pred: Any, frame: pd.DataFrame, columns: Sequence[str], *, scores: Any = None
) -> dict[str, dict[str, Any]]:
    """``fairness_report`` for each of ``columns`` of ``frame``, keyed by column."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidSpec(
            f"sensitive column(s) {', '.join(map(repr, missing))} not in the data; "
            f"available columns: {', '.join(map(str, frame.columns))}",
            hint="Fix the policy's sensitive list or fairness rules, or add the column to the dataset.",
        )
    return {column: fairness_report(y_true, y_pred, frame[column], scores=scores) for column in dict.fromkeys(columns)}


def _binary(values: Any, what: str) -> np.ndarray:
    import numpy as np

    array = np.asarray(values).ravel()
    try:
        numbers = array.astype(float)
    except (TypeError, ValueError):
        numbers = np.full(array.shape, np.nan)
    if not np.isin(numbers, (0.0, 1.0)).all():
        shown = sorted({str(v) for v in array.tolist()})[:5]
        raise InvalidSpec(
            f"{what} must hold only 0 and 1; found {shown}", hint="Threshold probabilities into 0/1 predictions first."
        )
    return numbers.astype(int)


def _group_labels(sensitive: pd.Series) -> np.ndarray:
    """Each row's group as text: the report's keys are JSON object keys, and missing values form their own group."""
    import numpy as np
    import pandas as pd

    return np.array([MISSING_GROUP if pd.isna(v) else str(v) for v in list(sensitive)], dtype=object)


def _same_length(name: str, **lengths: int) -> None:
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise InvalidSpec(f"fairness by {name}: inputs differ in length ({shown}); expected one value per row")


def _finite(value: Any, what: str, warnings: list[str]) -> float:
    import math

    number = float(value)
    if math.isfinite(number):
        return number
    warnings.append(f"{what} could not be computed; reported as 0.0")
    return 0.0
