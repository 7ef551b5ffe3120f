"""Drift of live data against the reference profile: per-feature methods, their verdicts, the report.

Every feature gets every statistic, whatever method decides its verdict:

- numeric: two-sample KS statistic and p-value, Wasserstein distance (raw and in reference
  standard deviations), PSI and Jensen–Shannon distance on the reference's quantile bins;
- categorical: chi-square test of homogeneity and its p-value, PSI, Jensen–Shannon distance,
  and the share of rows in categories the reference never saw.

The verdict comes from the feature's method (``DriftSpec``): a ``kind`` plus its thresholds.

KS p-values are SciPy's: exact where that is cheap, else Smirnov's asymptotic distribution, as
``scipy.stats.ks_2samp(method="asymp")`` (see ``stats.ks_method``). A feature with more distinct
reference values than the profile's sample is compared with that systematic sample, whose ECDF
is within 1/sample_size of the reference's; its p-value uses the full reference size. PSI and the
numeric Jensen–Shannon distance use the reference's quantile bins (Evidently bins numeric
features by Sturges' rule over both samples, so its numeric PSI differs).

Defaults, and why:

- ``auto`` (the default for features and the score) needs significance AND size. A p-value
  alone flags trivial shifts on large windows (at a million rows an unshifted column came out
  at p = 0.04, and any real 0.01σ wobble is "significant"); a fixed distance alone misses small
  real shifts (a normalized Wasserstein threshold of 0.1 misses a 0.05σ mean shift that KS finds
  at p = 1e-23). So a numeric feature drifts when KS p < 0.05 and the normalized Wasserstein
  distance is at least 0.02 (a fiftieth of a standard deviation: a 0.05σ shift passes, sampling
  noise on a large window, about 0.002, does not); a categorical one when the chi-square p < 0.05
  and the Jensen–Shannon distance is at least 0.01 (about a 1.4-point move in a 50/50 split).
  The 0.05 is for the whole report: it is split over the features ``auto`` judges (Bonferroni),
  so eight features are tested at 0.00625 each and an unchanged dataset is flagged in at most
  one report in twenty. The score is judged on its own, at the full 0.05.
- ``ks`` and ``chisquare`` flag at p < 0.05, ``wasserstein``, ``jensenshannon`` and ``psi`` at
  ≥ 0.1: Evidently 0.7's defaults (p-values for small references, distances for large ones).
- ``chisquare`` tests homogeneity (both sides are samples), as ``scipy.stats.chi2_contingency``.
  Evidently's ``chisquare`` is a goodness-of-fit test that takes the reference as exact; with a
  reference no larger than the window it flags far more than 5% of unchanged features. Set
  ``test: goodness_of_fit`` to reproduce it.
- Dataset drift: when at least ``drift_share`` (0.5) of the compared features drift, as Evidently.

Unseen categories count as categories with reference count 0: chi-square and Jensen–Shannon
need no epsilon, PSI replaces zero shares as Evidently does (1e-4, or a millionth of the smallest
non-zero share when that is at most 1e-4), and goodness-of-fit becomes infinite (p = 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, TypeAlias

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from shipyard.domain.errors import InvalidSpec
from shipyard.monitoring import stats
from shipyard.monitoring.profile import (
    CategoricalProfile,
    Category,
    NumericProfile,
    Profile,
    category_counts,
    numeric_values,
    score_values,
)

NUMERIC = "numeric"
CATEGORICAL = "categorical"
BOTH = frozenset({NUMERIC, CATEGORICAL})


class _Method(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str  # each method narrows it to its own literal, the discriminator
    applies_to: ClassVar[frozenset[str]] = BOTH


class AutoMethod(_Method):
    """Drift needs a significant test AND an effect at least as large as the floor (see the module docstring)."""

    kind: Literal["auto"] = "auto"
    alpha: float = Field(default=0.05, gt=0, lt=1, description="significance level for KS (numeric) and chi-square (categorical)")
    wasserstein: float = Field(default=0.02, ge=0, description="smallest normalized Wasserstein distance that counts (numeric)")
    jensenshannon: float = Field(
        default=0.01, ge=0, le=1, description="smallest Jensen–Shannon distance that counts (categorical)"
    )


class KSMethod(_Method):
    """Two-sample Kolmogorov–Smirnov: drift when p < alpha."""

    kind: Literal["ks"] = "ks"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    applies_to: ClassVar[frozenset[str]] = frozenset({NUMERIC})


class WassersteinMethod(_Method):
    """Wasserstein distance in reference standard deviations (floor 0.001): drift when ≥ threshold."""

    kind: Literal["wasserstein"] = "wasserstein"
    threshold: float = Field(default=0.1, gt=0)
    applies_to: ClassVar[frozenset[str]] = frozenset({NUMERIC})


class PSIMethod(_Method):
    """Population stability index on the reference bins or categories: drift when ≥ threshold."""

    kind: Literal["psi"] = "psi"
    threshold: float = Field(default=0.1, gt=0)


class ChiSquareMethod(_Method):
    """Pearson chi-square: drift when p < alpha; homogeneity by default, goodness of fit as Evidently."""

    kind: Literal["chisquare"] = "chisquare"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    test: Literal["homogeneity", "goodness_of_fit"] = "homogeneity"
    applies_to: ClassVar[frozenset[str]] = frozenset({CATEGORICAL})


class JensenShannonMethod(_Method):
    """Jensen–Shannon distance (natural log) on the reference bins or categories: drift when ≥ threshold."""

    kind: Literal["jensenshannon"] = "jensenshannon"
    threshold: float = Field(default=0.1, gt=0, le=1)


def _shorthand(value: object) -> object:
    # `ks` in a YAML spec means {kind: ks} with the default thresholds.
    return {"kind": value} if isinstance(value, str) else value


DriftMethod: TypeAlias = Annotated[
    AutoMethod | KSMethod | WassersteinMethod | PSIMethod | ChiSquareMethod | JensenShannonMethod,
    Field(discriminator="kind"),
    BeforeValidator(_shorthand),
]

METHODS: dict[str, type[_Method]] = {
    model.model_fields["kind"].default: model
    for model in (AutoMethod, KSMethod, WassersteinMethod, PSIMethod, ChiSquareMethod, JensenShannonMethod)
}


class DriftSpec(BaseModel):
    """Which method judges each feature and the score, and when the whole dataset counts as drifted.

    A feature's method is ``features[name]``, else ``numeric``/``categorical`` for its type, else
    ``default``. Methods may be written as their kind alone (``ks``) to take default thresholds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: DriftMethod = AutoMethod()
    numeric: DriftMethod | None = None
    categorical: DriftMethod | None = None
    features: dict[str, DriftMethod] = Field(default_factory=dict)
    score: DriftMethod = AutoMethod()
    drift_share: float = Field(
        default=0.5, gt=0, le=1, description="dataset drift when at least this share of compared features drift"
    )

    @model_validator(mode="after")
    def _methods_fit_their_types(self) -> DriftSpec:
        for slot, kind in (("numeric", NUMERIC), ("categorical", CATEGORICAL), ("score", NUMERIC)):
            method = getattr(self, slot)
            if method is not None and kind not in method.applies_to:
                raise ValueError(f"{slot}: {method.kind} does not apply to {kind} data")
        for kind, override in ((NUMERIC, self.numeric), (CATEGORICAL, self.categorical)):
            if override is None and kind not in self.default.applies_to:
                raise ValueError(f"default {self.default.kind} does not apply to {kind} features; set `{kind}` as well")
        return self

    def method_for(self, name: str, kind: str) -> _Method:
        """The method that judges feature ``name`` of type ``kind``."""
        override = self.numeric if kind == NUMERIC else self.categorical
        return self.features.get(name) or override or self.default


