"""Loading a registered version for serving: the model (checked by the registry), its input schema and fast paths."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from shipyard.domain.entities import ModelVersion
from shipyard.domain.errors import BackendUnavailable
from shipyard.serving.encoded import EncodedForest
from shipyard.serving.inputs import InputSchema, frame_of
from shipyard.serving.trees import Forest

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np

    from shipyard.checks.equivalence import Session
    from shipyard.registry import Registry


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedModel:
    name: str
    version: int
    model: Any
    schema: InputSchema
    load_seconds: float
    on_arrays: OnArrays | None = None  # how it reads a plain float array (see `array_model`); None: it gets a frame
    encoded: EncodedForest | None = None  # a one-hot pipeline answered without pandas (see `encoded_model`)
    onnx: Session | None = None  # the ONNX file the registration checked, run by ONNX Runtime (see `shipyard.serving.onnx`)
    runtime_reason: str = ""  # why the version got its runtime (the gateway logs it at load)
    task: str = "binary"  # binary, multiclass (answers a label and per-class probabilities) or regression (a value)
    classes: tuple[Any, ...] = ()  # a multiclass model's labels, in the order of its probability columns

    @property
    def runtime(self) -> str:
        """What answers the version's calls: numpy's tree walk, ONNX Runtime or scikit-learn."""
        if self.encoded is not None or (self.on_arrays is not None and self.on_arrays.forest is not None):
            return "numpy-trees"
        return "onnxruntime" if self.onnx is not None else "scikit-learn"

    @property
    def key(self) -> tuple[str, int]:
        return (self.name, self.version)

    @overload
    def predict(self, columns: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]: ...
    @overload
    def predict(self, columns: dict[str, Any], *, fast_only: bool) -> tuple[np.ndarray, np.ndarray] | None: ...

    def predict(self, columns: dict[str, Any], *, fast_only: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """Labels and positive-class scores for a batch given column by column (as `batch_columns` types them).

        ``fast_only``: None instead of a call to scikit-learn on a frame, when the fast path declines the batch.
        """
        import numpy as np

        if self.task != "binary":
            return self._predict_task(columns, fast_only=fast_only)
        proba = None
        if self.on_arrays is not None:
            rows = np.column_stack(list(columns.values())).astype(np.float64, copy=False)
            proba = np.asarray(self.on_arrays.predict_proba(rows))
        elif self.encoded is not None:
            proba = self.encoded.predict_proba(columns)  # None: a value only scikit-learn may judge
        elif self.onnx is not None:
            proba = self.onnx.predict_proba(columns)  # None: a value with no ONNX form (a missing text)
        if proba is None:
            if fast_only:
                return None
            proba = np.asarray(self.model.predict_proba(frame_of(columns)))
        scores = proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 else proba.max(axis=1)
        return (scores >= 0.5).astype(np.int64), scores.astype(np.float64)

    def _predict_task(self, columns: dict[str, Any], *, fast_only: bool) -> tuple[np.ndarray, np.ndarray] | None:
        """A regression's values (as predictions and scores), or a multiclass model's labels and probability rows."""
        import numpy as np

        answered = None
        if self.on_arrays is not None and self.task == "multiclass":
            rows = np.column_stack(list(columns.values())).astype(np.float64, copy=False)
            answered = np.asarray(self.on_arrays.predict_proba(rows))
        elif self.onnx is not None:
            answered = self.onnx.predict_proba(columns)  # a regressor's session answers its values, one column
        if answered is None:
            if fast_only:
                return None
            frame = frame_of(columns)
            answered = np.asarray(self.model.predict_proba(frame) if self.task == "multiclass" else self.model.predict(frame))
        if self.task == "regression":
            values = answered.reshape(len(answered), -1)[:, 0].astype(np.float64)
            return values, values
        labels = np.asarray(self.classes, dtype=object)[answered.argmax(axis=1)]
        return labels, answered.astype(np.float64)

    def quick(self, rows: int) -> bool:
        """Whether a predict call on ``rows`` rows costs less than handing it to a thread does."""
        return rows <= self.quick_rows

    @property
    def quick_rows(self) -> int:
        """The most rows a call answers in a fraction of a millisecond (0: none): numpy's tree walk up to its
        size limit, ONNX Runtime up to `ONNX_QUICK_ROWS`; scikit-learn on a frame never."""
        if self.encoded is not None:
            return self.encoded.forest.quick_rows
        if self.on_arrays is not None:
            return 0 if self.on_arrays.forest is None else self.on_arrays.forest.quick_rows
        return ONNX_QUICK_ROWS if self.onnx is not None else 0

    @overload
    def timed_predict(self, columns: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, float]: ...
    @overload
    def timed_predict(self, columns: dict[str, Any], *, fast_only: bool) -> tuple[np.ndarray, np.ndarray, float] | None: ...

    def timed_predict(self, columns: dict[str, Any], *, fast_only: bool = False) -> tuple[np.ndarray, np.ndarray, float] | None:
        """`predict` and the CPU seconds it took on this thread: unlike wall time, not inflated by other threads or
        processes, so versions answered on the event loop and in a predict thread compare alike (the rollout's
        model-time check)."""
        started = time.thread_time()
        answered = self.predict(columns, fast_only=fast_only)
        if answered is None:
            return None
        return *answered, time.thread_time() - started


NUMERIC = frozenset({"double", "float", "long", "integer"})
# ONNX Runtime answers the linear pipeline's 64 rows in ~0.1 ms (benchmarks/onnx_serving.py): less than a thread hand-off.
ONNX_QUICK_ROWS = 64


@dataclass(frozen=True, slots=True)
class OnArrays:
    """How a numeric model answers a float array: its copy without column names, or for a small
    batch its trees walked by numpy (`shipyard.serving.trees`) where it has them."""

    plain: Any
    forest: Forest | None = None

    def walks(self, rows: int) -> bool:
        """Whether ``rows`` rows are answered by the numpy walk (a fraction of a millisecond)."""
        return self.forest is not None and self.forest.walks(rows)

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        import numpy as np

        forest = self.forest
        if forest is not None and forest.walks(len(rows)):
            return forest.predict_proba(rows)
        return np.asarray(self.plain.predict_proba(rows))


def array_model(model: Any, schema: InputSchema, example: dict[str, list[Any]]) -> OnArrays | None:
    """How ``model`` can answer a float array in the schema's column order, or None.

    Handing scikit-learn a one-row frame costs more than its trees do (pandas checks,
    names, dtypes: about half of a 20-feature gradient boosting's predict call). For a
    model fitted on a frame of numeric columns exactly in the schema's order, a copy
    forgets the column names it was fitted with (so scikit-learn does not warn that an
    array has none), and is used only when it answers ``example`` as the model does on a
    frame (to rounding), without a warning. Anything else (a ColumnTransformer selecting
    by name, a meta-estimator whose parts kept their names) keeps the frame. A gradient
    boosting's numpy walk is used only when it matches scikit-learn bit for bit on the
    example and on rows made to reach its leaves.
    """
    import copy
    import warnings

    import numpy as np

    names = [f.name for f in schema.fields]
    if any(f.type not in NUMERIC for f in schema.fields) or list(getattr(model, "feature_names_in_", ())) != names:
        return None
    plain = copy.deepcopy(model)
    for part in [plain, *(step for _, step in getattr(plain, "steps", ()))]:
        if "feature_names_in_" in vars(part):
            del part.feature_names_in_
    try:
        # Typed as the gateway types a batch (`batch_columns`): integers stay integers in the frame.
        columns = {
            f.name: np.asarray(example[f.name], dtype=np.float64 if f.type in ("double", "float") else np.int64)
            for f in schema.fields
        }
        rows = np.column_stack(list(columns.values())).astype(np.float64)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            expected = np.asarray(model.predict_proba(frame_of(columns)))
            answered = np.asarray(plain.predict_proba(rows))
    except Exception:
        return None
    # Another thread's warning may land here too (the filter is process-wide): then keep the frame, to be safe.
    # Equal up to rounding: a frame and an array may reach BLAS in different memory layouts.
    if caught or expected.shape != answered.shape or not np.allclose(expected, answered, rtol=1e-9, atol=1e-12):
        return None
    return OnArrays(plain=plain, forest=_checked_forest(plain, rows))


def _checked_forest(model: Any, example: np.ndarray) -> Forest | None:
    import numpy as np

    forest = Forest.of(model)
    if forest is None:
        return None
    try:
        for rows in (example, forest.probe()):
            if not np.array_equal(forest.predict_proba(rows), model.predict_proba(rows)):
                return None
    except Exception:
        return None
    return forest


def encoded_model(model: Any, schema: InputSchema, example: dict[str, list[Any]]) -> EncodedForest | None:
    """The one-hot pipeline's fast path (`shipyard.serving.encoded`), or None.

    Used only when it answers bit for bit as the pipeline does on a frame, without a
    warning, on ``example`` and on probe rows: every category seen (and an unseen one
    where the encoder ignores them), numbers on and just above the trees' thresholds.
    """
    import warnings

    import numpy as np

    encoded = EncodedForest.of(model)
    if encoded is None:
        return None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for values in (example, encoded.probe()):
                columns = _typed(schema, values)
                answered = encoded.predict_proba(columns)
                expected = np.asarray(model.predict_proba(frame_of(columns)))
                if answered is None or not np.array_equal(answered, expected):
                    return None
    except Exception:
        return None
    return None if caught else encoded


def _typed(schema: InputSchema, values: dict[str, list[Any]]) -> dict[str, Any]:
    """Columns typed as the gateway types a request's (`batch_columns`); whole numbers for integer columns."""
    import math

    from shipyard.serving.inputs import Decoded, batch_columns

    count = len(next(iter(values.values())))
    fixed: dict[str, list[Any]] = {}
    for field in schema.fields:
        column = values[field.name]
        if field.type in ("long", "integer"):
            # Thresholds on integer columns sit between integers: alternate the integers below and above.
            column = [math.floor(v) if i % 2 else math.ceil(v) for i, v in enumerate(column)]
        fixed[field.name] = column
    return batch_columns([Decoded(columns=fixed, rows=count)], schema)


def load(
    version: ModelVersion,
    registry: Registry,
    *,
    categories: dict[str, list[str]] | None = None,
    equivalence: Mapping[str, Any] | None = None,
    fast: bool = True,
) -> LoadedModel:
    """Load one version, from files the registry checked against the digests recorded at registration.

    ``equivalence`` is the version's `serving_equivalence` evidence: with an agreeing ONNX file the version is
    served by ONNX Runtime, unless numpy walks its trees (exact, and faster still).
    ``fast=False`` pins the model's own predict_proba (`shipyard serve --runtime scikit-learn`).
    Raises the registry's TamperedModel (files changed) or UnverifiedModel (no digests recorded).
    """
    from shipyard.serving.onnx import onnx_model

    started = time.perf_counter()
    files = registry.load_version(version)
    signature = (files.mlmodel.get("signature") or {}).get("inputs")
    if not signature:
        raise BackendUnavailable(
            f"{version.subject} has no input signature, so requests cannot be validated",
            hint="Log the model with a signature (the Shipyard pipeline always does).",
        )
    schema = InputSchema.from_mlflow_signature(signature)
    if categories:
        schema = schema.with_categories(categories)
    model = files.model
    task, classes = model_task(model)
    example = _example(files.input_example, schema)
    on_arrays = array_model(model, schema, example) if fast and task != "regression" else None
    encoded = None if on_arrays is not None or not fast else encoded_model(model, schema, example)
    onnx, reason = None, "the exact tree walk"
    if not fast:
        reason = "pinned by the gateway's runtime setting"
    elif encoded is None and (on_arrays is None or on_arrays.forest is None):
        onnx, reason = onnx_model(files.onnx, equivalence, model, _typed_example(schema, example))
        if onnx is not None:
            on_arrays = None
    return LoadedModel(
        name=version.model,
        version=version.version,
        model=model,
        schema=schema,
        load_seconds=time.perf_counter() - started,
        on_arrays=on_arrays,
        encoded=encoded,
        onnx=onnx,
        runtime_reason=reason,
        task=task,
        classes=classes,
    )


def model_task(model: Any) -> tuple[str, tuple[Any, ...]]:
    """What a loaded model answers: a classifier's probabilities (two classes: binary), or a regressor's values."""
    if not hasattr(model, "predict_proba"):
        return "regression", ()
    classes = tuple(getattr(model, "classes_", ()))
    if len(classes) > 2:
        return "multiclass", tuple(c.item() if hasattr(c, "item") else c for c in classes)
    return "binary", classes


def _typed_example(schema: InputSchema, example: dict[str, list[Any]]) -> dict[str, Any] | None:
    """The example typed as the gateway types a request's columns; None when it does not fit the schema."""
    from shipyard.serving.inputs import Decoded, batch_columns

    try:
        return batch_columns([Decoded(columns=example, rows=len(next(iter(example.values()), [])))], schema)
    except (TypeError, ValueError):
        return None


def _example(logged: Any, schema: InputSchema) -> dict[str, list[Any]]:
    """The rows logged with the model as its input example, column by column; a row of ones when it has none."""
    try:
        columns, rows = logged["columns"], logged["data"]
        return {name: [row[columns.index(name)] for row in rows] for name in (f.name for f in schema.fields)}
    except (ValueError, KeyError, TypeError, IndexError):
        return {f.name: [1.0] for f in schema.fields}
