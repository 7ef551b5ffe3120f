"""A real MLflow store (SQLite and local artifacts) in a temp folder, and a small model registered in it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipyard.domain.entities import ModelVersion
from shipyard.domain.stages import Stage
from shipyard.registry import Registry


def small_frame(rows: int = 200, seed: int = 0) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.integers(18, 90, rows), "income": rng.normal(50, 15, rows)})
    return frame, (frame["income"] / 50 + rng.normal(0, 0.3, rows) > 1.0).astype(int).to_numpy()


def local_registry(folder: Path) -> Registry:
    """A tracking database and its artifacts in one folder: not a project's layout."""
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return Registry(uri, uri, artifact_root=folder / "artifacts")


def register_small_model(registry: Registry, name: str = "churn") -> ModelVersion:
    """Log a logistic regression the way the pipeline does and register it; the entity the store would hold."""
    from sklearn.linear_model import LogisticRegression

    frame, y = small_frame()
    model = LogisticRegression().fit(frame, y)
    experiment = registry.experiment_id("tests")
    run_id = registry.start_run(experiment, run_name="train", tags={})
    source = registry.log_sklearn_model(run_id, model, example=frame.head(5))
    registry.finish_run(run_id)
    number = registry.register_version(name, source=source, run_id=run_id, description="", tags={})
    now = datetime.now(UTC)
    return ModelVersion(
        model=name,
        version=number,
        stage=Stage.CANDIDATE,
        run_id=run_id,
        source=source,
        data_uri=None,
        data_fingerprint=None,
        git_commit=None,
        files_sha256=registry.file_digests(source),
        registered_by="alice",
        registered_at=now,
        updated_at=now,
    )


def model_folder(version: ModelVersion) -> Path:
    from shipyard.registry.tracking import local_path

    folder = local_path(version.source)
    assert folder is not None and (folder / "MLmodel").is_file()
    return folder


def embedded_registry(root: Path) -> Registry:
    """The registry of a project at ``root`` in the embedded default: ``.shipyard/mlflow.db`` and ``.shipyard/artifacts``."""
    state = root / ".shipyard"
    state.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{state / 'mlflow.db'}"
    return Registry(uri, uri, artifact_root=state / "artifacts")
