"""Retraining a Feast-backed model: labelled predictions' entity keys and times become entity rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd

from shipyard.features import FeatureSource, materialize
from shipyard.service import Shipyard


def test_labelled_predictions_join_the_entity_file_and_the_features_as_of_their_time(
    features_project: Path, tmp_path: Path
) -> None:
    from serving.harness import ServeProcess, ship
    from shipyard.pipeline import prepare

    materialize(FeatureSource(repo=features_project / "feature_repo", feature_service="churn_v1"), end=datetime.now(UTC))
    with Shipyard.open(features_project, actor="alice", env={}) as service:
        service.collect_evidence("churn", 1)
    ship(features_project, 1)
    labels = pd.read_parquet(features_project / "data/labels.parquet")
    ids = labels["customer_id"].iloc[[10, 20, 30]].tolist()
    before = datetime.now(UTC)
    with ServeProcess(features_project) as server, httpx.Client() as client:
        for i, customer in enumerate(ids):
            answer = client.post(
                f"{server.url}/v1/models/churn:predict",
                json={"instances": [{"customer_id": customer}]},
                headers={"x-request-id": f"r{i}"},
            )
            assert answer.status_code == 200, answer.text
    outcomes = tmp_path / "outcomes.csv"
    pd.DataFrame({"customer_id": ids, "churned": [1, 0, 1]}).to_csv(outcomes, index=False)
    with Shipyard.open(features_project, actor="alice", env={}) as service:
        # Monitoring compares the served values with the offline store's as of each prediction: the same here.
        [outcome] = service.monitor("churn", act=False)
        live = outcome.run.report["feature_skew"]
        assert live["entities"] == 3 and live["mismatch_rate"] == 0.0, live
        assert set(live["features"]) == {
            "contract_type",
            "payment_method",
            "internet_service",
            "gender",
            "senior_citizen",
            "tenure_months",
            "monthly_charges",
            "support_calls",
        }
        assert service.ingest_labels(outcomes, model="churn").to_dict()["stored"] == 3
        data = service.retraining_data("churn")
        spec = service.settings.model("churn")
        prepared = prepare(service.settings, spec, data.path)
    assert data.labelled_rows == 3
    rows = pd.read_parquet(data.path)
    assert len(rows) == len(labels) + 3
    recent = rows.tail(3).reset_index(drop=True)
    assert recent["customer_id"].tolist() == ids and recent["churned"].tolist() == [1, 0, 1]
    assert all(before - timedelta(seconds=1) <= t <= datetime.now(UTC) for t in recent["signup_date"])
    # The feature store joined each prediction's features as of its time: the values the gateway served.
    usage = pd.read_parquet(features_project / "feature_repo/data/customer_usage.parquet").set_index("customer_id")
    frame = prepared.dataset.frame
    joined = frame[frame["signup_date"] >= pd.Timestamp(before) - pd.Timedelta(seconds=1)].set_index("customer_id")
    assert joined.loc[ids, "monthly_charges"].tolist() == usage.loc[ids, "monthly_charges"].tolist()
    assert prepared.feature_store is not None
    assert prepared.feature_store["entities"]["path"].startswith("data/retrain/churn-")

    # The offline store rebuilt with other figures: the values served no longer match, and monitoring says which.
    source = features_project / "feature_repo/data/customer_usage.parquet"
    rebuilt = pd.read_parquet(source)
    rebuilt["monthly_charges"] = rebuilt["monthly_charges"] + 5.0
    rebuilt.to_parquet(source, index=False)
    with Shipyard.open(features_project, actor="alice", env={}) as service:
        [outcome] = service.monitor("churn", act=False)
    live = outcome.run.report["feature_skew"]
    assert live["mismatch_rate"] == 1.0 and live["features"]["monthly_charges"]["mismatches"] == 3
    assert live["features"]["tenure_months"]["mismatches"] == 0
