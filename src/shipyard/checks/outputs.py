"""What a regression or multiclass model answers on a frame of rows, checked and in one shape.

Regression: one number per row from ``predict``. Multiclass: a probability matrix whose columns follow the
label set of the data (``classes``), from ``predict_proba`` and the model's ``classes_``; a model that only
predicts labels (a plain pyfunc) gives None, and the evidence that needs probabilities does not apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import InvalidSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def _call(what: str, method: Any, features: pd.DataFrame) -> np.ndarray:
    import numpy as np

    try:
        return np.asarray(method(features))
    except Exception as exc:  # the model is user code: any failure is a finding, not a crash
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidSpec(
            f"the model's {what} failed on {len(features)} rows with columns {', '.join(map(str, features.columns))}: "
            f"{type(exc).__name__}: {reason}"
        ) from exc


def predictions(model: Any, features: pd.DataFrame) -> np.ndarray:
    """A regression model's predictions, one finite number per row."""
    import numpy as np

    if not hasattr(model, "predict"):
        raise InvalidSpec(f"the model ({type(model).__name__}) has no predict", hint="Return a fitted regressor.")
    raw = _call("predict", model.predict, features)
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw[:, 0]
    if raw.ndim != 1 or len(raw) != len(features):
        raise InvalidSpec(f"expected predict to return one number per row ({len(features)}), got shape {raw.shape}")
    try:
        values = raw.astype(float)
    except (TypeError, ValueError):
        raise InvalidSpec(
            f"a regression model's predict must return numbers; got {raw[:3].tolist()}",
            hint="Declare task: multiclass (or binary) for a classifier.",
        ) from None
    if not np.isfinite(values).all():
        raise InvalidSpec(f"the model predicted {int((~np.isfinite(values)).sum())} NaN or infinite values")
    return values


def _same_labels(model_classes: Sequence[Any], classes: Sequence[Any]) -> list[int]:
    """For each of ``classes``, its column in the model's output."""
    mine = [str(c) for c in model_classes]
    missing = [str(c) for c in classes if str(c) not in mine]
    extra = [c for c in mine if c not in {str(x) for x in classes}]
    if missing or extra:
        raise InvalidSpec(
            f"the model's classes {mine} differ from the target's labels {[str(c) for c in classes]}"
            + (f" (missing {missing})" if missing else "")
            + (f" (unknown {extra})" if extra else ""),
            hint="Train on the configured target's own labels (a model that encodes them must decode them: "
            "wrap it so classes_ are the labels).",
        )
    return [mine.index(str(c)) for c in classes]


def class_probabilities(model: Any, features: pd.DataFrame, classes: Sequence[Any]) -> np.ndarray | None:
    """Probabilities per row (columns in the order of ``classes``), or None when the model cannot give them."""
    import numpy as np

    if not hasattr(model, "predict_proba"):
        return None
    proba = _call("predict_proba", model.predict_proba, features).astype(float)
    model_classes = getattr(model, "classes_", None)
    if proba.ndim != 2 or proba.shape[0] != len(features):
        raise InvalidSpec(f"expected predict_proba to return one row per input row, got shape {proba.shape}")
    if model_classes is None:
        if proba.shape[1] != len(classes):
            raise InvalidSpec(f"predict_proba gives {proba.shape[1]} columns for {len(classes)} classes and no classes_")
        return proba
    order = _same_labels(list(model_classes), classes)
    if not np.isfinite(proba).all():
        raise InvalidSpec("predict_proba returned NaN or infinite values")
    return proba[:, order]


def class_indices(model: Any, features: pd.DataFrame, classes: Sequence[Any], proba: np.ndarray | None) -> np.ndarray:
    """Each row's predicted class, as an index into ``classes``."""
    import numpy as np

    if proba is not None:
        return np.asarray(proba.argmax(axis=1), dtype=int)
    raw = _call("predict", model.predict, features)
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw[:, 0]
    lookup = {str(c): i for i, c in enumerate(classes)}
    unknown = sorted({str(v) for v in raw.tolist()} - set(lookup))
    if unknown:
        raise InvalidSpec(f"the model predicted labels the target never has: {unknown[:5]}; expected {list(lookup)}")
    return np.array([lookup[str(v)] for v in raw.tolist()], dtype=int)


def label_indices(target: Any, classes: Sequence[Any]) -> np.ndarray:
    import numpy as np

    lookup = {str(c): i for i, c in enumerate(classes)}
    values = [str(v) for v in np.asarray(target).tolist()]
    unknown = sorted(set(values) - set(lookup))
    if unknown:
        raise InvalidSpec(f"holdout labels {unknown[:5]} are not among the training labels {list(lookup)}")
    return np.array([lookup[v] for v in values], dtype=int)


def task_scores(model: Any, features: pd.DataFrame, task: str, classes: Sequence[Any] = ()) -> np.ndarray:
    """One number per row to profile and watch for drift: a regression's prediction, a multiclass model's
    probability of its predicted class (its confidence)."""
    import numpy as np

    if task == "regression":
        return predictions(model, features)
    proba = class_probabilities(model, features, classes)
    if proba is None:
        return np.ones(len(features))
    return np.asarray(proba.max(axis=1), dtype=float)
