"""The reference profile: what drift reports compare live data with, built once from the training data.

Per numeric feature it keeps summary statistics, right-closed quantile bins with their counts
(for PSI and the binned Jensen–Shannon distance) and the reference distribution for KS and
Wasserstein: exactly (distinct values and counts) when the feature has at most ``sample_size``
distinct values, else a systematic sample of ``sample_size`` order statistics. Per categorical
feature it keeps the category counts; for the model it keeps the holdout score distribution.

It is saved as one JSON file (gzip when the name ends in .gz) and logged as an MLflow artifact.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from shipyard.domain.errors import InvalidSpec, NotFound
from shipyard.monitoring import stats
from shipyard.monitoring.stats import FloatArray, IntArray

FORMAT = "shipyard.drift-profile/1"
Category: TypeAlias = str | int | float | bool

# 20,000 order statistics put the sampled reference ECDF within 1/20,000 of the full one (the
# KS statistic moves by less than that) for about 430 kB of JSON (150 kB gzipped) per continuous feature.
DEFAULT_SAMPLE_SIZE = 20_000
DEFAULT_BINS = 10


@dataclass(frozen=True, slots=True, eq=False)
class NumericProfile:
    """A numeric feature (or the score) in the reference data; statistics skip NaN and ±inf."""

    kind: ClassVar[str] = "numeric"
    count: int  # finite values
    missing: int  # NaN, None or ±inf
    mean: float | None  # None when the reference has no finite value
    std: float | None  # population standard deviation (ddof=0), as Evidently normalizes Wasserstein with
    min: float | None
    max: float | None
    edges: FloatArray  # inner edges of the right-closed bins (-inf, e0], (e0, e1], …, (e_last, inf)
    bin_counts: IntArray  # reference count per bin, len(edges) + 1 of them, all positive
    values: FloatArray  # sorted distinct values of the reference, or of its sample
    weights: IntArray  # how often each of ``values`` occurs

    @property
    def sampled(self) -> bool:
        """Whether ``values``/``weights`` are a sample rather than the whole reference."""
        return int(self.weights.sum()) < self.count

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NumericProfile) and self.to_dict() == other.to_dict()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe; the two long arrays are base64 of little-endian float64/int64 so they round-trip bit for bit."""
        return {
            "type": self.kind,
            "count": self.count,
            "missing": self.missing,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "edges": [float(edge) for edge in self.edges],
            "bin_counts": [int(count) for count in self.bin_counts],
            "values": _encode(self.values, "<f8"),
            "weights": _encode(self.weights, "<i8"),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericProfile:
        """Inverse of ``to_dict``; raises ``InvalidSpec`` when the data is inconsistent."""
        count, missing = _count(data, "count"), _count(data, "missing")
        mean, std, low, high = (_optional_float(data, key) for key in ("mean", "std", "min", "max"))
        edges = np.asarray([_number(value, "edges") for value in _list(data, "edges")], dtype=np.float64)
        bins = np.asarray([_integer(value, "bin_counts") for value in _list(data, "bin_counts")], dtype=np.int64)
        values = _decode(data.get("values"), "<f8", "values")
        weights = _decode(data.get("weights"), "<i8", "weights")
        if count and (None in (mean, std, low, high) or len(bins) != len(edges) + 1 or int(bins.sum()) != count):
            raise InvalidSpec("a numeric feature's summary, edges and bin counts disagree with its count")
        if len(values) != len(weights) or (count and not len(values)) or int(weights.sum()) > count:
            raise InvalidSpec("a numeric feature's values and weights disagree")
        if (np.diff(values) <= 0).any() or (np.diff(edges) <= 0).any() or (weights <= 0).any() or (bins < 0).any():
            raise InvalidSpec("a numeric feature's values or edges are not increasing, or a count is not positive")
        return cls(count, missing, mean, std, low, high, edges=edges, bin_counts=bins, values=values, weights=weights)


@dataclass(frozen=True, slots=True)
class CategoricalProfile:
    """A categorical feature in the reference data: every category seen and its count, most frequent first."""

    kind: ClassVar[str] = "categorical"
    count: int  # non-missing values
    missing: int
    categories: tuple[Category, ...]
    counts: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe; categories keep their JSON type (string, integer, float or boolean)."""
        return {
            "type": self.kind,
            "count": self.count,
            "missing": self.missing,
            "categories": list(self.categories),
            "counts": list(self.counts),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalProfile:
        """Inverse of ``to_dict``; raises ``InvalidSpec`` when the data is inconsistent."""
        categories = _list(data, "categories")
        counts = tuple(_integer(value, "counts") for value in _list(data, "counts"))
        if any(not isinstance(category, str | int | float) for category in categories):
            raise InvalidSpec("a category is not a string, number or boolean")
        count = _count(data, "count")
        if len(categories) != len(counts) or sum(counts) != count or any(c <= 0 for c in counts):
            raise InvalidSpec("a categorical feature's categories and counts disagree")
        return cls(count, _count(data, "missing"), tuple(categories), counts)


FeatureProfile: TypeAlias = NumericProfile | CategoricalProfile


@dataclass(frozen=True, slots=True)
class Profile:
    """The reference profile of one model version."""

    features: dict[str, FeatureProfile]
    score: NumericProfile | None
    rows: int
    format: ClassVar[str] = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)  # free-form provenance (e.g. run id), kept as is
    # A multiclass model's holdout probability of each class, by the class's index in its label set.
    class_scores: dict[str, NumericProfile] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (no NaN or infinity); ``Profile.from_dict`` restores an equal profile."""
        data = {
            "format": FORMAT,
            "rows": self.rows,
            "features": {name: feature.to_dict() for name, feature in self.features.items()},
            "score": None if self.score is None else self.score.to_dict(),
            "extra": self.extra,
        }
        if self.class_scores:  # absent for other tasks, as in profiles written before it
            data["class_scores"] = {index: score.to_dict() for index, score in self.class_scores.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        """Inverse of ``to_dict``; raises ``InvalidSpec`` naming what is wrong."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise InvalidSpec(f"not a drift profile: expected format {FORMAT!r}, found {found!r}")
        features: dict[str, FeatureProfile] = {}
        raw_features = data.get("features")
        if not isinstance(raw_features, Mapping):
            raise InvalidSpec("a drift profile needs a 'features' mapping")
        for name, raw in raw_features.items():
            try:
                features[name] = _feature_from_dict(raw)
            except InvalidSpec as exc:
                raise InvalidSpec(f"feature {name!r}: {exc.message}") from None
        raw_score = data.get("score")
        try:
            score = None if raw_score is None else NumericProfile.from_dict(_mapping(raw_score, "score"))
        except InvalidSpec as exc:
            raise InvalidSpec(f"score: {exc.message}") from None
        extra = data.get("extra", {})
        if not isinstance(extra, dict):
            raise InvalidSpec("a drift profile's 'extra' must be a mapping")
        raw_classes = data.get("class_scores") or {}
        try:
            class_scores = {
                str(index): NumericProfile.from_dict(_mapping(raw, f"class_scores.{index}"))
                for index, raw in _mapping(raw_classes, "class_scores").items()
            }
        except InvalidSpec as exc:
            raise InvalidSpec(f"class_scores: {exc.message}") from None
        return cls(features=features, score=score, rows=_count(data, "rows"), extra=extra, class_scores=class_scores)


def build_profile(
    frame: pd.DataFrame,
    *,
    categorical: Sequence[str] | None = None,
    scores: ArrayLike | None = None,
    class_scores: ArrayLike | None = None,
    bins: int = DEFAULT_BINS,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
) -> Profile:
    """Profile the training (or holdout) frame, one entry per column, plus the holdout ``scores`` if given.

    Columns of object, category, string or bool dtype are categorical and numeric ones numeric;
    ``categorical``, when given, is the complete list of categorical columns and every other column
    must be numeric. NaN and None (and ±inf in numeric columns) count as missing and stay out of
    the statistics. ``seed`` sets where the systematic sample starts, for features with more than
    ``sample_size`` distinct values. ``class_scores`` (rows × classes) profiles each class's probability.
    """
    if bins < 2:
        raise InvalidSpec(f"bins must be at least 2, got {bins}")
    if sample_size < 2:
        raise InvalidSpec(f"sample_size must be at least 2, got {sample_size}")
    names = list(frame.columns)
    if any(not isinstance(name, str) for name in names) or len(set(names)) != len(names):
        raise InvalidSpec("profile columns must have unique string names", hint=f"Columns: {names!r}.")
    if categorical is not None:
        unknown = [name for name in categorical if name not in names]
        if unknown:
            raise InvalidSpec(f"categorical names columns the frame does not have: {', '.join(map(repr, unknown))}")
    rng = np.random.default_rng(seed)
    features: dict[str, FeatureProfile] = {}
    for name in names:
        column = frame[name]
        is_categorical = is_categorical_dtype(column.dtype) if categorical is None else name in categorical
        if is_categorical:
            features[name] = categorical_profile(column)
        else:
            features[name] = numeric_profile(numeric_values(column, name), bins=bins, sample_size=sample_size, rng=rng)
    score = None
    if scores is not None:
        score = numeric_profile(score_values(scores), bins=bins, sample_size=sample_size, rng=rng)
    per_class: dict[str, NumericProfile] = {}
    if class_scores is not None:  # rows × classes: each class's probability
        matrix = np.asarray(class_scores, dtype=float)
        for index in range(matrix.shape[1]):
            per_class[str(index)] = numeric_profile(matrix[:, index], bins=bins, sample_size=sample_size, rng=rng)
    return Profile(features=features, score=score, rows=len(frame), class_scores=per_class)


def numeric_profile(
    values: ArrayLike, *, bins: int = DEFAULT_BINS, sample_size: int = DEFAULT_SAMPLE_SIZE, rng: np.random.Generator | None = None
) -> NumericProfile:
    """Profile one numeric column given as floats (NaN for missing)."""
    ordered, missing = stats.finite_sorted(values)
    count = len(ordered)
    if count == 0:
        empty = np.empty(0)
        return NumericProfile(
            0, missing, None, None, None, None, empty, np.zeros(1, dtype=np.int64), empty, np.empty(0, dtype=np.int64)
        )
    distinct, weights = stats.support(ordered)
    if len(distinct) > sample_size:
        # Systematic sample: order statistics at ranks floor((i + u)·N/m), u uniform in [0, 1). The
        # sample ECDF is then ceil(m·F - u)/m, within 1/m of the reference ECDF everywhere.
        start = (rng or np.random.default_rng(0)).random()
        ranks = np.minimum(np.floor((np.arange(sample_size) + start) * (count / sample_size)).astype(np.int64), count - 1)
        distinct, weights = stats.support(ordered[ranks])
    edges = stats.quantile_edges(ordered, bins)
    return NumericProfile(
        count=count,
        missing=missing,
        mean=float(np.mean(ordered)),
        std=float(np.std(ordered)),
        min=float(ordered[0]),
        max=float(ordered[-1]),
        edges=edges,
        bin_counts=stats.bin_counts(edges, ordered),
        values=distinct,
        weights=weights,
    )


def categorical_profile(column: pd.Series) -> CategoricalProfile:
    """Profile one categorical column: category counts, most frequent first (ties in text order)."""
    counts = category_counts(column)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], type(item[0]).__name__, str(item[0])))
    missing = int(column.isna().sum())
    return CategoricalProfile(
        count=sum(counts.values()),
        missing=missing,
        categories=tuple(category for category, _ in ordered),
        counts=tuple(count for _, count in ordered),
    )


def category_counts(column: pd.Series) -> dict[Category, int]:
    """Non-missing category counts with keys as JSON-friendly Python values (see ``as_category``)."""
    tallies = column.value_counts(dropna=True, sort=False)
    counts: dict[Category, int] = {}
    for key, count in zip(tallies.index.tolist(), tallies.to_numpy().tolist(), strict=True):
        if count:  # a categorical dtype lists its unused categories with count 0
            category = as_category(key)
            counts[category] = counts.get(category, 0) + int(count)
    return counts


def as_category(value: object) -> Category:
    """Booleans, integers, finite floats and strings stay as they are; anything else becomes its text."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating) and math.isfinite(value):
        return float(value)
    return value if isinstance(value, str) else str(value)


def is_categorical_dtype(dtype: object) -> bool:
    """Object, category, string and bool dtypes are categorical."""
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def numeric_values(column: pd.Series, name: str) -> FloatArray:
    """A numeric column as float64 with NaN for missing; ``InvalidSpec`` if it does not hold numbers."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_complex_dtype(column.dtype):
        return np.asarray(column.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    try:
        return np.asarray(pd.to_numeric(column, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    except (ValueError, TypeError):
        raise InvalidSpec(
            f"column {name!r} should be numeric but holds {column.dtype} values that are not numbers",
            hint="Fix the column's type, or profile it as categorical (build_profile(..., categorical=[...])).",
        ) from None


def score_values(scores: ArrayLike) -> FloatArray:
    """Model scores as a flat float64 array: one score per row (a single column is accepted)."""
    array = np.asarray(scores)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidSpec(f"scores must be one value per row; got an array of shape {array.shape}")
    try:
        return np.asarray(array, dtype=np.float64)
    except (ValueError, TypeError):
        raise InvalidSpec(f"scores must be numbers; got {array.dtype} values") from None


def save_profile(profile: Profile, path: Path) -> None:
    """Write the profile as one JSON file, gzip-compressed when the name ends in .gz; replaces atomically."""
    data = json.dumps(profile.to_dict(), allow_nan=False, separators=(",", ":")).encode()
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_profile(path: Path) -> Profile:
    """Read a profile written by ``save_profile`` (plain or gzip JSON, told apart by content).

    A missing file raises ``NotFound``; an unreadable, corrupt or foreign one ``InvalidSpec``.
    """
    hint = "Rebuild it from the training data with build_profile() and save_profile(), or fetch the artifact again."
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"drift profile {path} does not exist", hint=hint) from None
    except OSError as exc:
        raise InvalidSpec(f"drift profile {path} cannot be read: {exc.strerror or exc}", hint=hint) from None
    try:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        raw = json.loads(data)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidSpec(f"drift profile {path} is corrupt: {exc}", hint=hint) from None
    try:
        return Profile.from_dict(raw)
    except InvalidSpec as exc:
        raise InvalidSpec(f"drift profile {path} is malformed: {exc.message}", hint=hint) from None


def _feature_from_dict(raw: object) -> FeatureProfile:
    data = _mapping(raw, "feature")
    if data.get("type") == NumericProfile.kind:
        return NumericProfile.from_dict(data)
    if data.get("type") == CategoricalProfile.kind:
        return CategoricalProfile.from_dict(data)
    raise InvalidSpec(f"unknown feature type {data.get('type')!r}; expected numeric or categorical")


def _encode(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _decode(raw: object, dtype: str, key: str) -> np.ndarray:
    if not isinstance(raw, str):
        raise InvalidSpec(f"{key!r} must be a base64 string")
    try:
        data = base64.b64decode(raw, validate=True)
    except ValueError:
        raise InvalidSpec(f"{key!r} is not valid base64") from None
    if len(data) % 8:
        raise InvalidSpec(f"{key!r} does not hold whole 8-byte numbers")
    array = np.frombuffer(data, dtype=dtype).astype(dtype[1:])
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidSpec(f"{key!r} holds NaN or infinity")
    return array


def _mapping(raw: object, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidSpec(f"{what} must be a mapping, got {type(raw).__name__}")
    return raw


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise InvalidSpec(f"{key!r} must be a list")
    return value


def _integer(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSpec(f"{key!r} must hold integers, found {value!r}")
    return value


def _count(data: Mapping[str, Any], key: str) -> int:
    value = _integer(data.get(key), key)
    if value < 0:
        raise InvalidSpec(f"{key!r} must not be negative")
    return value


def _number(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidSpec(f"{key!r} must hold finite numbers, found {value!r}")
    return float(value)


def _optional_float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    return None if value is None else _number(value, key)
