"""Materializing the online store (audited), and training–serving skew under the production gate."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.service import Shipyard


def materialize(root: Path, *args: str) -> dict:
    done = CliRunner().invoke(
        app, ["--project", str(root), "--actor", "rui", "features", "materialize", "churn", *args, "--json"]
    )
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def skew_rule(service: Shipyard):
    [result] = [r for r in service.gate("churn", 1, "production").results if r.kind == "feature_skew"]
    return result


def test_skew_blocks_a_version_whose_online_store_holds_other_data(features_project: Path) -> None:
    with Shipyard.open(features_project, actor="alice", env={}) as service:
        before = skew_rule(service)  # trained before any materialization: nothing online
    assert before.outcome.value != "passed" and "100.00% of 200 entities differ online" in str(before.observed)

    done = materialize(features_project)
    assert [v["feature_view"] for v in done["feature_views"]] == ["customer_profile", "customer_usage"]
    assert done["online_store"] == "sqlite"
    with Shipyard.open(features_project, actor="alice", env={}) as service:
        [event] = [e for e in service.audit_log("churn") if e.action == "features.materialized"]
        assert event.actor == "rui" and event.details["feature_service"] == "churn_v1"
        service.collect_evidence("churn", 1)
        evidence = service.evidence("churn", 1)
        assert evidence["feature_skew"]["mismatch_rate"] == 0.0 and evidence["feature_skew"]["entities"] == 200
        assert skew_rule(service).outcome.value == "passed"

    # The offline store is rebuilt with other usage figures, the online store still holds the old ones.
    usage = features_project / "feature_repo/data/customer_usage.parquet"
    frame = pd.read_parquet(usage)
    frame["monthly_charges"] = frame["monthly_charges"] + 5.0
    frame.to_parquet(usage, index=False)
    with Shipyard.open(features_project, actor="alice", env={}) as service:
        service.collect_evidence("churn", 1)
        skew = service.evidence("churn", 1)["feature_skew"]
        assert skew["mismatch_rate"] == 1.0
        assert skew["features"]["monthly_charges"]["mismatch_rate"] == 1.0 and skew["features"]["gender"]["mismatches"] == 0
        example = skew["features"]["monthly_charges"]["example"]
        assert example["offline"] == example["online"] + 5.0
        blocked = skew_rule(service)
        assert blocked.outcome.value == "failed" and "monthly_charges 100.0%" in str(blocked.observed)


def test_materialize_refuses_a_model_without_a_feature_store(project: Path) -> None:
    done = CliRunner().invoke(app, ["--project", str(project), "--actor", "rui", "features", "materialize", "churn"])
    assert done.exit_code != 0 and "not trained from a feature store" in done.stderr


def test_materialize_refuses_a_bad_end(features_project: Path) -> None:
    done = CliRunner().invoke(
        app, ["--project", str(features_project), "--actor", "rui", "features", "materialize", "churn", "--end", "soon"]
    )
    assert done.exit_code != 0 and "'soon' is not a time" in done.stderr
