from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.checks.fairness import MISSING_GROUP, fairness_report, fairness_reports
from shipyard.domain.errors import InvalidSpec


def random_frame(seed: int, rows: int = 3000) -> pd.DataFrame:
    """Labels and predictions whose rates differ by group, so the differences are not all zero."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c", "d"], size=rows, p=[0.4, 0.3, 0.2, 0.1])
    region = rng.integers(0, 3, size=rows)
    base = pd.Series(group).map({"a": 0.2, "b": 0.35, "c": 0.5, "d": 0.3}).to_numpy()
    y = (rng.random(rows) < base).astype(int)
    hit = pd.Series(group).map({"a": 0.7, "b": 0.5, "c": 0.8, "d": 0.6}).to_numpy()
    false_alarm = pd.Series(group).map({"a": 0.1, "b": 0.2, "c": 0.05, "d": 0.3}).to_numpy()
    pred = np.where(y == 1, rng.random(rows) < hit, rng.random(rows) < false_alarm).astype(int)
    score = np.clip(0.5 * pred + 0.5 * rng.random(rows), 0.0, 1.0)
    return pd.DataFrame({"group": group, "region": region, "y": y, "pred": pred, "score": score})


def manual(frame: pd.DataFrame, column: str) -> dict[str, Any]:
    """The same report from a plain pandas groupby."""
    keys = frame[column].astype(str)
    selection = frame.groupby(keys)["pred"].mean()
    tpr = frame[frame["y"] == 1].groupby(keys[frame["y"] == 1])["pred"].mean().reindex(selection.index, fill_value=0.0)
    fpr = frame[frame["y"] == 0].groupby(keys[frame["y"] == 0])["pred"].mean().reindex(selection.index, fill_value=0.0)
    return {
        "demographic_parity_difference": selection.max() - selection.min(),
        "equalized_odds_difference": max(tpr.max() - tpr.min(), fpr.max() - fpr.min()),
        "by_group": {
            g: {
                "count": int((keys == g).sum()),
                "selection_rate": selection[g],
                "true_positive_rate": tpr[g],
                "false_positive_rate": fpr[g],
                "mean_score": frame.loc[keys == g, "score"].mean(),
            }
            for g in selection.index
        },
    }


def assert_matches(report: dict[str, Any], expected: dict[str, Any]) -> None:
    assert report["demographic_parity_difference"] == pytest.approx(expected["demographic_parity_difference"], abs=1e-12)
    assert report["equalized_odds_difference"] == pytest.approx(expected["equalized_odds_difference"], abs=1e-12)
    by_group = report["by_group"]
    assert by_group.keys() == expected["by_group"].keys()
    for group, numbers in expected["by_group"].items():
        assert by_group[group]["count"] == numbers["count"]
        for name in ("selection_rate", "true_positive_rate", "false_positive_rate", "mean_score"):
            assert by_group[group][name] == pytest.approx(numbers[name], abs=1e-12), (group, name)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("column", ["group", "region"])
def test_every_number_matches_a_manual_groupby(seed: int, column: str) -> None:
    frame = random_frame(seed)
    report = fairness_report(frame["y"], frame["pred"], frame[column], scores=frame["score"])
    assert report["column"] == column
    assert report["warnings"] == []
    assert all(isinstance(k, str) for k in report["by_group"])
    assert_matches(report, manual(frame, column))
    assert report["demographic_parity_difference"] > 0.0
    json.dumps(report, allow_nan=False)


def test_equalized_odds_is_the_larger_of_the_two_gaps() -> None:
    frame = random_frame(5)
    report = fairness_report(frame["y"].to_numpy(), frame["pred"].to_numpy(), frame["group"])
    groups = report["by_group"].values()
    tpr_gap = max(g["true_positive_rate"] for g in groups) - min(g["true_positive_rate"] for g in groups)
    fpr_gap = max(g["false_positive_rate"] for g in groups) - min(g["false_positive_rate"] for g in groups)
    assert report["equalized_odds_difference"] == pytest.approx(max(tpr_gap, fpr_gap), abs=1e-12)
    assert "mean_score" not in next(iter(groups))


def test_a_group_without_positives_reports_zero_and_a_warning() -> None:
    frame = random_frame(3)
    frame.loc[frame["group"] == "d", "y"] = 0
    report = fairness_report(frame["y"], frame["pred"], frame["group"], scores=frame["score"])
    assert report["by_group"]["d"]["true_positive_rate"] == 0.0
    assert [w for w in report["warnings"] if "group=d" in w and "true_positive_rate" in w]
    assert_matches(report, manual(frame, "group"))
    json.dumps(report, allow_nan=False)


def test_a_group_without_negatives_reports_zero_and_a_warning() -> None:
    frame = random_frame(4)
    frame.loc[frame["group"] == "c", "y"] = 1
    report = fairness_report(frame["y"], frame["pred"], frame["group"])
    assert report["by_group"]["c"]["false_positive_rate"] == 0.0
    assert any("group=c" in w and "false_positive_rate" in w for w in report["warnings"])


def test_missing_values_form_their_own_group() -> None:
    frame = random_frame(6, rows=400)
    sensitive = frame["group"].where(frame.index % 10 != 0)
    report = fairness_report(frame["y"], frame["pred"], sensitive)
    assert report["by_group"][MISSING_GROUP]["count"] == 40
    assert sum(g["count"] for g in report["by_group"].values()) == 400
    json.dumps(report, allow_nan=False)


def test_inputs_are_matched_by_position_not_index() -> None:
    frame = random_frame(7, rows=500)
    shifted = frame["group"].set_axis(range(10_000, 10_500))
    assert fairness_report(frame["y"].to_numpy(), frame["pred"].to_numpy(), shifted) == fairness_report(
        frame["y"], frame["pred"], frame["group"]
    )


def test_a_single_group_says_so() -> None:
    frame = random_frame(8, rows=200).assign(everyone="all")
    report = fairness_report(frame["y"], frame["pred"], frame["everyone"])
    assert report["demographic_parity_difference"] == 0.0
    assert report["equalized_odds_difference"] == 0.0
    assert any("single group" in w for w in report["warnings"])


def test_reports_for_several_columns() -> None:
    frame = random_frame(9)
    reports = fairness_reports(frame["y"], frame["pred"], frame, ["group", "region"])
    assert list(reports) == ["group", "region"]
    for column, report in reports.items():
        assert report == fairness_report(frame["y"], frame["pred"], frame[column])


def test_a_missing_column_names_it_and_the_available_ones() -> None:
    frame = random_frame(10, rows=100)
    with pytest.raises(InvalidSpec) as caught:
        fairness_reports(frame["y"], frame["pred"], frame, ["group", "gender"])
    assert "'gender'" in caught.value.message
    assert "group, region, y, pred, score" in caught.value.message


@pytest.mark.parametrize(
    ("y_pred", "match"),
    [
        (np.array([0.2, 0.7, 0.9, 0.1]), "y_pred must hold only 0 and 1"),
        (np.array([0, 1, 1]), "differ in length"),
        (np.array([0, 1, np.nan, 1]), "y_pred must hold only 0 and 1"),
    ],
)
def test_bad_predictions_are_refused(y_pred: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidSpec, match=match):
        fairness_report(np.array([0, 1, 1, 0]), y_pred, pd.Series(["a", "b", "a", "b"], name="g"))


# -- what the gate reads: every group's size and rates, in every report ---------------------


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_the_gate_can_recompute_each_difference_from_the_groups(seed: int) -> None:
    """The fairness rule leaves small groups out and recomputes the gap from by_group, as fairlearn would."""
    from shipyard.policy.rules import FAIRNESS_RATES, fairness_difference

    frame = random_frame(seed)
    if seed == 3:
        frame.loc[frame["group"] == "d", "y"] = 0  # one class only: its TPR is 0.0 by convention, in both
    report = fairness_report(frame["y"], frame["pred"], frame["group"])
    for group in report["by_group"].values():
        assert {"count", "positive_rate", "selection_rate", "true_positive_rate", "false_positive_rate"} <= set(group)
    for metric in FAIRNESS_RATES:
        assert fairness_difference(metric, report["by_group"]) == pytest.approx(report[metric], abs=1e-12)


def test_evidence_without_group_sizes_is_collected_again() -> None:
    from shipyard.config import DataSpec, ModelSpec
    from shipyard.evidence import stale_reasons
    from shipyard.policy.spec import Policy

    policy = Policy.model_validate(
        {"production": [{"kind": "fairness", "metric": "demographic_parity_difference", "sensitive": "group", "max": 0.1}]}
    )
    spec = ModelSpec(owner="me", data=DataSpec(path="d.csv", target="y"))
    frame = random_frame(11, rows=300)
    report = fairness_report(frame["y"], frame["pred"], frame["group"])
    evidence: dict[str, Any] = {"comparison": None, "metrics": {"slices": {}}, "fairness": {"group": report}}
    assert stale_reasons(evidence, policy, spec, None) == []
    del report["by_group"]["a"]["count"]
    assert stale_reasons(evidence, policy, spec, None) == ["no group sizes in the fairness report by group"]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_differences_equal_fairlearns_own_functions(seed: int) -> None:
    """Read off the one MetricFrame, the gaps are what demographic_parity_difference and
    equalized_odds_difference compute (with groups lacking positives or negatives too)."""
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    rng = np.random.default_rng(seed)
    rows = 300
    groups = pd.Series(rng.choice(["a", "b", "c", "d"], rows), name="g")
    y = rng.integers(0, 2, rows)
    y[groups.to_numpy() == "d"] = 1  # a group with no negative labels
    predicted = rng.integers(0, 2, rows)
    report = fairness_report(y, predicted, groups)
    assert report["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y, predicted, sensitive_features=groups), abs=1e-12
    )
    assert report["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, predicted, sensitive_features=groups), abs=1e-12
    )
