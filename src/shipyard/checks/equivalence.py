"""Serving equivalence: the model converted to ONNX, kept only when ONNX Runtime answers as scikit-learn does.

At registration the scikit-learn model is converted with skl2onnx (numeric columns as
float32, which its converters type-check, text columns as strings) and both answer the
holdout. The conversion is kept only when every row gets the same class and no class
probability differs by more than `TOLERANCE`; otherwise the version is served as it is,
and the evidence says why (the converter's error, or the size of the disagreement).

The same feeding code (`Session`) runs the ONNX model here and in the gateway, so what
was checked is what is served.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

TOLERANCE = 1e-4  # the largest class-probability difference from scikit-learn that is still the same model
BUDGET_SECONDS = 2.0  # conversion and check for a churn-sized model (benchmarks/onnx_serving.py measures it)
REASON_CHARS = 400
STACKED_KEY = "shipyard.stacked_columns"  # metadata of a one-input graph: the columns it stacks, one per line


@dataclass(frozen=True, slots=True, kw_only=True)
class Equivalence:
    onnx: bytes | None  # the converted model, only when it agreed
    evidence: dict[str, Any]  # the `serving_equivalence` evidence kind


@dataclass(frozen=True, slots=True)
class Session:
    """An ONNX Runtime session over a converted model and how to feed it column by column."""

    session: Any
    inputs: tuple[tuple[str, bool], ...]  # input name, whether it takes strings
    probabilities: str  # the output holding class probabilities
    stacked: tuple[str, ...] = ()  # a one-input graph (a bare LightGBM/XGBoost model): its columns, in order

    @classmethod
    def of(cls, data: bytes) -> Session:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread: the gateway gives each version one predict thread, and one row is microseconds of work.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        inputs = tuple((i.name, i.type == "tensor(string)") for i in session.get_inputs())
        outputs = [o.name for o in session.get_outputs()]
        probabilities = "probabilities" if "probabilities" in outputs else outputs[-1]
        stacked = session.get_modelmeta().custom_metadata_map.get(STACKED_KEY)
        return cls(
            session=session, inputs=inputs, probabilities=probabilities, stacked=tuple(stacked.split("\n")) if stacked else ()
        )

    def feed(self, columns: dict[str, Any]) -> dict[str, np.ndarray] | None:
        """The session's inputs from typed columns; None when a value has no ONNX form (a missing text, a datetime)."""
        import numpy as np

        if self.stacked:
            arrays = [np.asarray(columns.get(name)) for name in self.stacked]
            if any(a.dtype.kind not in "biuf" for a in arrays):
                return None
            return {self.inputs[0][0]: np.column_stack(arrays).astype(np.float32)}
        feed = {}
        for name, text in self.inputs:
            values = columns.get(name)
            if values is None:
                return None
            if text:
                array = np.asarray(values, dtype=object)
                if not all(isinstance(v, str) for v in array):
                    return None
            else:
                array = np.asarray(values)
                if array.dtype.kind not in "biuf":
                    return None
                array = array.astype(np.float32)
            feed[name] = array.reshape(-1, 1)
        return feed

    def predict_proba(self, columns: dict[str, Any]) -> np.ndarray | None:
        """Class probabilities as float64, or None when the columns cannot be fed (see `feed`)."""
        import numpy as np

        feed = self.feed(columns)
        if feed is None:
            return None
        (proba,) = self.session.run([self.probabilities], feed)
        return np.asarray(proba, dtype=np.float64)


def input_types(frame: pd.DataFrame) -> list[tuple[str, Any]] | str:
    """skl2onnx's initial types for the frame's columns, or why a column has none."""
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    types: list[tuple[str, Any]] = []
    for name, dtype in frame.dtypes.items():
        if dtype.kind in "biuf":
            types.append((str(name), FloatTensorType([None, 1])))
        elif dtype.kind in "OSU" or str(dtype) in ("string", "str", "category"):
            types.append((str(name), StringTensorType([None, 1])))
        else:
            return f"column {name!r} is {dtype}, which has no ONNX input here"
    return types


def columns_of(frame: pd.DataFrame) -> dict[str, Any]:
    """The frame's columns as arrays, the form the gateway hands a model."""
    import numpy as np

    return {str(name): np.asarray(frame[name].to_numpy()) for name in frame.columns}


def check(model: Any, holdout: pd.DataFrame) -> Equivalence:
    """Convert ``model`` to ONNX and compare its answers on ``holdout`` (the model's feature columns) with scikit-learn's."""
    started = time.perf_counter()
    names = [str(n) for n in getattr(model, "feature_names_in_", ())]
    if sorted(names) == sorted(str(c) for c in holdout.columns):
        holdout = holdout[names]  # the inputs in the model's own order: one model, one ONNX file, however it was registered
    found: dict[str, Any] = {"converted": False, "rows": len(holdout), "tolerance": TOLERANCE}
    onnx, verdict = _converted_and_compared(model, holdout, found)
    found["reason"] = verdict
    if onnx is not None and verdict is None:
        import hashlib

        found["converted"] = True
        found["onnx_sha256"] = hashlib.sha256(onnx).hexdigest()
    found["runtime"] = "onnxruntime" if found["converted"] else "scikit-learn"
    found["seconds"] = round(time.perf_counter() - started, 4)
    return Equivalence(onnx=onnx if found["converted"] else None, evidence=found)


