"""Explanations: how much each input column moves a model's scores (SHAP values), and an explainer to ask row by row.

Which explainer, in order (the first that fits):

- ``tree``: shap's TreeExplainer on a tree ensemble, or on the last step of a pipeline ending in one
  (HistGradientBoosting, random forests, gradient boosting, XGBoost, LightGBM). Exact, in log-odds, no
  background data (path-dependent), milliseconds for hundreds of rows.
- ``linear``: shap's LinearExplainer on a linear model at the end of a pipeline; exact for the model's
  log-odds against a background sample.
- ``permutation``: shap's PermutationExplainer on the model's positive-class score, over the input
  columns themselves: model-agnostic, and the slowest by far (each row costs dozens of model calls),
  so it runs on a smaller sample and only up to ``AGNOSTIC_MAX_COLUMNS`` columns.

Attributions on a pipeline's encoded columns are summed back to the input columns they came from, so
a one-hot-encoded column carries the sum of its dummies and cannot hide behind them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SAMPLE_ROWS = 500  # holdout rows explained for the evidence
BACKGROUND_ROWS = 100  # what "absent" means for the linear and permutation explainers
AGNOSTIC_ROWS = 50  # the permutation explainer's sample: it costs dozens of model calls per row
AGNOSTIC_BACKGROUND = 25
AGNOSTIC_MAX_COLUMNS = 40
TOP = 5  # features listed per slice and group


class Unexplainable(Exception):
    """No explainer supports this model; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Attributor:
    method: str  # tree | linear | permutation
    explainer: str  # the shap class doing the work
    output: str  # what the attributions add up to: log-odds or probability
    columns: tuple[str, ...]  # the input columns attributions are reported on
    max_rows: int  # rows the evidence explains with it
    attribute: Callable[[pd.DataFrame], tuple[np.ndarray, float]]  # rows → (rows × columns attributions, base value)
    # The same from rows already encoded as the pipeline's last step reads them (the gateway's fast encoding).
    attribute_encoded: Callable[[np.ndarray], tuple[np.ndarray, float]] | None = None

    def explain(self, frame: pd.DataFrame) -> tuple[np.ndarray, float]:
        return self.attribute(frame[list(self.columns)])


def attributor(model: Any, background: pd.DataFrame, *, seed: int = 0) -> Attributor:
    """The explainer for ``model`` on input frames like ``background`` (which also serves as its background data)."""
    columns = tuple(str(c) for c in background.columns)
    steps = getattr(model, "steps", None)
    head = model[:-1] if steps else None
    final = steps[-1][1] if steps else model
    groups = input_groups(head, list(columns)) if head is not None else _identity(len(columns))
    reasons = []
    if groups is not None:
        tree = _tree(final, head, groups, columns)
        if isinstance(tree, Attributor):
            return tree
        reasons.append(tree)
        linear = _linear(final, head, groups, columns, background.head(BACKGROUND_ROWS))
        if isinstance(linear, Attributor):
            return linear
        reasons.append(linear)
    else:
        reasons.append("its encoded columns cannot be traced back to its input columns")
    if len(columns) > AGNOSTIC_MAX_COLUMNS:
        reasons.append(
            f"the model-agnostic explainer stops at {AGNOSTIC_MAX_COLUMNS} input columns (this model has {len(columns)})"
        )
        raise Unexplainable("; ".join(reasons))
    if not hasattr(model, "predict_proba"):
        reasons.append("it has no predict_proba for the model-agnostic explainer")
        raise Unexplainable("; ".join(reasons))
    return _kernel(model, background.head(AGNOSTIC_BACKGROUND), columns, seed=seed)


def _shap() -> Any:
    """shap, imported without the deprecation notice its matplotlib set-up raises at import (shap 0.51)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The set_(bad|over|under) function", category=PendingDeprecationWarning)
        import shap
    return shap


def _identity(width: int) -> np.ndarray:
    import numpy as np

    return np.eye(width)


def _dense(matrix: Any) -> np.ndarray:
    import numpy as np

    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=np.float64)


def _positive(values: Any) -> np.ndarray:
    """A binary classifier's attributions for the positive class, however the explainer shapes them."""
    import numpy as np

    if isinstance(values, list):
        values = values[-1]
    array = np.asarray(values, dtype=np.float64)
    return array[..., -1] if array.ndim == 3 else array


