"""Holdout metrics for binary classifiers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import InvalidSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

THRESHOLD = 0.5


def positive_scores(model: Any, features: pd.DataFrame) -> np.ndarray:
    """The model's probability of the positive class, one per row."""
    import numpy as np

    if not hasattr(model, "predict_proba"):
        raise InvalidSpec(
            f"the trained model ({type(model).__name__}) has no predict_proba",
            hint="Return a fitted binary classifier, e.g. a scikit-learn estimator or Pipeline.",
        )
    try:
        proba = np.asarray(model.predict_proba(features))
    except Exception as exc:  # the model is user code: any failure is a finding, not a crash
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidSpec(
            f"the model could not score {len(features)} rows with columns {', '.join(map(str, features.columns))}: "
            f"{type(exc).__name__}: {reason}"
        ) from exc
    if proba.ndim != 2 or proba.shape[1] != 2:
        raise InvalidSpec(f"expected predict_proba to return one column per class for 2 classes, got shape {proba.shape}")
    return proba[:, 1]


def binary_metrics(y_true: Any, scores: Any) -> dict[str, float]:
    """roc_auc, accuracy, f1, log_loss and brier of scores against 0/1 labels."""
    import numpy as np
    from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, log_loss, roc_auc_score

    y = np.asarray(y_true).astype(int)
    if len(np.unique(y)) != 2:
        raise InvalidSpec(f"metrics need both classes among the labels; found only {sorted(set(y.tolist()))}")
    p = np.clip(np.asarray(scores, dtype=float), 1e-15, 1 - 1e-15)
    predicted = (p >= THRESHOLD).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
    }
