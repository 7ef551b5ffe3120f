"""Drift specs, evaluators and the report, against SciPy on the same data and on awkward windows."""

from __future__ import annotations

import json
import math
import typing

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy import stats
from scipy.spatial import distance

from shipyard.domain.errors import InvalidSpec
from shipyard.monitoring.drift import (
    EVALUATORS,
    METHODS,
    AutoMethod,
    ChiSquareMethod,
    DriftMethod,
    DriftSpec,
    KSMethod,
    Observation,
    WassersteinMethod,
    drift_report,
)
from shipyard.monitoring.profile import NumericProfile, build_profile
from shipyard.monitoring.stats import ks_method


def frames(rows: int, shift: float = 0.0, seed: int = 0, new_category: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def draw(delta: float, extra: bool) -> pd.DataFrame:
        colours = ["red", "green", "blue"] + (["violet"] if extra else [])
        shares = [0.5, 0.3, 0.2] if not extra else [0.45, 0.3, 0.15, 0.1]
        return pd.DataFrame(
            {
                "amount": rng.normal(delta, 1.0, rows),
                "visits": rng.poisson(3.0, rows).astype(float),
                "colour": rng.choice(colours, rows, p=shares),
            }
        )

    return draw(0.0, False), draw(shift, new_category)


def test_every_kind_has_an_evaluator_and_a_model() -> None:
    union = typing.get_args(typing.get_args(DriftMethod)[0])
    kinds = {model.model_fields["kind"].default for model in union}
    assert kinds == set(METHODS) == set(EVALUATORS) == {"auto", "ks", "wasserstein", "psi", "chisquare", "jensenshannon"}
    for kind in kinds:
        assert DriftSpec.model_validate({"features": {"x": kind}}).features["x"].kind == kind


def test_spec_parsing_and_validation() -> None:
    spec = DriftSpec.model_validate(
        {
            "default": "ks",
            "categorical": {"kind": "chisquare", "test": "goodness_of_fit"},
            "features": {"a": {"kind": "psi", "threshold": 0.2}},
        }
    )
    assert isinstance(spec.default, KSMethod) and isinstance(spec.categorical, ChiSquareMethod)
    assert spec.method_for("a", "numeric").kind == "psi" and spec.method_for("b", "numeric").kind == "ks"
    assert spec.method_for("c", "categorical").kind == "chisquare"
    assert DriftSpec().default == AutoMethod() and DriftSpec().drift_share == 0.5
    for bad in (
        {"default": "ks"},  # leaves categorical features without a method
        {"categorical": "wasserstein"},
        {"score": "chisquare"},
        {"default": {"kind": "ks", "alpha": 1.5}},
        {"default": {"kind": "ks", "threshold": 0.1}},
        {"default": "nope"},
        {"drift_share": 0},
        {"unknown": 1},
    ):
        with pytest.raises(ValidationError):
            DriftSpec.model_validate(bad)


def observe(kind: str, **statistics: float) -> Observation:
    return Observation(kind, statistics, np.array([10, 10]), np.array([10, 10]))


@pytest.mark.parametrize(
    ("pvalue", "effect", "drifted", "words"),
    [
        (1e-23, 0.05, True, "significant and large enough"),
        (0.04, 0.003, False, "significant but too small"),  # a million rows, no real shift
        (0.3, 0.4, False, "too few rows"),
        (0.6, 0.001, False, "no drift"),
    ],
)
def test_auto_needs_significance_and_effect_size(pvalue: float, effect: float, drifted: bool, words: str) -> None:
    verdict = EVALUATORS["auto"](AutoMethod(), observe("numeric", ks_pvalue=pvalue, wasserstein_normed=effect))
    assert verdict.drifted is drifted and words in verdict.reason
    assert verdict.observed == {"ks_pvalue": pvalue, "wasserstein_normed": effect}
    assert verdict.thresholds == {"ks_pvalue": 0.05, "wasserstein_normed": 0.02}
    categorical = EVALUATORS["auto"](AutoMethod(), observe("categorical", chisquare_pvalue=pvalue, jensenshannon=effect))
    assert categorical.drifted is (pvalue < 0.05 and effect >= 0.01)


def test_report_statistics_equal_scipy_on_the_same_data() -> None:
    reference, current = frames(3_000, shift=0.1, new_category=True)
    reference.loc[::50, "amount"] = np.nan
    current.loc[::40, "colour"] = None
    profile = build_profile(reference)  # 3,000 rows: the whole reference is kept, so KS is exact
    report = drift_report(profile, current)
    ref_amount, cur_amount = reference["amount"].dropna().to_numpy(), current["amount"].to_numpy()
    amount = report.features["amount"].statistics
    expected = stats.ks_2samp(ref_amount, cur_amount, method=ks_method(len(ref_amount), len(cur_amount)))
    assert amount["ks_statistic"] == pytest.approx(expected.statistic, abs=1e-15)
    assert amount["ks_pvalue"] == pytest.approx(expected.pvalue, rel=1e-9)
    assert amount["wasserstein"] == pytest.approx(stats.wasserstein_distance(ref_amount, cur_amount), rel=1e-12)
    assert amount["wasserstein_normed"] == pytest.approx(
        stats.wasserstein_distance(ref_amount, cur_amount) / np.std(ref_amount), rel=1e-12
    )
    visits = report.features["visits"].statistics
    assert ks_method(3_000, 3_000) == "exact"
    assert visits["ks_pvalue"] == pytest.approx(stats.ks_2samp(reference["visits"], current["visits"]).pvalue, rel=1e-9)
    ref_counts = reference["colour"].value_counts()
    cur_counts = current["colour"].value_counts()
    keys = [*ref_counts.index, "violet"]
    table = np.array([ref_counts.reindex(keys, fill_value=0), cur_counts.reindex(keys, fill_value=0)])
    colour = report.features["colour"]
    chi2 = stats.chi2_contingency(table, correction=False)
    assert colour.statistics["chisquare_statistic"] == pytest.approx(chi2.statistic, rel=1e-9)
    assert colour.statistics["chisquare_pvalue"] == pytest.approx(chi2.pvalue, rel=1e-9, abs=1e-300)
    assert colour.statistics["jensenshannon"] == pytest.approx(distance.jensenshannon(table[0], table[1]), rel=1e-9)
    assert colour.statistics["unseen_share"] == pytest.approx(table[1][-1] / table[1].sum())
    assert math.isfinite(colour.statistics["psi"]) and colour.rows == table[1].sum()
    assert colour.missing_share == pytest.approx(75 / 3_000) and report.features[
        "amount"
    ].reference_missing_share == pytest.approx(60 / 3_000)


def test_binned_statistics_and_the_score_use_the_reference_bins() -> None:
    reference, current = frames(4_000, shift=0.2, seed=8)
    rng = np.random.default_rng(9)
    reference_scores, current_scores = rng.beta(2, 5, 4_000), rng.beta(2.2, 5, 3_000)
    profile = build_profile(reference, scores=reference_scores)
    report = drift_report(profile, current, scores=current_scores)
    for values, reference_values, entry, feature in (
        (current["amount"].to_numpy(), reference["amount"].to_numpy(), report.features["amount"], profile.features["amount"]),
        (current_scores, reference_scores, report.score, profile.score),
    ):
        assert entry is not None and isinstance(feature, NumericProfile)
        bounds = list(zip([-np.inf, *feature.edges], [*feature.edges, np.inf], strict=True))
        ref_bins = np.array([np.count_nonzero((reference_values > lo) & (reference_values <= hi)) for lo, hi in bounds])
        cur_bins = np.array([np.count_nonzero((values > lo) & (values <= hi)) for lo, hi in bounds])
        assert np.array_equal(feature.bin_counts, ref_bins)
        p, q = ref_bins / ref_bins.sum(), cur_bins / cur_bins.sum()
        assert entry.statistics["psi"] == pytest.approx(float(np.sum((p - q) * np.log(p / q))), rel=1e-9)
        assert entry.statistics["jensenshannon"] == pytest.approx(distance.jensenshannon(ref_bins, cur_bins), rel=1e-9)
        expected = stats.ks_2samp(reference_values, values, method=ks_method(len(reference_values), len(values)))
        assert entry.statistics["ks_pvalue"] == pytest.approx(expected.pvalue, rel=1e-9)


def test_an_unshifted_window_does_not_drift() -> None:
    reference, current = frames(5_000, seed=1)
    report = drift_report(build_profile(reference), current)
    assert report.drifted == [] and not report.dataset_drift and report.evaluated == 3
    assert all(feature.status == "ok" and feature.drifted is False for feature in report.features.values())


def test_a_small_real_shift_is_found_by_auto_and_ks_but_not_a_fixed_distance() -> None:
    reference, current = frames(200_000, shift=0.05, seed=2)
    profile = build_profile(reference)
    auto = drift_report(profile, current)
    assert "amount" in auto.drifted and auto.features["amount"].statistics["ks_pvalue"] < 1e-10
    assert 0.03 < auto.features["amount"].statistics["wasserstein_normed"] < 0.07
    distance_only = drift_report(profile, current, spec=DriftSpec(features={"amount": WassersteinMethod()}))
    assert "amount" not in distance_only.drifted
    assert "< 0.1" in distance_only.features["amount"].reason


def test_goodness_of_fit_reproduces_evidently_and_an_unseen_category_is_infinite() -> None:
    reference, current = frames(2_000, new_category=True)
    spec = DriftSpec(features={"colour": ChiSquareMethod(test="goodness_of_fit")})
    colour = drift_report(build_profile(reference), current, spec=spec).features["colour"]
    assert colour.drifted is True and colour.observed["chisquare_gof_pvalue"] == 0.0
    assert colour.observed["chisquare_gof_statistic"] == math.inf
    assert colour.to_dict()["observed"]["chisquare_gof_statistic"] is None
    same, shifted = frames(2_000, seed=3)
    colour = drift_report(build_profile(same), shifted, spec=spec).features["colour"]
    ref, cur = same["colour"].value_counts(), shifted["colour"].value_counts().reindex(same["colour"].value_counts().index)
    expected = stats.chisquare(cur.to_numpy(), ref.to_numpy() * (cur.sum() / ref.sum()))
    assert colour.observed["chisquare_gof_pvalue"] == pytest.approx(expected.pvalue, rel=1e-9)


def test_missing_columns_empty_columns_and_extra_columns() -> None:
    reference, current = frames(1_000)
    current = current.drop(columns=["visits"]).assign(amount=np.nan, extra=1)
    report = drift_report(build_profile(reference), current)
    assert report.features["visits"].status == "missing" and report.features["visits"].drifted is None
    assert report.features["amount"].status == "empty" and report.features["amount"].missing_share == 1.0
    assert report.missing == ["visits"] and report.evaluated == 1 and report.share_drifted == 0.0
    assert any("visits" in note for note in report.notes) and any("extra" in note for note in report.notes)


def test_an_empty_window_reports_nothing_compared() -> None:
    reference, current = frames(500)
    report = drift_report(build_profile(reference, scores=np.linspace(0, 1, 500)), current.iloc[:0], scores=np.empty(0))
    assert report.rows == 0 and report.evaluated == 0 and not report.dataset_drift and report.drifted == []
    assert all(feature.status == "empty" and feature.missing_share is None for feature in report.features.values())
    assert report.score is not None and report.score.status == "empty"
    assert any("no rows" in note for note in report.notes)
    json.dumps(report.to_dict(), allow_nan=False)


def test_dataset_drift_follows_the_share() -> None:
    reference, current = frames(4_000, shift=1.0, seed=4)
    current["visits"] = current["visits"] + 2
    profile = build_profile(reference)
    assert drift_report(profile, current).share_drifted == pytest.approx(2 / 3)
    assert drift_report(profile, current, spec=DriftSpec(drift_share=0.6)).dataset_drift
    assert not drift_report(profile, current, spec=DriftSpec(drift_share=0.7)).dataset_drift


def test_score_drift_and_a_profile_without_scores() -> None:
    reference, current = frames(2_000)
    rng = np.random.default_rng(7)
    with_scores = build_profile(reference, scores=rng.beta(2, 5, 2_000))
    report = drift_report(with_scores, current, scores=rng.beta(3, 4, 1_500))
    assert report.score is not None and report.score.drifted is True and report.score.rows == 1_500
    assert "score" not in report.drifted  # the dataset verdict is about features
    without = drift_report(build_profile(reference), current, scores=rng.random(2_000))
    assert without.score is None and any("no score distribution" in note for note in without.notes)


def test_spec_errors_name_the_feature() -> None:
    reference, current = frames(300)
    profile = build_profile(reference)
    with pytest.raises(InvalidSpec, match="amout"):
        drift_report(profile, current, spec=DriftSpec(features={"amout": KSMethod()}))
    with pytest.raises(InvalidSpec, match=r"colour \(categorical\): ks"):
        drift_report(profile, current, spec=DriftSpec(features={"colour": KSMethod()}))
    with pytest.raises(InvalidSpec, match="should be numeric"):
        drift_report(profile, current.assign(amount="lots"))


def test_every_method_runs_on_its_types_and_the_report_is_json() -> None:
    reference, current = frames(1_500, shift=0.3, new_category=True)
    profile = build_profile(reference, scores=np.linspace(0, 1, 1_500))
    for kind, model in METHODS.items():
        spec = DriftSpec.model_validate(
            {
                "numeric": kind if "numeric" in model.applies_to else "auto",
                "categorical": kind if "categorical" in model.applies_to else "auto",
                "score": kind if "numeric" in model.applies_to else "auto",
            }
        )
        report = drift_report(profile, current, scores=np.linspace(0.1, 1, 1_500), spec=spec)
        for feature in report.features.values():
            assert feature.status == "ok" and feature.reason and feature.observed and feature.thresholds
        data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
        assert data["features"]["amount"]["statistics"].keys() >= {
            "ks_statistic",
            "ks_pvalue",
            "psi",
            "wasserstein_normed",
            "jensenshannon",
        }
        assert data["features"]["colour"]["statistics"].keys() >= {
            "chisquare_statistic",
            "chisquare_pvalue",
            "psi",
            "jensenshannon",
        }
