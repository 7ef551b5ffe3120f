"""A model's task from its target column: declared and checked, or inferred when not declared.

Inference: a target of text, booleans or categories is a classification (binary with two values,
multiclass with more); a numeric target holding only 0 and 1 is binary; any other numeric target is a
regression. Integer-coded classes (0, 1, 2, …) read as a regression: declare ``task: multiclass``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import InvalidSpec

if TYPE_CHECKING:
    import pandas as pd

MAX_CLASSES = 100
_SHOWN = 8


def _values(target: pd.Series) -> list[Any]:
    values: list[Any] = target.dropna().unique().tolist()
    return values


def _shown(values: list[Any]) -> str:
    ordered = sorted(values, key=lambda v: (str(type(v)), v) if isinstance(v, (int, float)) else (str(type(v)), str(v)))
    text = ", ".join(map(str, ordered[:_SHOWN]))
    return f"{text}, … ({len(values)} distinct values)" if len(values) > _SHOWN else text


def _numeric(target: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(target)) and not pd.api.types.is_bool_dtype(target)


def _integral(target: pd.Series) -> bool:
    import numpy as np

    values = target.dropna().to_numpy(dtype=float)
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def infer_task(target: pd.Series) -> str:
    values = _values(target)
    if not _numeric(target):
        return "binary" if len(values) <= 2 else "multiclass"
    if set(values) <= {0, 1}:
        return "binary"
    return "regression"


def check_target(task: str, target: pd.Series, *, column: str, declared: bool) -> None:
    """Refuse a target that cannot train a ``task`` model, naming the column and the values seen."""
    values = _values(target)
    how = "declared" if declared else "inferred"
    if not values:
        raise InvalidSpec(f"target {column!r} has no values (every row is empty)")
    if task == "binary":
        if not set(values) <= {0, 1} or len(values) < 2:
            kind = "continuous values" if _numeric(target) and not _integral(target) else "values"
            raise InvalidSpec(
                f"target {column!r} has {kind} {_shown(values)}; task: binary ({how}) needs both classes of a 0/1 label",
                hint="Declare task: regression for a numeric target, task: multiclass for more than two classes, "
                "or set data.positive_label to the value that counts as positive.",
            )
    elif task == "multiclass":
        if _numeric(target) and not _integral(target):
            raise InvalidSpec(
                f"target {column!r} has continuous values {_shown(values)}; task: multiclass ({how}) needs class labels",
                hint="Declare task: regression for a numeric target.",
            )
        if len(values) < 3:
            raise InvalidSpec(
                f"target {column!r} has {len(values)} class(es) ({_shown(values)}); task: multiclass needs at least 3",
                hint="Declare task: binary for two classes (with data.positive_label when they are not 0/1).",
            )
        if len(values) > MAX_CLASSES:
            raise InvalidSpec(
                f"target {column!r} has {len(values)} distinct values; task: multiclass takes at most {MAX_CLASSES} classes",
                hint="Declare task: regression for a numeric target.",
            )
    elif task == "regression":
        if not _numeric(target):
            raise InvalidSpec(
                f"target {column!r} has non-numeric values {_shown(values)}; task: regression ({how}) needs numbers",
                hint="Declare task: multiclass (or binary) for class labels.",
            )
    else:
        raise InvalidSpec(f"unknown task {task!r}; expected binary, multiclass or regression")


def classes(target: pd.Series) -> list[Any]:
    """The label set, sorted as scikit-learn sorts ``classes_``."""
    import numpy as np

    return list(np.unique(target.dropna().to_numpy()).tolist())