@dataclass(frozen=True, slots=True)
class Observation:
    """What an evaluator sees: the feature's statistics and its aligned reference/current counts."""

    kind: str  # numeric or categorical
    statistics: dict[str, float]
    reference_counts: np.ndarray  # per bin (numeric) or category (categorical)
    current_counts: np.ndarray


@dataclass(frozen=True, slots=True)
class Verdict:
    """A method's decision: the value(s) it looked at, against which threshold(s), in words."""

    drifted: bool
    observed: dict[str, float]
    thresholds: dict[str, float]
    reason: str


Evaluator = Callable[[Any, Observation], Verdict]


def _auto(method: AutoMethod, seen: Observation) -> Verdict:
    if seen.kind == NUMERIC:
        test, pvalue = "KS", seen.statistics["ks_pvalue"]
        effect, size, floor = "normalized Wasserstein", seen.statistics["wasserstein_normed"], method.wasserstein
        keys = ("ks_pvalue", "wasserstein_normed")
    else:
        test, pvalue = "chi-square", seen.statistics["chisquare_pvalue"]
        effect, size, floor = "Jensen–Shannon", seen.statistics["jensenshannon"], method.jensenshannon
        keys = ("chisquare_pvalue", "jensenshannon")
    significant, large = pvalue < method.alpha, size >= floor
    told = (
        f"{test} p = {pvalue:.3g} {'<' if significant else '>='} {method.alpha:g}"
        f" and {effect} {size:.3g} {'>=' if large else '<'} {floor:g}"
    )
    if significant and large:
        why = "significant and large enough: drift"
    elif significant:
        why = "significant but too small to matter: no drift"
    elif large:
        why = "large but not significant (too few rows to tell): no drift"
    else:
        why = "no drift"
    observed = dict(zip(keys, (pvalue, size), strict=True))
    return Verdict(significant and large, observed, dict(zip(keys, (method.alpha, floor), strict=True)), f"{told}; {why}")


