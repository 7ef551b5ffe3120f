"""The registry leaves MLflow's process-wide state as it found it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shipyard.domain.entities import ModelVersion
from shipyard.registry import Registry


def test_mlflows_default_uris_are_left_unset(registry: Registry, registered: ModelVersion, tmp_path: Path) -> None:
    """User code that later sets only the tracking URI must find the registry there too (MLflow's default)."""
    import mlflow

    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        assert name not in os.environ
    assert registered.run_id is not None
    registry.model_source(registered.run_id, "model")  # runs with this project's URIs as MLflow's defaults
    registry.download_artifact(registered.run_id, "model", tmp_path / "download")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        assert name not in os.environ
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    previous = mlflow.get_tracking_uri()
    try:
        mlflow.set_tracking_uri(elsewhere)
        assert mlflow.get_registry_uri() == elsewhere
    finally:
        mlflow.set_tracking_uri(previous)


@pytest.fixture(autouse=True)
def _no_mlflow_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
