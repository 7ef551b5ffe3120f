"""Training from a Feast feature service: point-in-time correct frames, and the facts recorded about them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from features.repos import T0, timeline, write_repo
from shipyard.config import FeastSpec
from shipyard.data import sha256_file
from shipyard.domain.errors import InvalidSpec, NotFound
from shipyard.features import training_frame


def _labels(root: Path, rows: list[tuple[int, int]]) -> None:
    (root / "data").mkdir(exist_ok=True)
    pd.DataFrame(
        {
            "customer_id": [c for c, _ in rows],
            "label_time": [T0 + timedelta(days=d) for _, d in rows],
            "churned": [i % 2 for i in range(len(rows))],
        }
    ).to_parquet(root / "data" / "labels.parquet", index=False)


SPEC = FeastSpec(repo="repo", feature_service="plan_v1", entities="data/labels.parquet", event_timestamp="label_time")


def test_a_value_updated_after_the_labels_time_does_not_leak(tmp_path: Path) -> None:
    write_repo(tmp_path / "repo", timeline())
    # Customer 1 on day 5 (before the day-10 change) and day 15 (after it); customer 2 on day 3 (before its first
    # value) and day 8. Rows are given out of time order: the frame keeps the entity file's order.
    _labels(tmp_path, [(1, 15), (1, 5), (2, 3), (2, 8)])
    built = training_frame(tmp_path, SPEC)
    frame = built.frame
    assert frame["customer_id"].tolist() == [1, 1, 2, 2]
    assert frame["plan_price"].tolist()[:2] == [99.0, 10.0]
    assert frame["seats"].tolist()[:2] == [5, 1]
    assert built.facts["rows_without_features"] == 1
    assert pd.isna(frame["plan_price"].iloc[2])  # nothing known yet on day 3: not the day-7 value
    assert frame["plan_price"].iloc[3] == 20.0
    assert frame["label_time"].tolist() == [T0 + timedelta(days=d) for d in (15, 5, 3, 8)]
    assert built.features == ["plan_price", "seats"] and built.join_keys == ["customer_id"]


def test_facts_name_the_service_views_stores_and_entity_file(tmp_path: Path) -> None:
    write_repo(tmp_path / "repo", timeline())
    _labels(tmp_path, [(1, 5), (2, 8)])
    built = training_frame(tmp_path, SPEC)
    facts = built.facts
    assert facts["feature_service"] == "plan_v1" and facts["project"] == "timeline"
    assert facts["offline_store"] == "file" and facts["online_store"] == "sqlite"
    [view] = facts["feature_views"]
    assert view["name"] == "plan" and view["features"] == ["plan_price", "seats"] and len(view["hash"]) == 64
    assert facts["entities"] == {
        "path": "data/labels.parquet",
        "sha256": sha256_file(tmp_path / "data/labels.parquet"),
        "rows": 2,
    }
    assert facts["source_sha256"] == {"plan": sha256_file(tmp_path / "repo/data/plan.parquet")}
    # Another feature source gives another fingerprint, though the entity file is the same.
    changed = timeline().assign(plan_price=[11.0, 99.0, 20.0])
    changed.to_parquet(tmp_path / "repo/data/plan.parquet", index=False)
    assert training_frame(tmp_path, SPEC).fingerprint != built.fingerprint
    json.dumps(facts)  # stored as evidence: plain JSON


def test_bad_sources_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"entity file .*labels.parquet does not exist"):
        training_frame(tmp_path, SPEC)
    _labels(tmp_path, [(1, 5)])
    with pytest.raises(NotFound, match="no Feast repository"):
        training_frame(tmp_path, SPEC.model_copy(update={"repo": "nowhere"}))
    write_repo(tmp_path / "repo", timeline())
    with pytest.raises(NotFound, match=r"(?s)feature service 'plan_v2' .*Registered feature services: plan_v1"):
        training_frame(tmp_path, SPEC.model_copy(update={"feature_service": "plan_v2"}))
    with pytest.raises(InvalidSpec, match=r"has no column 'signup'"):
        training_frame(tmp_path, SPEC.model_copy(update={"event_timestamp": "signup"}))


def test_a_data_spec_names_one_source(tmp_path: Path) -> None:
    from shipyard.config import DataSpec

    with pytest.raises(ValueError, match="exactly one data source"):
        DataSpec.model_validate({"target": "y"})
    with pytest.raises(ValueError, match="exactly one data source"):
        DataSpec.model_validate({"target": "y", "path": "a.parquet", "feast": SPEC.model_dump()})
    assert DataSpec.model_validate({"target": "y", "feast": SPEC.model_dump()}).source == "data/labels.parquet"


def test_the_pipeline_records_the_feature_store(features_project: Path) -> None:
    from shipyard.service import Shipyard

    with Shipyard.open(features_project, actor="alice", env={}) as service:
        evidence = service.store.evidence("churn", 1)
        version = service.store.get_version("churn", 1)
    facts = evidence["feature_store"]
    assert facts["feature_service"] == "churn_v1" and facts["offline_store"] == "file"
    assert [v["name"] for v in facts["feature_views"]] == ["customer_profile", "customer_usage"]
    assert facts["entities"]["sha256"] == sha256_file(features_project / "data/labels.parquet")
    assert version.data_uri == "feast:churn_features/churn_v1"
    assert evidence["lineage"]["data_sources"] == [
        "feast:churn_features/feature_services/churn_v1",
        "feast:churn_features/feature_views/customer_profile",
        "feast:churn_features/feature_views/customer_usage",
        "data/labels.parquet",
    ]
    events = [json.loads(line) for line in (features_project / ".shipyard/lineage/events.jsonl").read_text().splitlines()]
    inputs = {(d["namespace"], d["name"]) for e in events if e["job"]["name"] == "churn.train" for d in e["inputs"]}
    assert ("feast://churn_features", "feature_views/customer_profile") in inputs
    assert ("feast://churn_features", "feature_views/customer_usage") in inputs
    # The online store was never materialized: every sampled entity differs, and says so.
    assert evidence["feature_skew"]["mismatch_rate"] == 1.0 and evidence["feature_skew"]["missing_online"] == 200


def test_opening_a_feature_store_leaves_prometheus_in_single_process_mode(tmp_path: Path) -> None:
    """Importing Feast sets PROMETHEUS_MULTIPROC_DIR (feast.metrics); opening a store takes it back, so a gateway's
    metrics are not mistaken for multi-process ones. In a fresh process: this one may have imported Feast already."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(
        "project: p\nprovider: local\nregistry: data/registry.db\noffline_store:\n  type: file\n"
        "online_store:\n  type: sqlite\n  path: data/online.db\nentity_key_serialization_version: 3\n"
    )
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from shipyard.features.repo import FeatureSource, open_store\n"
        "open_store(FeatureSource(repo=Path(sys.argv[1]), feature_service='none'))\n"
        "assert 'feast' in sys.modules\n"
        "print(os.environ.get('PROMETHEUS_MULTIPROC_DIR'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")}
    done = subprocess.run([sys.executable, "-c", script, str(repo)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"
