"""Policy files: every kind loads, and a bad file names the file, the rule and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import load_settings
from shipyard.domain.errors import InvalidSpec, NotFound
from shipyard.domain.governance import Outcome, RuleResult
from shipyard.policy import gate
from shipyard.policy.rules import GateContext
from shipyard.policy.spec import GATED_STAGES, RULE_KINDS, Policy, load_policy, policy_for
from shipyard.scaffold import EXAMPLES


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("example", ["churn", "arrests"])
def test_bundled_policies_load(example: str) -> None:
    policy = load_policy(next((EXAMPLES / example / "template" / "policies").glob("*.yaml")))
    assert policy.rules_for("staging") or policy.rules_for("production")


def test_the_churn_policies_use_every_rule_kind() -> None:
    policy = load_policy(EXAMPLES / "churn" / "template" / "policies" / "churn.yaml")
    kinds = {rule.kind for stage in ("staging", "production") for rule in policy.rules_for(stage)}
    assert kinds == set(RULE_KINDS) - {"feature_skew"}  # the churn-features example's policy has that one
    with_features = load_policy(EXAMPLES / "churn_features" / "template" / "policies" / "churn.yaml")
    assert kinds | {rule.kind for rule in with_features.rules_for("production")} == set(RULE_KINDS)
    assert policy.slice_columns() == ["contract_type"]
    assert policy.fairness_columns() == ["gender", "senior_citizen"]


def gate_results(policy: Policy, stage: str) -> list[RuleResult]:
    ctx = GateContext(model="churn", version=1, stage=stage, evidence={})
    return list(gate.evaluate(policy, ctx, actor="tester").results)


def assert_blocks_for_missing_rules(results: list[RuleResult], stage: str, where: str) -> None:
    [result] = results
    assert result.outcome is Outcome.ERROR and result.blocking
    assert where in result.observed and stage in result.observed
    assert f"{stage}:" in (result.message or "") and "allow_empty: true" in (result.message or "")


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("", ["staging", "production"]),
        ("# nothing yet\n", ["staging", "production"]),
        ("slices: [a]\n", ["staging", "production"]),
        ("staging:\n  - {kind: artifacts, required: [model]}\n", ["production"]),
        ("staging:\n  - {kind: artifacts, required: [model]}\nproduction:\n", ["production"]),
        ("allow_empty: true\nproduction: []\n", ["staging"]),
    ],
)
def test_a_stage_without_rules_blocks_its_gate(tmp_path: Path, text: str, missing: list[str]) -> None:
    """An empty file or a missing section once let a version into production with no rule at all."""
    path = write(tmp_path, text)
    policy = load_policy(path)
    for stage in GATED_STAGES:
        assert policy.declares(stage) is (stage not in missing)
        results = gate_results(policy, stage)
        if stage in missing:
            assert policy.rules_for(stage) == []
            assert_blocks_for_missing_rules(results, stage, str(path))
        else:
            assert all(r.kind != "policy" for r in results)


def test_an_explicitly_empty_stage_needs_allow_empty(tmp_path: Path) -> None:
    path = write(tmp_path, "staging:\n  - {kind: artifacts, required: [model]}\nproduction: []\n")
    with pytest.raises(InvalidSpec) as caught:
        load_policy(path)
    message = caught.value.message
    assert str(path) in message and "production: " in message
    assert "without any rule" in message and "allow_empty: true" in message


def test_allow_empty_lets_an_explicitly_empty_stage_pass(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "allow_empty: true\nstaging: []\nproduction: []\n"))
    assert policy.allow_empty and policy.declares("production") and policy.rules_for("production") == []
    for stage in GATED_STAGES:
        report = gate.evaluate(policy, GateContext(model="m", version=1, stage=stage, evidence={}), actor="t")
        assert report.passed and report.results == ()


def test_a_model_without_a_policy_blocks_both_gates(tmp_path: Path) -> None:
    (tmp_path / "shipyard.yaml").write_text("project: p\nmodels:\n  churn:\n    owner: me\n    data: {path: d.csv, target: y}\n")
    settings = load_settings(tmp_path, env={})
    policy = policy_for(settings, "churn")
    for stage in GATED_STAGES:
        results = gate_results(policy, stage)
        assert_blocks_for_missing_rules(results, stage, "model churn has no policy")
        assert "models.churn.policy" in (results[0].message or "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("staging: [", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("staging: {kind: metric}\n", "staging must be a list of rules"),
        ("production:\n  - metric: roc_auc\n", "production rule 0: every rule needs a kind"),
        ("production:\n  - kind: vibes\n", "production rule 0: unknown kind 'vibes'"),
        (
            "staging:\n  - {kind: artifacts, required: [a]}\n  - {kind: metric, metric: roc_auc, op: '>=', value: high}\n",
            "staging rule 1 (metric): value",
        ),
        ("staging:\n  - {kind: metric, metric: mse, op: '>=', value: 1}\n", "staging rule 0 (metric): metric"),
        ("staging:\n  - {kind: metric, metric: f1, op: '=>', value: 1}\n", "staging rule 0 (metric): op"),
        ("production:\n  - {kind: compare_champion, resamples: 10}\n", "production rule 0 (compare_champion): resamples"),
        (
            "production:\n  - {kind: fairness, metric: demographic_parity_difference, max: 0.1}\n",
            "production rule 0 (fairness): sensitive: required key is missing",
        ),
        ("production:\n  - {kind: approvals, count: 0}\n", "production rule 0 (approvals): count"),
        (
            "production:\n  - {kind: expr, expr: 'evidence.metrics >'}\n",
            "production rule 0 (expr): expr: Value error, CEL expression does not parse",
        ),
        ("production:\n  - {kind: metric, metric: f1, op: '>=', value: 1, severity: fatal}\n", "severity"),
        ("production:\n  - {kind: artifacts, required: [a], colour: red}\n", "colour: unknown key"),
        ("constraints:\n  age: {min: zero}\n", "constraints.age.min"),
        ("mood: happy\n", "mood: unknown key"),
    ],
)
def test_bad_policies_name_file_rule_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InvalidSpec) as caught:
        load_policy(path)
    assert str(path) in caught.value.message
    assert expected in caught.value.message


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        load_policy(tmp_path / "nope.yaml")
