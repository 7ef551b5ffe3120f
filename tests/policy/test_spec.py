"""Policy files: every kind loads, and a bad file names the file, the rule and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.domain.errors import InvalidSpec, NotFound
from shipyard.policy.spec import RULE_KINDS, load_policy
from shipyard.scaffold import EXAMPLES


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("example", ["churn", "arrests"])
def test_bundled_policies_load(example: str) -> None:
    policy = load_policy(next((EXAMPLES / example / "template" / "policies").glob("*.yaml")))
    assert policy.rules_for("staging") or policy.rules_for("production")


def test_the_churn_policy_uses_every_rule_kind() -> None:
    policy = load_policy(EXAMPLES / "churn" / "template" / "policies" / "churn.yaml")
    kinds = {rule.kind for stage in ("staging", "production") for rule in policy.rules_for(stage)}
    assert kinds == set(RULE_KINDS)
    assert policy.slice_columns() == ["contract_type"]
    assert policy.fairness_columns() == ["gender", "senior_citizen"]


def test_empty_file_is_an_empty_policy(tmp_path: Path) -> None:
    assert load_policy(write(tmp_path, "")).rules_for("production") == []


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
        ("staging:\n  - {kind: metric, metric: mae, op: '>=', value: 1}\n", "staging rule 0 (metric): metric"),
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
