"""Factories for store rows that tests need in bulk."""

from __future__ import annotations

from shipyard.domain.entities import ModelVersion
from shipyard.store.repository import Store


def register(store: Store, version: int, *, model: str = "churn", actor: str = "alice") -> ModelVersion:
    return store.register_version(
        actor=actor,
        model=model,
        owner="team@example.com",
        version=version,
        source=f"file:///artifacts/{model}/{version}/model",
        run_id=f"run{version}",
        data_uri="file:///data/churn.parquet",
        data_fingerprint="ab" * 32,
        git_commit="c0ffee",
        metrics={"roc_auc": 0.8 + version / 100},
    )
