"""CEL rules are type-checked when the policy loads, and a bool never acts as a number when they run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shipyard.domain.errors import InvalidSpec
from shipyard.policy import cel
from shipyard.policy.spec import load_policy

EVIDENCE: dict[str, Any] = {
    "metrics": {
        "holdout": {"roc_auc": 0.83, "accuracy": 0.81, "f1": 0.5, "log_loss": 0.4, "brier": 0.13},
        "slices": {"contract_type": {"two-year": {"rows": 800, "positives": 30, "roc_auc": 0.69}}},
    },
    "rows": {"train": 8000, "holdout": 2000},
    "split": "time:signup_date",
    "comparison": {
        "metric": "roc_auc",
        "champion_version": 1,
        "rows": 2000,
        "bootstrap": {"improvement": 0.004, "ci_low": -0.002, "ci_high": 0.01, "confidence": 0.9, "resamples": 2000},
    },
    "fairness": {"gender": {"demographic_parity_difference": 0.03, "by_group": {"female": {"count": 900}}}},
    "artifacts": ["model", "model_card.md", "lineage.json"],
    "lineage": {
        "data_sources": ["file:///proj/data/churn.parquet"],
        "git_clean": False,
        "git_commit": "abc123",
        "trained_by": "dana",
    },
    "custom": {"flag": True, "count": 3},
}


def load_expr(tmp_path: Path, expression: str) -> Any:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "staging:\n  - {kind: artifacts, required: [model]}\n"
        f"production:\n  - {{kind: artifacts, required: [model]}}\n  - kind: expr\n    expr: {expression!r}\n"
    )
    return load_policy(path)


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        # The defect: a bool used as a number made this true while git_clean was false.
        ("evidence.lineage.git_clean + 1 > 0", "bool"),
        ("1 + evidence.lineage.git_clean > 0", "bool"),
        ("evidence.lineage.git_clean * 2.0 > 1.0", "bool"),
        ("-evidence.lineage.git_clean == false", "bool"),
        ("evidence.lineage.git_clean < true", "orders bool"),
        ("evidence.lineage.git_clean > 0", "bool"),
        ("evidence.lineage.git_clean == 1", "compares bool with int"),
        ("double(evidence.lineage.git_clean) > 0.5", "double() of bool"),
        ("int(evidence.lineage.git_clean) == 0", "int() of bool"),
        ("evidence.split + 1 == 'x'", "string and int"),
        ("evidence.metrics.holdout.roc_auc > 1", "compares double with int"),
        ("evidence.rows.train > 0.5", "compares int with double"),
        ("!evidence.rows.train", "! needs a bool"),
        ("evidence.rows.train && true", "&& needs bools"),
        ("evidence.rows.train ? true : false", "condition"),
        ("size(evidence.rows.train) > 0", "size() of int"),
        ("evidence.rows.train.x == 1", "int has no field x"),
        ("evidence.split.startsWith(1)", "startsWith"),
        ("evidence.rows.train.startsWith('1')", "startsWith"),
        ("'x' in evidence.rows.train", "in needs a list or map"),
        ("evidence.metrics.holdout.roc_auc % 2.0 > 0.0", "%"),
    ],
)
def test_type_errors_are_refused_at_load(tmp_path: Path, expression: str, problem: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        load_expr(tmp_path, expression)
    message = caught.value.message
    assert "production rule 1 (expr)" in message  # the stage and the rule's index
    assert expression in message
    assert problem in message


@pytest.mark.parametrize(
    ("expression", "kind"),
    [
        ("evidence.rows.train", "int"),
        ("evidence.metrics.holdout.roc_auc + 0.1", "double"),
        ("evidence.split", "string"),
        ("evidence.artifacts", "list"),
        ("evidence.rows.train > 1 ? 'yes' : 'no'", "string"),
    ],
)
def test_an_expression_that_cannot_be_boolean_is_refused(tmp_path: Path, expression: str, kind: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        load_expr(tmp_path, expression)
    assert f"gives {kind}, not true or false" in caught.value.message
    assert "production rule 1 (expr)" in caught.value.message


VALID: list[tuple[str, bool]] = [
    ("evidence.metrics.holdout.roc_auc > 0.8", True),
    ("evidence.metrics.holdout.roc_auc >= 0.8 && evidence.metrics.holdout.log_loss < 0.5", True),
    ("evidence.lineage.git_clean || evidence.rows.train > 1000", True),
    ("evidence.lineage.git_clean == true", False),
    ("!evidence.lineage.git_clean", True),
    ("evidence.rows.train + evidence.rows.holdout == 10000", True),
    ("evidence.rows.holdout * 4 >= evidence.rows.train", True),
    ("evidence.comparison.champion_version == 1", True),
    ("evidence.comparison == null || evidence.comparison.bootstrap.ci_low > -0.01", True),
    ("evidence.comparison.bootstrap.resamples >= 2000", True),
    ("has(evidence.comparison.delong)", False),
    ("has(evidence.lineage.git_commit) && evidence.lineage.git_commit != null", True),
    ("size(evidence.artifacts) >= 3", True),
    ("size(evidence.lineage.git_commit) == 6", True),
    ("'model_card.md' in evidence.artifacts", True),
    ("'gender' in evidence.fairness", True),
    ("evidence.fairness.gender.by_group.female.count >= 30", True),
    ("evidence.fairness.gender.demographic_parity_difference < 0.05", True),
    ("evidence.split.startsWith('time') && evidence.lineage.trained_by.endsWith('na')", True),
    ("evidence.split.contains('signup') && evidence.split.matches('^time:')", True),
    ("evidence.lineage.data_sources.all(s, s.startsWith('file://'))", True),
    ("evidence.artifacts.exists(a, a == 'shap.png')", False),
    ("size(evidence.artifacts.filter(a, a.endsWith('.json'))) == 1", True),
    ("(evidence.rows.holdout > 100 ? evidence.metrics.holdout.roc_auc : 0.0) > 0.5", True),
    ("evidence.metrics.slices.contract_type['two-year'].roc_auc > 0.65", True),
    ("double(evidence.rows.holdout) / double(evidence.rows.train) >= 0.25", True),
    ("evidence.custom.count > 2", True),  # an unknown path is dyn: allowed, judged when it runs
    ("evidence.custom.flag", True),
]


@pytest.mark.parametrize(("expression", "held"), VALID)
def test_valid_expressions_load_and_evaluate(tmp_path: Path, expression: str, held: bool) -> None:
    load_expr(tmp_path, expression)
    assert cel.evaluate(expression, EVIDENCE) is held


@pytest.mark.parametrize(
    "expression",
    [
        "evidence.custom.flag + 1 > 0",
        "1 + evidence.custom.flag > 0",
        "evidence.custom.flag - 1 < 5",
        "evidence.custom.flag * 2 == 2",
        "evidence.custom.flag > 0",
        "evidence.custom.flag >= evidence.custom.flag",
        "evidence.custom.flag == 1",
        "0 != evidence.custom.flag",
        "int(evidence.custom.flag) == 1",
        "double(evidence.custom.flag) > 0.5",
    ],
)
def test_a_bool_never_acts_as_a_number_when_it_runs(expression: str) -> None:
    """The static check cannot see through an unknown (dyn) path; evaluation refuses bool arithmetic itself."""
    cel.check(expression)  # dyn: passes the static check
    with pytest.raises(InvalidSpec, match="failed on this version's evidence"):
        cel.evaluate(expression, EVIDENCE)


def test_a_bool_still_compares_with_a_bool() -> None:
    assert cel.evaluate("evidence.custom.flag == true && evidence.custom.flag != false", EVIDENCE) is True
    assert cel.evaluate("evidence.custom.flag == null", EVIDENCE) is False


def test_the_cached_parser_parses_as_cel_python_does() -> None:
    """The parser read from Lark's cache has cel-python's own options: the same trees, positions included."""
    import celpy
    from celpy.celparser import CELParser

    from shipyard.policy import cel

    expressions = [
        "evidence.lineage.git_clean == true",
        "evidence.metrics.holdout.roc_auc >= 0.8 && size(evidence.artifacts) > 2",
        "has(evidence.comparison) ? evidence.comparison.bootstrap.ci_low > -0.01 : true",
        "'model_card.md' in evidence.artifacts || !(evidence.rows.train < 100)",
    ]
    saved = CELParser.CEL_PARSER
    try:
        CELParser.CEL_PARSER = None
        cel._cached_parser()
        ours = [celpy.Environment().compile(e) for e in expressions]
        CELParser.CEL_PARSER = None
        theirs = [celpy.Environment().compile(e) for e in expressions]
    finally:
        CELParser.CEL_PARSER = saved
    assert ours == theirs
    assert [(t.meta.line, t.meta.column) for t in ours] == [(t.meta.line, t.meta.column) for t in theirs]