def _base(expected: Any) -> float:
    import numpy as np

    flat = np.asarray(expected, dtype=np.float64).reshape(-1)
    return float(flat[-1]) if len(flat) else 0.0


def _tree(final: Any, head: Any, groups: np.ndarray, columns: tuple[str, ...]) -> Attributor | str:
    if hasattr(final, "coef_") or not hasattr(final, "predict_proba"):
        return "its last step is not a tree ensemble"
    shap = _shap()

    try:
        explainer = shap.TreeExplainer(final)
    except Exception as exc:  # shap raises InvalidModelError, TypeError, … for what it does not know
        return f"shap's TreeExplainer does not support {type(final).__name__} ({type(exc).__name__}: {exc})"

    def attribute_encoded(encoded: np.ndarray) -> tuple[np.ndarray, float]:
        values = _positive(explainer.shap_values(encoded, check_additivity=False))
        return values @ groups, _base(explainer.expected_value)

    def attribute(frame: pd.DataFrame) -> tuple[np.ndarray, float]:
        return attribute_encoded(_dense(head.transform(frame)) if head is not None else _dense(frame.to_numpy()))

    return Attributor(
        method="tree",
        explainer="TreeExplainer",
        output="log-odds",
        columns=columns,
        max_rows=SAMPLE_ROWS,
        attribute=attribute,
        attribute_encoded=attribute_encoded,
    )


def _linear(final: Any, head: Any, groups: np.ndarray, columns: tuple[str, ...], background: pd.DataFrame) -> Attributor | str:
    coef = getattr(final, "coef_", None)
    if coef is None or getattr(coef, "ndim", 0) != 2 or coef.shape[0] != 1:
        return "its last step is not a binary linear model"
    shap = _shap()

    encoded_background = _dense(head.transform(background)) if head is not None else _dense(background.to_numpy())
    try:
        explainer = shap.LinearExplainer(final, encoded_background)
    except Exception as exc:
        return f"shap's LinearExplainer does not support {type(final).__name__} ({type(exc).__name__}: {exc})"

    def attribute(frame: pd.DataFrame) -> tuple[np.ndarray, float]:
        encoded = _dense(head.transform(frame)) if head is not None else _dense(frame.to_numpy())
        return _positive(explainer.shap_values(encoded)) @ groups, _base(explainer.expected_value)

    return Attributor(
        method="linear",
        explainer="LinearExplainer",
        output="log-odds",
        columns=columns,
        max_rows=SAMPLE_ROWS,
        attribute=attribute,
    )


def _kernel(model: Any, background: pd.DataFrame, columns: tuple[str, ...], *, seed: int) -> Attributor:
    """shap's KernelExplainer over the input columns; text columns travel as category codes, because shap
    computes with numbers. (The PermutationExplainer compiles numba code for ~15 s on first use in a process.)"""
    import numpy as np
    import pandas as pd

    from shipyard.checks.evaluation import positive_scores

    texts = {c: background[c].dtype for c in columns if not pd.api.types.is_numeric_dtype(background[c])}
    dtypes = {c: background[c].dtype for c in columns}
    categories: dict[str, pd.Index] = {c: pd.Index(background[c].dropna().unique()) for c in texts}

    def encode(frame: pd.DataFrame) -> np.ndarray:
        for column, known in categories.items():
            new = pd.Index(frame[column].dropna().unique()).difference(known)
            if len(new):
                categories[column] = known.append(new)
        return np.column_stack(
            [categories[c].get_indexer(frame[c]) if c in categories else frame[c].to_numpy(np.float64) for c in columns]
        ).astype(np.float64)

    def decode(codes: np.ndarray) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for i, column in enumerate(columns):
            if column in categories:
                index = codes[:, i].astype(np.intp)
                values = categories[column].to_numpy(dtype=object)[np.clip(index, 0, None)]
                data[column] = np.where(index < 0, None, values)
            else:
                data[column] = codes[:, i].astype(dtypes[column])
        return pd.DataFrame(data)

    encoded_background = encode(background)
    explainer = _shap().KernelExplainer(lambda codes: np.asarray(positive_scores(model, decode(codes))), encoded_background)

    def attribute(frame: pd.DataFrame) -> tuple[np.ndarray, float]:
        state = np.random.get_state()  # the explainer samples coalitions with numpy's global generator
        np.random.seed(seed)
        try:
            values = explainer.shap_values(encode(frame), nsamples=min(2 ** len(columns), 2 * len(columns) + 512), silent=True)
        finally:
            np.random.set_state(state)
        return _positive(values), _base(explainer.expected_value)

    return Attributor(
        method="kernel",
        explainer="KernelExplainer",
        output="probability",
        columns=columns,
        max_rows=AGNOSTIC_ROWS,
        attribute=attribute,
    )


