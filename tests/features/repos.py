"""Hand-made Feast repositories: a file offline store, and a SQLite or Redis online store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

T0 = datetime(2026, 1, 1, tzinfo=UTC)

DEFINITIONS = """
from datetime import timedelta
from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
plan = FeatureView(
    name="plan",
    entities=[customer],
    ttl=timedelta(days=0),
    schema=[Field(name="plan_price", dtype=Float64), Field(name="seats", dtype=Int64)],
    source=FileSource(path="data/plan.parquet", timestamp_field="event_timestamp"),
)
plan_v1 = FeatureService(name="plan_v1", features=[plan])
"""


def online_store_yaml(kind: str, project: str, port: int = 6379) -> str:
    if kind == "redis":
        return f'online_store:\n  type: redis\n  connection_string: "127.0.0.1:{port},db=0"\n'
    return "online_store:\n  type: sqlite\n  path: data/online.db\n"


def write_repo(repo: Path, plan: pd.DataFrame, *, project: str = "timeline", online: str = "sqlite", port: int = 6379) -> Path:
    """A Feast repository with one feature view (`plan`: plan_price, seats by customer_id) served as `plan_v1`."""
    from shipyard.features import apply

    (repo / "data").mkdir(parents=True, exist_ok=True)
    plan.to_parquet(repo / "data" / "plan.parquet", index=False)
    (repo / "features.py").write_text(DEFINITIONS)
    (repo / "feature_store.yaml").write_text(
        f"project: {project}\nprovider: local\nregistry: data/registry.db\noffline_store:\n  type: file\n"
        + online_store_yaml(online, project, port)
        + "entity_key_serialization_version: 3\n"
    )
    apply(repo)
    return repo


def timeline() -> pd.DataFrame:
    """Customer 1's plan changes on day 10; customer 2 has a plan only from day 7."""
    return pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "plan_price": [10.0, 99.0, 20.0],
            "seats": [1, 5, 2],
            "event_timestamp": [T0, T0 + timedelta(days=10), T0 + timedelta(days=7)],
        }
    )