def _converted_and_compared(model: Any, holdout: pd.DataFrame, found: dict[str, Any]) -> tuple[bytes | None, str | None]:
    """The ONNX bytes and None when they agree; otherwise what went wrong. Fills ``found`` with what was observed."""
    import numpy as np

    try:
        import onnxruntime
        import skl2onnx
    except ImportError as exc:
        return None, f"the converter is not installed: {exc}"
    from shipyard.checks import boosting_onnx

    boosting = boosting_onnx.register()
    found["converter"] = f"skl2onnx {skl2onnx.__version__}, onnxruntime {onnxruntime.__version__}" + (
        f" (with onnxmltools for {', '.join(boosting)})" if boosting else ""
    )
    if len(holdout) == 0:
        return None, "the holdout has no rows to compare on"
    types = input_types(holdout)
    if isinstance(types, str):
        return None, types
    try:
        classifier = hasattr(model, "predict_proba")
        converted = _convert(model, types, classifier=classifier)
        data = converted.SerializeToString()
    except Exception as exc:  # skl2onnx raises anything from RuntimeError to TypeError on what it cannot convert
        return None, _short(f"skl2onnx cannot convert the model: {type(exc).__name__}: {exc}")
    try:
        session = Session.of(data)
        answered = session.predict_proba(columns_of(holdout))
    except Exception as exc:  # onnxruntime's own errors (invalid graph, type mismatch) share no base class
        return None, _short(f"onnxruntime cannot run the converted model: {type(exc).__name__}: {exc}")
    if answered is None:
        return None, "the holdout's columns cannot be fed to the converted model"
    if not classifier:
        return data, _same_predictions(np.asarray(model.predict(holdout), dtype=np.float64), answered, found)
    expected = np.asarray(model.predict_proba(holdout), dtype=np.float64)
    if answered.shape != expected.shape:
        return None, f"the converted model answers {answered.shape[1:]} probabilities per row, scikit-learn {expected.shape[1:]}"
    difference = float(np.abs(answered - expected).max())
    differing = int(np.count_nonzero(_classes(answered) != _classes(expected)))
    found["max_probability_difference"] = difference
    found["classes_differing"] = differing
    if differing:
        return data, f"{differing} of {len(holdout)} rows get another class from the converted model"
    if not difference <= TOLERANCE:
        return data, f"probabilities differ by up to {difference:.3g}, more than the tolerance {TOLERANCE:g}"
    return data, None


def _convert(model: Any, types: list[tuple[str, Any]], *, classifier: bool) -> Any:
    """skl2onnx's graph of the model: one input per column, as the gateway feeds them; a bare LightGBM or XGBoost
    model takes one input of every column instead, and the graph records their order (``STACKED_KEY``)."""
    from skl2onnx import get_latest_tested_opset_version, to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    # onnxmltools' tree converters (LightGBM, XGBoost) write the ai.onnx.ml domain at version 3.
    boosting = {"": get_latest_tested_opset_version(), "ai.onnx.ml": 3}
    attempts: list[tuple[Any, list[tuple[str, Any]], Any]] = [(model, types, None), (model, types, boosting)]
    if all(isinstance(t, FloatTensorType) for _, t in types) and len(types) > 1:
        single = [("input", FloatTensorType([None, len(types)]))]
        bare = _unnamed(model)
        attempts += [(bare, single, None), (bare, single, boosting)]
    failure: Exception | None = None
    for candidate, inputs, opsets in attempts:
        options = {id(candidate): {"zipmap": False}} if classifier else None
        try:
            with warnings.catch_warnings():
                # onnx 1.23 deprecates bool list attributes, which skl2onnx's tree converters write: a process that
                # turns warnings into errors (`python -W error`, a test runner) must still get the same conversion.
                warnings.filterwarnings("ignore", category=DeprecationWarning, module="onnx")
                converted = to_onnx(candidate, initial_types=inputs, options=options, target_opset=opsets)
        except Exception as exc:  # skl2onnx raises anything from RuntimeError to its own exceptions
            if "ai.onnx.ml" in str(exc) or "at most 1 input" in str(exc):
                failure = exc
                continue
            raise
        if inputs is not types:
            entry = converted.metadata_props.add()
            entry.key, entry.value = STACKED_KEY, "\n".join(name for name, _ in types)
        return converted
    assert failure is not None
    raise failure


def _unnamed(model: Any) -> Any:
    """An XGBoost model's copy without feature names (onnxmltools reads trees split on f0, f1, …); others as they are."""
    if not hasattr(model, "get_booster"):
        return model
    import copy

    plain = copy.deepcopy(model)
    plain.get_booster().feature_names = None
    return plain


def _same_predictions(expected: np.ndarray, answered: np.ndarray, found: dict[str, Any]) -> str | None:
    """A regressor's agreement: predictions within ``TOLERANCE`` of the largest magnitude (float32 rounds big values)."""
    import numpy as np

    expected = expected.reshape(len(expected), -1)
    if answered.shape != expected.shape:
        return f"the converted model answers {answered.shape[1:]} values per row, the model {expected.shape[1:]}"
    scale = max(1.0, float(np.abs(expected).max()))
    difference = float(np.abs(answered - expected).max())
    found["max_prediction_difference"] = difference
    if not difference <= TOLERANCE * scale:
        return f"predictions differ by up to {difference:.3g}, more than the tolerance {TOLERANCE * scale:.3g}"
    return None


def _classes(proba: np.ndarray) -> np.ndarray:
    """The class the gateway answers: the positive score at 0.5 for two classes, the most probable one beyond."""
    classes: np.ndarray = proba[:, 1] >= 0.5 if proba.ndim == 2 and proba.shape[1] == 2 else proba.argmax(axis=1)
    return classes


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"
