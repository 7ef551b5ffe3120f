"""Rules judging regression and multiclass evidence: directions, applicability, label sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shipyard.domain.errors import InvalidSpec
from shipyard.domain.governance import Outcome
from shipyard.policy import gate
from shipyard.policy.rules import GateContext
from shipyard.policy.spec import Policy, load_policy

REGRESSION: dict[str, Any] = {
    "task": "regression",
    "metrics": {"holdout": {"rmse": 2.2, "mae": 1.5, "r2": 0.57}, "slices": {}},
    "comparison": {
        "metric": "rmse",
        "champion_version": 1,
        "rows": 1000,
        # The candidate's RMSE is 0.3 higher (worse): a lower-is-better metric's improvement is negative.
        "bootstrap": {"improvement": -0.3, "ci_low": -0.4, "ci_high": -0.2, "confidence": 0.9, "resamples": 2000},
        "wilcoxon": {"p_value": 0.001, "statistic": 10.0},
    },
    "fairness": {
        "sex": {
            "task": "regression",
            "mean_error_difference": 0.4,
            "mean_prediction_difference": 3.0,
            "by_group": {
                "F": {"count": 340, "mean_error": -0.1, "mean_abs_error": 1.9, "mean_prediction": 11.0, "mean_target": 11.1},
                "I": {"count": 328, "mean_error": 0.13, "mean_abs_error": 1.0, "mean_prediction": 8.0, "mean_target": 7.9},
                "M": {"count": 376, "mean_error": -0.27, "mean_abs_error": 1.6, "mean_prediction": 10.6, "mean_target": 10.9},
            },
        }
    },
    "not_applicable": {"metric mape": "the holdout target has zeros, where MAPE is undefined"},
}


def judge(rules: list[dict[str, Any]], evidence: dict[str, Any]) -> dict[str, Any]:
    policy = Policy.model_validate({"staging": rules})
    ctx = GateContext(model="m", version=2, stage="staging", evidence=evidence, primary_metric="rmse")
    report = gate.evaluate(policy, ctx, actor="t")
    return {r.name: r for r in report.results}


def test_an_error_metric_must_be_low() -> None:
    found = judge([{"kind": "metric", "metric": "rmse", "op": "<=", "value": 3.0}], REGRESSION)
    assert found["metric rmse"].outcome is Outcome.PASSED
    found = judge([{"kind": "metric", "metric": "rmse", "op": "<=", "value": 2.0}], REGRESSION)
    assert found["metric rmse"].outcome is Outcome.FAILED


def test_a_worse_rmse_than_the_champion_blocks() -> None:
    found = judge([{"kind": "compare_champion", "max_drop": 0.1}], REGRESSION)
    result = found["compare_champion rmse"]
    assert result.outcome is Outcome.FAILED and "wilcoxon p=0.001" in result.observed


def test_a_metric_of_another_task_is_not_applicable_and_blocks() -> None:
    found = judge([{"kind": "metric", "metric": "roc_auc", "op": ">=", "value": 0.7}], REGRESSION)
    [result] = [r for r in found.values() if r.kind == "metric"]
    assert result.outcome is Outcome.ERROR
    assert "not applicable" in result.observed and "regression" in result.observed


def test_evidence_kinds_that_do_not_apply_are_listed_in_the_report() -> None:
    found = judge([{"kind": "metric", "metric": "mape", "op": "<=", "value": 0.2}], REGRESSION)
    listed = found["evidence not applicable"]
    assert listed.outcome is Outcome.PASSED and "MAPE is undefined" in listed.observed
    [rule] = [r for r in found.values() if r.kind == "metric"]
    assert rule.outcome is Outcome.ERROR and "MAPE is undefined" in rule.observed


def test_regression_fairness_on_mean_error() -> None:
    rule = {"kind": "fairness", "metric": "mean_error_difference", "sensitive": "sex", "max": 0.3}
    result = judge([rule], REGRESSION)["fairness mean_error_difference by sex"]
    assert result.outcome is Outcome.FAILED and "F (n=340)" in result.observed
    demographic = {"kind": "fairness", "metric": "demographic_parity_difference", "sensitive": "sex", "max": 0.3}
    [result] = [r for r in judge([demographic], REGRESSION).values() if r.kind == "fairness"]
    assert result.outcome is Outcome.ERROR and "does not apply to a regression model" in result.observed


def test_a_changed_label_set_blocks_whatever_the_rules() -> None:
    evidence = {
        "task": "multiclass",
        "classes": ["a", "b", "c", "d"],
        "metrics": {"holdout": {"accuracy": 0.9, "f1_macro": 0.9}},
        "comparison": {
            "metric": "f1_macro",
            "champion_version": 1,
            "label_set_changed": {"candidate": ["a", "b", "c", "d"], "champion": ["a", "b", "c"]},
        },
    }
    found = judge([{"kind": "metric", "metric": "accuracy", "op": ">=", "value": 0.5}], evidence)
    assert found["label set"].outcome is Outcome.ERROR and found["label set"].blocking
    assert "['a', 'b', 'c']" in found["label set"].observed
    found = judge([{"kind": "compare_champion"}], evidence)
    assert any(r.kind == "compare_champion" and r.outcome is Outcome.ERROR for r in found.values())


def test_a_bound_on_the_wrong_side_of_a_metric_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("staging:\n  - {kind: metric, metric: rmse, op: '>=', value: 2}\n")
    with pytest.raises(InvalidSpec, match="rmse is lower-is-better, so op '>=' bounds it the wrong way; write op: '<='"):
        load_policy(path)