def input_groups(head: Any, columns: list[str]) -> np.ndarray | None:
    """A 0/1 matrix (encoded columns × input columns) saying which input column each encoded column comes from;
    None when a step mixes columns (or hides how), so attributions cannot be summed back."""
    import numpy as np

    steps = [step for _, step in head.steps] if hasattr(head, "steps") else [head]
    groups = np.eye(len(columns))
    names = list(columns)
    for step in steps:
        if step is None or step == "passthrough":
            continue
        mapped = _step_groups(step, names)
        if mapped is None:
            return None
        step_groups, names = mapped
        groups = step_groups @ groups
    return groups


def _step_groups(step: Any, names: list[str]) -> tuple[np.ndarray, list[str]] | None:
    import numpy as np

    transformers = getattr(step, "transformers_", None)
    if transformers is None:
        try:
            out = [str(n) for n in step.get_feature_names_out(names)]
        except Exception:
            return None
        if len(out) == len(names):
            return np.eye(len(names)), out  # one output per input, in order (scalers, imputers)
        return _by_prefix(names, out, names)
    slices = step.output_indices_
    total = max((s.stop for s in slices.values()), default=0)
    groups = np.zeros((total, len(names)))
    known = list(getattr(step, "feature_names_in_", names))
    for name, transformer, selected in transformers:
        part = slices.get(name)
        if transformer == "drop" or part is None or part.stop == part.start:
            continue
        cols = _selected(selected, known)
        if cols is None or any(c not in names for c in cols):
            return None
        width = part.stop - part.start
        rows = range(part.start, part.stop)
        if len(cols) == 1:
            for row in rows:
                groups[row, names.index(cols[0])] = 1.0
        elif transformer == "passthrough" or (width == len(cols) and _one_to_one(transformer, cols)):
            for row, col in zip(rows, cols, strict=True):
                groups[row, names.index(col)] = 1.0
        else:
            try:
                out = [str(n) for n in transformer.get_feature_names_out(cols)]
            except Exception:
                return None
            mapped = _by_prefix(cols, out, names)
            if mapped is None:
                return None
            groups[part.start : part.stop] = mapped[0]
    out_names = [str(n) for n in step.get_feature_names_out()] if hasattr(step, "get_feature_names_out") else []
    return groups, out_names if len(out_names) == total else [f"x{i}" for i in range(total)]


def _selected(selected: Any, known: list[str]) -> list[str] | None:
    import numpy as np

    if isinstance(selected, str):
        return [selected]
    if isinstance(selected, slice):
        return known[selected]
    try:
        values = list(selected)
    except TypeError:
        return None
    if values and all(isinstance(v, (bool, np.bool_)) for v in values):
        return [c for c, keep in zip(known, values, strict=False) if keep]
    if all(isinstance(v, (int, np.integer)) for v in values):
        return [known[int(v)] for v in values]
    return [str(v) for v in values]


def _one_to_one(transformer: Any, cols: list[str]) -> bool:
    try:
        return [str(n) for n in transformer.get_feature_names_out(cols)] == cols
    except Exception:
        return False


def _by_prefix(cols: list[str], out: list[str], names: list[str]) -> tuple[np.ndarray, list[str]] | None:
    """Encoded names such as ``contract_type_monthly`` to the input column they start with (the longest that fits)."""
    import numpy as np

    groups = np.zeros((len(out), len(names)))
    for row, encoded in enumerate(out):
        fits = [c for c in cols if encoded == c or encoded.startswith(f"{c}_")]
        if not fits:
            return None
        groups[row, names.index(max(fits, key=len))] = 1.0
    return groups, out


# -- the evidence ---------------------------------------------------------------------------------------------