def _pvalue_verdict(name: str, key: str, pvalue: float, alpha: float) -> Verdict:
    drifted = pvalue < alpha
    told = f"{name} p = {pvalue:.3g} {'<' if drifted else '>='} {alpha:g}"
    return Verdict(drifted, {key: pvalue}, {key: alpha}, f"{told}; {'drift' if drifted else 'no drift'}")


def _distance_verdict(name: str, key: str, value: float, threshold: float) -> Verdict:
    drifted = value >= threshold
    told = f"{name} {value:.3g} {'>=' if drifted else '<'} {threshold:g}"
    return Verdict(drifted, {key: value}, {key: threshold}, f"{told}; {'drift' if drifted else 'no drift'}")


def _ks(method: KSMethod, seen: Observation) -> Verdict:
    return _pvalue_verdict("KS", "ks_pvalue", seen.statistics["ks_pvalue"], method.alpha)


def _wasserstein(method: WassersteinMethod, seen: Observation) -> Verdict:
    return _distance_verdict(
        "normalized Wasserstein", "wasserstein_normed", seen.statistics["wasserstein_normed"], method.threshold
    )


def _psi(method: PSIMethod, seen: Observation) -> Verdict:
    return _distance_verdict("PSI", "psi", seen.statistics["psi"], method.threshold)


def _chisquare(method: ChiSquareMethod, seen: Observation) -> Verdict:
    if method.test == "homogeneity":
        return _pvalue_verdict("chi-square", "chisquare_pvalue", seen.statistics["chisquare_pvalue"], method.alpha)
    statistic, pvalue = stats.chisquare_gof(seen.reference_counts, seen.current_counts)
    verdict = _pvalue_verdict("chi-square goodness-of-fit", "chisquare_gof_pvalue", pvalue, method.alpha)
    verdict.observed["chisquare_gof_statistic"] = statistic
    return verdict


