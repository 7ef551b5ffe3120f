"""The explanations and footprint evidence of the bundled examples, and gates judging them through the service.

Every limit below is set from the evidence the version carries, just above or below what was measured, so each
rule kind is seen both passing and blocking on a real model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import make_project
from shipyard.domain.governance import Outcome
from shipyard.scaffold import commit_all
from shipyard.service import Shipyard


def judged(root: Path, model: str, version: int, stage: str, rules: list[dict[str, Any]]) -> list[Any]:
    """The gate's results after the stage's rules in the model's policy file are replaced with ``rules``."""
    path = next((root / "policies").glob("*.yaml"))
    policy = yaml.safe_load(path.read_text())
    policy[stage] = rules
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    commit_all(root, f"Policy: {stage} rules for the test")
    with Shipyard.open(root, actor="alice", env={}) as service:
        return list(service.gate(model, version, stage).results)


def ship(root: Path, version: int) -> None:
    with Shipyard.open(root, actor="alice", env={}) as service:
        service.promote("churn", version, "staging", reason="ready")
    with Shipyard.open(root, actor="vera", env={}) as service:
        service.approve("churn", version, "production", comment="ok")
    with Shipyard.open(root, actor="rui", env={}) as service:
        service.promote("churn", version, "production", reason="ship")


def outcomes(results: list[Any]) -> list[Outcome]:
    return [r.outcome for r in results]


def test_churn_explanations_and_footprint_against_the_champion(trained_project: Path) -> None:
    ship(trained_project, 1)
    with Shipyard.open(trained_project, actor="alice", env={}) as service:
        evidence = service.collect_evidence("churn", 2)  # now against champion v1
        card = (Path(service.registry.local_model_dir(service.version("churn", 2).source)).parent / "model_card.md").read_text()
    explained, footprint = evidence["explanations"], evidence["footprint"]
    assert explained["available"] and explained["explainer"] == "TreeExplainer"
    with Shipyard.open(trained_project, actor="alice", env={}) as service:
        features = service.settings.model("churn").data.features
    assert sorted(explained["ranking"]) == sorted(features)  # input columns, never one-hot dummies
    assert explained["champion"]["version"] == 1 and explained["champion"]["available"]
    assert set(explained["by_group"]) == {"gender", "senior_citizen"} and set(explained["by_slice"]) == {"contract_type"}
    assert footprint["available"] and footprint["runtime"] in ("numpy-trees", "onnxruntime", "scikit-learn")
    assert footprint["artifact_mb"] > 0 and footprint["memory_mb"] >= 0 and footprint["load_s"] > 0
    assert set(footprint["p50_ms"]) == set(footprint["latency_factor"]) == {"1", "64", "1024"}
    assert footprint["p50_ms"]["1"] <= footprint["p50_ms"]["1024"]
    assert footprint["champion"]["version"] == 1 and footprint["cpu_s_per_1k"] > 0
    assert "## What the scores rest on" in card, card
    assert f"| {explained['ranking'][0]} |" in card and "## Footprint" in card

    top, share = explained["ranking"][0], explained["share"][explained["ranking"][0]]
    worst_factor = max(footprint["latency_factor"].values())
    p50 = footprint["p50_ms"]["1"]
    rules = [
        {"kind": "explainability", "sensitive_not_in_top": 3, "max_share": round(share + 0.01, 4)},
        {"kind": "explainability", "sensitive_not_in_top": 3, "proxies": [top]},
        {"kind": "explainability", "max_share": round(share - 0.01, 4)},
        {"kind": "explainability", "max_rank_change": 8},
        {"kind": "resources", "max_memory_mb": footprint["memory_mb"] + 50, "max_p50_ms_1row": p50 * 2 + 1},
        {"kind": "resources", "max_p50_ms_1row": round(p50 / 2, 6)},
        {"kind": "resources", "max_latency_factor": round(worst_factor * 2, 3)},
        {"kind": "resources", "max_latency_factor": round(worst_factor / 2, 3)},
    ]
    results = judged(trained_project, "churn", 2, "production", rules)
    assert outcomes(results) == [
        Outcome.PASSED,
        Outcome.FAILED,
        Outcome.FAILED,
        Outcome.PASSED,
        Outcome.PASSED,
        Outcome.FAILED,
        Outcome.PASSED,
        Outcome.FAILED,
    ], [(r.observed, r.expected) for r in results]
    assert f"sensitive in the top 3: {top} (#1)" in results[1].observed
    assert "vs v1" in results[3].observed and "× v1 at" in results[7].observed


@pytest.fixture(scope="module")
def arrests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project(tmp_path_factory.mktemp("arrests") / "project", example="arrests")
    with Shipyard.open(root, actor="alice", env={}) as service:
        service.run_pipeline("arrests")
    return root


def test_arrests_colour_is_caught_in_the_top_features(arrests: Path) -> None:
    with Shipyard.open(arrests, actor="alice", env={}) as service:
        evidence = service.evidence("arrests", 1) or {}
    explained = evidence["explanations"]
    assert explained["explainer"] == "LinearExplainer" and explained["sensitive"] == ["colour", "sex"]
    ranking = explained["ranking"]
    place = ranking.index("colour") + 1  # the one-hot colour dummies, summed: one column, one place
    assert "colour_Black" not in ranking and place < len(ranking)
    rules = [
        {"kind": "explainability", "sensitive_not_in_top": place},
        {"kind": "explainability", "sensitive_not_in_top": place, "severity": "warn"},
        {"kind": "resources", "max_memory_mb": 512, "max_p50_ms_1row": 1000},
        {"kind": "resources", "max_artifact_mb": evidence["footprint"]["artifact_mb"] / 2},
    ]
    if place > 1:
        rules.append({"kind": "explainability", "sensitive_not_in_top": place - 1})
    results = judged(arrests, "arrests", 1, "staging", rules)
    expected = [Outcome.FAILED, Outcome.WARNED, Outcome.PASSED, Outcome.FAILED]
    if place > 1:
        expected.append(Outcome.PASSED if ranking.index("sex") + 1 >= place else Outcome.FAILED)
    assert outcomes(results) == expected, [(r.observed, r.expected) for r in results]
    assert f"colour (#{place})" in results[0].observed