def mean_abs(values: np.ndarray, columns: Sequence[str]) -> dict[str, float]:
    import numpy as np

    means = np.abs(values).mean(axis=0) if len(values) else np.zeros(len(columns))
    return dict(sorted(((c, float(m)) for c, m in zip(columns, means, strict=True)), key=lambda kv: (-kv[1], kv[0])))


def _top(means: dict[str, float], count: int = TOP) -> list[dict[str, Any]]:
    total = sum(means.values()) or 1.0
    return [{"feature": f, "mean_abs": round(v, 6), "share": round(v / total, 4)} for f, v in list(means.items())[:count]]


def _by_value(values: np.ndarray, sample: pd.DataFrame, column: str, columns: Sequence[str]) -> dict[str, Any]:
    groups: dict[str, Any] = {}
    if column not in sample.columns:
        return groups
    raw = sample[column].to_numpy()
    for value in sorted(set(raw.tolist()), key=str):
        mask = raw == value
        groups[str(value)] = {"rows": int(mask.sum()), "top": _top(mean_abs(values[mask], columns))}
    return groups


def unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}


def explain(
    model: Any,
    holdout: pd.DataFrame,
    features: list[str],
    *,
    seed: int,
    slices: Sequence[str] = (),
    sensitive: Sequence[str] = (),
    champion: tuple[int, Any, list[str]] | None = None,
) -> dict[str, Any]:
    """The ``explanations`` evidence: mean |SHAP| per input column on a seeded holdout sample, by slice and by
    sensitive group, and the champion's ranking on the same rows (``champion``: version, model, its features)."""
    started = time.perf_counter()
    frame = holdout.reset_index(drop=True)
    try:
        explainer = attributor(model, frame[features].sample(min(BACKGROUND_ROWS, len(frame)), random_state=seed), seed=seed)
    except Unexplainable as exc:
        return {**unavailable(str(exc)), "sensitive": list(sensitive)}
    sample = frame.sample(min(explainer.max_rows, len(frame)), random_state=seed).reset_index(drop=True)
    try:
        values, base = explainer.explain(sample)
    except Exception as exc:  # the model or shap failing on these rows: evidence that says so, not a crash
        return {**unavailable(f"{explainer.explainer} failed: {type(exc).__name__}: {exc}"), "sensitive": list(sensitive)}
    means = mean_abs(values, explainer.columns)
    total = sum(means.values()) or 1.0
    found: dict[str, Any] = {
        "available": True,
        "method": explainer.method,
        "explainer": explainer.explainer,
        "output": explainer.output,
        "rows": len(sample),
        "seed": seed,
        "base_value": round(base, 6),
        "mean_abs": {f: round(v, 6) for f, v in means.items()},
        "share": {f: round(v / total, 4) for f, v in means.items()},
        "ranking": list(means),
        "top": _top(means),
        "sensitive": list(sensitive),
        "by_slice": {c: _by_value(values, sample, c, explainer.columns) for c in slices},
        "by_group": {c: _by_value(values, sample, c, explainer.columns) for c in sensitive},
        "champion": None,
    }
    if champion is not None:
        found["champion"] = _champion(champion, frame, sample, seed)
    found["seconds"] = round(time.perf_counter() - started, 3)
    return found


def _champion(champion: tuple[int, Any, list[str]], frame: pd.DataFrame, sample: pd.DataFrame, seed: int) -> dict[str, Any]:
    version, model, features = champion
    try:
        explainer = attributor(model, frame[features].sample(min(BACKGROUND_ROWS, len(frame)), random_state=seed), seed=seed)
        values, _ = explainer.explain(sample.head(explainer.max_rows))
    except Exception as exc:
        return {"version": version, "available": False, "reason": f"{type(exc).__name__}: {exc}"}
    means = mean_abs(values, explainer.columns)
    return {"version": version, "available": True, "method": explainer.method, "ranking": list(means), "top": _top(means)}


def rank_changes(ranking: list[str], champion_ranking: list[str], top: int) -> dict[str, int]:
    """How many places each feature of either top ``top`` moved (a feature the other model lacks ranks last + 1)."""
    union = list(dict.fromkeys([*ranking[:top], *champion_ranking[:top]]))

    def place(order: list[str], feature: str) -> int:
        return order.index(feature) + 1 if feature in order else len(order) + 1

    return {f: abs(place(ranking, f) - place(champion_ranking, f)) for f in union}