def _jensenshannon(method: JensenShannonMethod, seen: Observation) -> Verdict:
    return _distance_verdict("Jensen–Shannon", "jensenshannon", seen.statistics["jensenshannon"], method.threshold)


EVALUATORS: dict[str, Evaluator] = {
    "auto": _auto,
    "ks": _ks,
    "wasserstein": _wasserstein,
    "psi": _psi,
    "chisquare": _chisquare,
    "jensenshannon": _jensenshannon,
}


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One feature's (or the score's) comparison.

    ``status`` is ``ok`` (compared; ``drifted`` holds the verdict), ``missing`` (the column is not
    in the current data) or ``empty`` (no value to compare on one side); only ``ok`` has a verdict.
    """

    name: str
    type: str
    method: str
    status: Literal["ok", "missing", "empty"]
    drifted: bool | None
    reason: str
    rows: int  # non-missing current values compared
    missing_share: float | None  # of the current rows; None when there are none
    reference_missing_share: float | None
    statistics: dict[str, float]
    observed: dict[str, float]
    thresholds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe; a non-finite number (an infinite goodness-of-fit statistic) is written as null."""
        return {
            "name": self.name,
            "type": self.type,
            "method": self.method,
            "status": self.status,
            "drifted": self.drifted,
            "reason": self.reason,
            "rows": self.rows,
            "missing_share": self.missing_share,
            "reference_missing_share": self.reference_missing_share,
            "statistics": _finite(self.statistics),
            "observed": _finite(self.observed),
            "thresholds": _finite(self.thresholds),
        }


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Every feature's comparison, the score's, and the dataset-level verdict.

    ``share_drifted`` is over the ``evaluated`` features (status ``ok``); with none evaluated it
    is 0.0 and ``dataset_drift`` is False, which then means "nothing compared", not "no drift":
    ``notes`` says why.
    """

    rows: int
    reference_rows: int
    features: dict[str, FeatureDrift]
    score: FeatureDrift | None
    drifted: list[str]
    evaluated: int
    share_drifted: float
    drift_share: float
    dataset_drift: bool
    missing: list[str]
    notes: list[str]
    class_scores: dict[str, FeatureDrift] = field(default_factory=dict)  # multiclass: each class's probability

    @property
    def score_psi(self) -> float | None:
        """The score's PSI; for a multiclass model the largest over its predicted class's and each class's probability."""
        judged = [s for s in (self.score, *self.class_scores.values()) if s is not None and s.status == "ok"]
        return max((float(s.statistics["psi"]) for s in judged), default=None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        extra = {"class_scores": {k: v.to_dict() for k, v in self.class_scores.items()}} if self.class_scores else {}
        return {
            **extra,
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "dataset_drift": self.dataset_drift,
            "share_drifted": self.share_drifted,
            "drift_share": self.drift_share,
            "evaluated": self.evaluated,
            "drifted": list(self.drifted),
            "missing": list(self.missing),
            "notes": list(self.notes),
            "features": {name: feature.to_dict() for name, feature in self.features.items()},
            "score": None if self.score is None else self.score.to_dict(),
        }


def drift_report(
    profile: Profile,
    current: pd.DataFrame,
    *,
    scores: ArrayLike | None = None,
    spec: DriftSpec | None = None,
    class_scores: ArrayLike | None = None,
) -> DriftReport:
    """Compare ``current`` (and the model's ``scores`` on it) with the reference ``profile``.

    A feature absent from ``current`` is reported with status ``missing`` and no verdict; columns
    the profile does not know are ignored. An empty window (0 rows) is not an error: a quiet hour
    is a fact a scheduled monitor should report, not crash on. Its report has ``rows`` = 0, every
    feature ``empty``, ``evaluated`` = 0, ``dataset_drift`` False and a note saying nothing was
    compared. A spec naming a feature the profile lacks, or giving a feature a method that does
    not apply to its type, raises ``InvalidSpec`` before anything is computed. ``class_scores``
    (rows × classes) compares each class's probability with the profile's, when it has them.
    """
    spec = spec or DriftSpec()
    methods = _resolve(profile, spec)
    if len(set(current.columns)) != len(current.columns):
        raise InvalidSpec("the current data has duplicate column names")
    rows = len(current)
    features: dict[str, FeatureDrift] = {}
    for name, feature in profile.features.items():
        method = methods[name]
        if name not in current.columns:
            features[name] = _no_verdict(name, feature, method, "missing", "the column is not in the current data", rows, None)
        elif isinstance(feature, NumericProfile):
            column = current[name]
            features[name] = _numeric(name, feature, method, numeric_values(column, name), rows)
        else:
            features[name] = _categorical(name, feature, method, current[name], rows)
    notes: list[str] = []
    score = None
    if scores is not None:
        if profile.score is None:
            notes.append(
                "scores were given but the profile has no score distribution: rebuild it with build_profile(..., scores=...)"
            )
        else:
            values = score_values(scores)
            score = _numeric("score", profile.score, spec.score, values, len(values))
    per_class: dict[str, FeatureDrift] = {}
    if class_scores is not None and profile.class_scores:
        matrix = np.asarray(class_scores, dtype=float)
        for index, reference in profile.class_scores.items():
            if int(index) < matrix.shape[1]:
                values = matrix[:, int(index)]
                per_class[index] = _numeric(f"p_{index}", reference, spec.score, values, len(values))
    evaluated = [drift for drift in features.values() if drift.status == "ok"]
    drifted = [drift.name for drift in evaluated if drift.drifted]
    share = len(drifted) / len(evaluated) if evaluated else 0.0
    missing = [drift.name for drift in features.values() if drift.status == "missing"]
    if rows == 0:
        notes.append("the current window has no rows: nothing was compared")
    elif not evaluated:
        notes.append("no feature could be compared: see each feature's reason")
    if missing:
        notes.append(f"{len(missing)} feature(s) absent from the current data: {', '.join(missing)}")
    ignored = [str(column) for column in current.columns if column not in profile.features]
    if ignored:
        shown = ", ".join(ignored[:10]) + (", …" if len(ignored) > 10 else "")
        notes.append(f"{len(ignored)} column(s) not in the profile were ignored: {shown}")
    return DriftReport(
        rows=rows,
        reference_rows=profile.rows,
        features=features,
        score=score,
        drifted=drifted,
        evaluated=len(evaluated),
        share_drifted=share,
        drift_share=spec.drift_share,
        dataset_drift=bool(evaluated) and share >= spec.drift_share,
        missing=missing,
        notes=notes,
        class_scores=per_class,
    )


def _resolve(profile: Profile, spec: DriftSpec) -> dict[str, _Method]:
    unknown = sorted(set(spec.features) - set(profile.features))
    if unknown:
        raise InvalidSpec(
            f"the drift spec names feature(s) the profile does not have: {', '.join(unknown)}",
            hint=f"Profiled features: {', '.join(profile.features) or 'none'}.",
        )
    methods: dict[str, _Method] = {}
    problems: list[str] = []
    for name, feature in profile.features.items():
        method = spec.method_for(name, feature.kind)
        if feature.kind not in method.applies_to:
            problems.append(f"{name} ({feature.kind}): {method.kind}")
        methods[name] = method
    # One report tests every feature: with twenty features at 0.05 about one unchanged feature is
    # "significant" by chance. Split `auto`'s alpha over the features it judges (Bonferroni).
    judged = {name: method for name, method in methods.items() if isinstance(method, AutoMethod)}
    for name, auto in judged.items():
        methods[name] = auto.model_copy(update={"alpha": auto.alpha / len(judged)})
    if problems:
        raise InvalidSpec(
            f"drift method does not apply to the feature's type: {'; '.join(problems)}",
            hint="ks and wasserstein suit numeric features, chisquare categorical ones; auto, psi and jensenshannon both.",
        )
    return methods


def _numeric(name: str, feature: NumericProfile, method: _Method, values: np.ndarray, rows: int) -> FeatureDrift:
    ordered, missing = stats.finite_sorted(values)
    reference_missing = _share(feature.missing, feature.count + feature.missing)
    if feature.count == 0 or len(ordered) == 0:
        side = "the reference" if feature.count == 0 else "the current window"
        return _no_verdict(name, feature, method, "empty", f"{side} has no finite value", len(ordered), _share(missing, rows))
    ks, pvalue, distance = stats.numeric_statistics(feature.values, feature.weights, ordered, reference_rows=feature.count)
    current_bins = stats.bin_counts(feature.edges, ordered)
    statistics = {
        "ks_statistic": ks,
        "ks_pvalue": pvalue,
        "wasserstein": distance,
        "wasserstein_normed": stats.wasserstein_normed(distance, feature.std or 0.0),
        "psi": stats.psi(feature.bin_counts, current_bins),
        "jensenshannon": stats.jensenshannon(feature.bin_counts, current_bins),
        "mean": float(np.mean(ordered)),
        "reference_mean": feature.mean if feature.mean is not None else math.nan,
    }
    seen = Observation(NUMERIC, statistics, feature.bin_counts, current_bins)
    return _judged(name, method, seen, len(ordered), _share(missing, rows), reference_missing)


def _categorical(name: str, feature: CategoricalProfile, method: _Method, column: pd.Series, rows: int) -> FeatureDrift:
    counts = category_counts(column)
    compared = sum(counts.values())
    missing_share = _share(rows - compared, rows)
    if feature.count == 0 or compared == 0:
        side = "the reference" if feature.count == 0 else "the current window"
        return _no_verdict(name, feature, method, "empty", f"{side} has no value", compared, missing_share)
    known = dict(zip(feature.categories, feature.counts, strict=True))
    keys: list[Category] = list(feature.categories) + [category for category in counts if category not in known]
    reference = np.array([known.get(key, 0) for key in keys], dtype=np.int64)
    current = np.array([counts.get(key, 0) for key in keys], dtype=np.int64)
    chi2, pvalue = stats.chi2_homogeneity(reference, current)
    statistics = {
        "chisquare_statistic": chi2,
        "chisquare_pvalue": pvalue,
        "psi": stats.psi(reference, current),
        "jensenshannon": stats.jensenshannon(reference, current),
        "unseen_share": float(current[len(feature.categories) :].sum()) / compared,
    }
    seen = Observation(CATEGORICAL, statistics, reference, current)
    return _judged(name, method, seen, compared, missing_share, _share(feature.missing, feature.count + feature.missing))


def _judged(
    name: str, method: _Method, seen: Observation, rows: int, missing: float | None, reference_missing: float | None
) -> FeatureDrift:
    verdict = EVALUATORS[method.kind](method, seen)
    return FeatureDrift(
        name=name,
        type=seen.kind,
        method=method.kind,
        status="ok",
        drifted=verdict.drifted,
        reason=verdict.reason,
        rows=rows,
        missing_share=missing,
        reference_missing_share=reference_missing,
        statistics=seen.statistics,
        observed=verdict.observed,
        thresholds=verdict.thresholds,
    )


def _no_verdict(
    name: str,
    feature: NumericProfile | CategoricalProfile,
    method: _Method,
    status: Literal["missing", "empty"],
    reason: str,
    rows: int,
    missing: float | None,
) -> FeatureDrift:
    return FeatureDrift(
        name=name,
        type=feature.kind,
        method=method.kind,
        status=status,
        drifted=None,
        reason=reason,
        rows=rows,
        missing_share=missing,
        reference_missing_share=_share(feature.missing, feature.count + feature.missing),
        statistics={},
        observed={},
        thresholds={},
    )


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _finite(values: dict[str, float]) -> dict[str, float | None]:
    return {key: value if math.isfinite(value) else None for key, value in values.items()}
