"""Robustness probes: inputs a serving model will meet sooner or later, and small noise.

Each probe scores a damaged copy of a sample. A probe is ``ok`` when the model
returns a finite probability in [0, 1] for every row without raising. How much
noise may move the predictions is the policy's call; this only measures it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import InvalidSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

UNSEEN = "__unseen__"
MISSING_SHARE = 0.1
OUT_OF_RANGE_FACTOR = 10.0
MAX_MESSAGES = 5
MAX_MESSAGE_CHARS = 500


def probe(
    predict_proba: Callable[[pd.DataFrame], np.ndarray],
    sample: pd.DataFrame,
    *,
    seed: int = 0,
    noise: float = 0.01,
    max_rows: int = 200,
    bounded: bool = True,
) -> dict[str, Any]:
    """Run every probe on up to ``max_rows`` rows of ``sample``; ``predict_proba`` gives positive-class probabilities.

    ``bounded=False``: the outputs are any finite numbers (a regression's predictions, scaled by the caller).
    """
    import numpy as np
    import pandas as pd

    if not isinstance(sample, pd.DataFrame) or sample.empty:
        raise InvalidSpec("robustness probes need a non-empty DataFrame of feature rows")
    if max_rows < 1:
        raise InvalidSpec(f"max_rows must be at least 1, got {max_rows}")
    if not noise >= 0.0:
        raise InvalidSpec(f"noise must be a standard deviation of 0 or more, got {noise}")

    rng = np.random.default_rng(seed)
    rows = sample if len(sample) <= max_rows else sample.sample(n=max_rows, random_state=seed)
    clean = rows.reset_index(drop=True).copy()
    numeric = [c for c in clean.columns if _is_number(clean[c])]
    text = [c for c in clean.columns if _is_text(clean[c])]

    baseline, clean_predicted = _score(predict_proba, bounded, clean)
    probes = {
        "missing_values": _score(predict_proba, bounded, _with_missing(clean, rng), columns=list(clean.columns))[0],
        "out_of_range": _score(predict_proba, bounded, _out_of_range(clean, numeric), columns=numeric)[0],
        "unseen_categories": _score(predict_proba, bounded, _unseen(clean, text), columns=text)[0],
    }
    noisy, predicted = _score(predict_proba, bounded, _with_noise(clean, numeric, noise, rng), columns=numeric)
    if predicted is not None and clean_predicted is not None:
        change = np.abs(predicted - clean_predicted)
        noisy.update(noise=noise, mean_abs_change=float(change.mean()), max_abs_change=float(change.max()))
    else:
        if noisy["ok"]:
            # Without the clean predictions there is no change to measure, so the probe cannot pass.
            noisy.update(ok=False, error=f"the clean sample could not be scored: {baseline['error'] or 'invalid outputs'}")
        noisy.update(noise=noise, mean_abs_change=None, max_abs_change=None)
    probes["noise"] = noisy
    return {"passed": all(p["ok"] for p in probes.values()), "probes": probes}


def _is_number(series: pd.Series) -> bool:
    from pandas.api import types

    return bool(types.is_numeric_dtype(series.dtype) and not types.is_bool_dtype(series.dtype))


def _is_text(series: pd.Series) -> bool:
    import pandas as pd
    from pandas.api import types

    return bool(types.is_string_dtype(series.dtype) or isinstance(series.dtype, pd.CategoricalDtype))


def _score(
    predict_proba: Callable[[pd.DataFrame], np.ndarray],
    bounded: bool,
    frame: pd.DataFrame,
    *,
    columns: list[str] | None = None,
) -> tuple[dict[str, Any], np.ndarray | None]:
    """One probe's result, and the predictions when they are valid."""
    import warnings

    import numpy as np

    result: dict[str, Any] = {"ok": False, "error": None, "rows": len(frame), "valid_outputs": False}
    if columns is not None:
        result["columns"] = columns
    # A model's own warnings (unknown categories, feature names) are findings here, not failures of the probe.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            output = np.asarray(predict_proba(frame.copy()), dtype=float)
        except Exception as exc:  # any failure of the model is the finding
            result["error"] = _message(exc)
            output = None
    result["warnings"] = list(dict.fromkeys(_clip(f"{w.category.__name__}: {w.message}") for w in caught))[:MAX_MESSAGES]
    if output is None:
        return result, None
    if output.shape != (len(frame),):
        result["error"] = f"expected {len(frame)} probabilities (shape ({len(frame)},)), got shape {output.shape}"
        return result, None
    valid = bool(np.isfinite(output).all() and (not bounded or ((output >= 0.0).all() and (output <= 1.0).all())))
    result.update(ok=valid, valid_outputs=valid)
    return result, output if valid else None


def _message(exc: BaseException) -> str:
    return _clip(f"{type(exc).__name__}: {exc}")


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def _with_missing(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """About a tenth of each column's values missing, different rows per column."""
    import numpy as np
    from pandas.api import types

    damaged = frame.copy()
    count = max(1, round(len(frame) * MISSING_SHARE))
    for column in damaged.columns:
        hit = np.zeros(len(damaged), dtype=bool)
        hit[rng.choice(len(damaged), size=count, replace=False)] = True
        series = damaged[column]
        if types.is_integer_dtype(series.dtype) or types.is_bool_dtype(series.dtype):
            # The way missing integers and flags usually arrive: float columns with NaN, object columns with None.
            series = series.astype("float64" if types.is_integer_dtype(series.dtype) else object)
        damaged[column] = series.mask(hit)
    return damaged


def _out_of_range(frame: pd.DataFrame, numeric: list[str]) -> pd.DataFrame:
    """Even rows at +10 times each numeric column's largest magnitude, odd rows at -10 times."""
    import numpy as np
    import pandas as pd
    from pandas.api import types

    damaged = frame.copy()
    upper = np.arange(len(frame)) % 2 == 0
    for column in numeric:
        series = damaged[column]
        largest = float(np.nanmax(np.abs(series.to_numpy(dtype=float, na_value=np.nan)))) if series.notna().any() else 0.0
        scale = OUT_OF_RANGE_FACTOR * (largest or 1.0)
        values = np.where(upper, scale, -scale)
        if types.is_integer_dtype(series.dtype):
            limits = np.iinfo(getattr(series.dtype, "numpy_dtype", series.dtype))
            # Keep the integer dtype where the values fit; never let them wrap around.
            if limits.min <= -scale and scale <= limits.max:
                damaged[column] = pd.Series(values.round(), index=damaged.index).astype(series.dtype)
                continue
        damaged[column] = values
    return damaged


def _unseen(frame: pd.DataFrame, text: list[str]) -> pd.DataFrame:
    import pandas as pd

    damaged = frame.copy()
    for column in text:
        dtype = object if isinstance(frame[column].dtype, pd.CategoricalDtype) else frame[column].dtype
        damaged[column] = pd.Series(UNSEEN, index=damaged.index, dtype=dtype)
    return damaged


def _with_noise(frame: pd.DataFrame, numeric: list[str], noise: float, rng: np.random.Generator) -> pd.DataFrame:
    """Each numeric value times (1 + N(0, noise)); integer columns become floats so the noise is not rounded away."""
    damaged = frame.copy()
    for column in numeric:
        values = damaged[column].to_numpy(dtype=float, na_value=float("nan"))
        damaged[column] = values * (1.0 + rng.normal(0.0, noise, len(values)))
    return damaged
