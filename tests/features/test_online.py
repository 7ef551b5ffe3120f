"""Serving a Feast-backed model through a real gateway: entity keys in, online features fetched per batch."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from shipyard.features import FeatureSource, apply, materialize
from shipyard.service import Shipyard

STORE = "feature_repo/feature_store.yaml"


def use_redis(root: Path, project: str, port: int = 6379) -> None:
    """Point the example's online store at Redis under a project name of the test's own (Redis keys carry it)."""
    path = root / STORE
    text = path.read_text().replace("project: churn_features", f"project: {project}")
    text = text.replace(
        "  type: sqlite                        # inside the project; for a team, Redis:\n  path: data/online.db\n",
        f'  type: redis\n  connection_string: "127.0.0.1:{port}"\n',
    )
    assert "type: redis" in text
    path.write_text(text)


def ready(root: Path, *, materialized: bool = True) -> None:
    from serving.harness import ship

    apply(root / "feature_repo")
    if materialized:
        materialize(FeatureSource(repo=root / "feature_repo", feature_service="churn_v1"), end=datetime.now(UTC))
    with Shipyard.open(root, actor="alice", env={}) as service:
        service.collect_evidence("churn", 1)
    ship(root, 1)


def post(client: httpx.Client, url: str, body: Any) -> httpx.Response:
    return client.post(f"{url}/v1/models/churn:predict", content=json.dumps(body))


def test_entity_keys_are_served_from_redis_and_logged(features_project: Path, redis_project: str) -> None:
    from serving.harness import ServeProcess
    from shipyard.predlog import find_request

    use_redis(features_project, redis_project)
    ready(features_project)
    labels = pd.read_parquet(features_project / "data/labels.parquet")
    usage = pd.read_parquet(features_project / "feature_repo/data/customer_usage.parquet").set_index("customer_id")
    ids = labels["customer_id"].iloc[[3, 7]].tolist()
    with ServeProcess(features_project) as server, httpx.Client() as client:
        answer = post(client, server.url, {"instances": [{"customer_id": ids[0]}, {"customer_id": ids[1]}]})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["probabilities"]) == 2
        missing = post(client, server.url, {"instances": [{"customer_id": "C9999999"}]})
        assert missing.status_code == 404, missing.text
        assert "customer_id='C9999999'" in missing.json()["error"]
        # A request with the features but no key is refused, naming the key it lacks.
        keyless = post(client, server.url, {"instances": [{"tenure_months": 3}]})
        assert keyless.status_code == 422 and "customer_id" in keyless.text
    rows = find_request(features_project / ".shipyard" / "predictions", body["request_id"])
    # The log holds what the model saw: the values fetched from the online store.
    assert [row["f_monthly_charges"] for row in rows] == [usage.loc[i, "monthly_charges"] for i in ids]
    assert [row["f_tenure_months"] for row in rows] == [usage.loc[i, "tenure_months"] for i in ids]
    assert [row["f_customer_id"] for row in rows] == ids  # the entity key too: labels join on it


def add_plain_model(root: Path) -> dict[str, Any]:
    """A second model on the same rows, sent every feature (no feature store), in production; one row of it."""
    import yaml

    from shipyard.features import training_frame

    with Shipyard.open(root, actor="alice", env={}) as service:
        feast = service.settings.model("churn").data.feast
        assert feast is not None
        built = training_frame(root, feast)
    built.frame.to_parquet(root / "data" / "plain.parquet", index=False)
    (root / "policies" / "open.yaml").write_text("allow_empty: true\nstaging: []\nproduction: []\n")
    config = yaml.safe_load((root / "shipyard.yaml").read_text())
    config["models"]["plain"] = {
        "owner": "team",
        "policy": "policies/open.yaml",
        "data": {"path": "data/plain.parquet", "target": "churned", "features": built.features},
    }
    (root / "shipyard.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    with Shipyard.open(root, actor="alice", env={}) as service:
        service.run_pipeline("plain")
    with Shipyard.open(root, actor="rui", env={}) as service:
        service.promote("plain", 1, "staging", reason="ready")
        service.promote("plain", 1, "production", reason="ship")
    first = built.frame.iloc[0]
    return {name: first[name].item() if hasattr(first[name], "item") else first[name] for name in built.features}


def test_a_stopped_online_store_is_a_503_and_other_models_keep_serving(features_project: Path, redis_project: str) -> None:
    from serving.harness import ServeProcess

    use_redis(features_project, redis_project)
    ready(features_project)
    row = add_plain_model(features_project)
    with socket.socket() as sock:  # a port nothing listens on: a stopped Redis
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = features_project / STORE
    path.write_text(path.read_text().replace('"127.0.0.1:6379"', f'"127.0.0.1:{port}"'))
    labels = pd.read_parquet(features_project / "data/labels.parquet")
    # redis-py retries a refused connection three times with backoff (about 4.5 s here) before the 503.
    with ServeProcess(features_project) as server, httpx.Client(timeout=60) as client:
        answer = post(client, server.url, {"instances": [{"customer_id": labels["customer_id"].iloc[0]}]})
        assert answer.status_code == 503, answer.text
        assert "cannot be reached" in answer.json()["error"]
        plain = client.post(f"{server.url}/v1/models/plain:predict", content=json.dumps({"instances": [row]}))
        assert plain.status_code == 200, plain.text
        assert client.get(f"{server.url}/v2/health/live").status_code == 200
