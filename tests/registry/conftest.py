"""Fixtures: a real MLflow store in a temp folder, and a version registered in it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlflow_store import local_registry, register_small_model
from shipyard.domain.entities import ModelVersion
from shipyard.registry import Registry


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new MLflow database, made once: creating its tables takes seconds."""
    folder = tmp_path_factory.mktemp("mlflow-template")
    local_registry(folder).client.search_experiments()
    return folder / "mlflow.db"


@pytest.fixture
def registry(tmp_path: Path, empty_mlflow_db: Path) -> Registry:
    folder = tmp_path / "mlflow"
    folder.mkdir()
    shutil.copy(empty_mlflow_db, folder / "mlflow.db")
    return local_registry(folder)


@pytest.fixture
def registered(registry: Registry) -> ModelVersion:
    return register_small_model(registry)
