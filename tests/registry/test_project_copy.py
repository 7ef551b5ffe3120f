"""End to end: a project trained and promoted in one folder, copied, the original deleted, used from the copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shipyard.registry import TamperedModel
from shipyard.service import Shipyard


def ship(root: Path, version: int) -> None:
    """Take a candidate to production the governed way."""
    with Shipyard.open(root, actor="alice", env={}) as service:
        service.promote("churn", version, "staging", reason="ready")
    with Shipyard.open(root, actor="vera", env={}) as service:
        service.approve("churn", version, "production", comment="ok")
    with Shipyard.open(root, actor="rui", env={}) as service:
        service.promote("churn", version, "production", reason="ship")


def test_a_copied_project_works_from_the_copy_alone(project: Path, tmp_path: Path) -> None:
    import mlflow
    import mlflow.pyfunc
    import pandas as pd

    with Shipyard.open(project, actor="alice", env={}) as service:
        service.run_pipeline("churn")
    ship(project, 1)
    copy = tmp_path / "copy"
    shutil.copytree(project, copy)
    shutil.rmtree(project)

    with Shipyard.open(copy, actor="alice", env={}) as service:
        registry = service.registry
        champion = service.store.get_version("churn", 1)
        assert registry.load_version(champion).digests == champion.files_sha256  # the copy's files, checked
        assert champion.run_id is not None
        evidence = service.collect_evidence("churn", 1)  # loads the model, logs the evidence to its run
        assert "evidence.json" in evidence["artifacts"]
        downloaded = registry.download_artifact(champion.run_id, "evidence.json", tmp_path / "download")
        assert downloaded.read_text() and registry.model_source(champion.run_id, "model").startswith(copy.as_uri())
        result = service.run_pipeline("churn")  # compared with the champion, read from the copy
        assert result.version.version == 2 and result.version.source.startswith(copy.as_uri())
        assert result.version.files_sha256 == registry.file_digests(result.version.source)
        tracking_uri = service.settings.tracking_uri

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        served = mlflow.pyfunc.load_model("models:/churn@production")
    finally:
        mlflow.set_tracking_uri(previous)
    rows = pd.read_parquet(copy / "data" / "churn.parquet").head(3).drop(columns=["churned", "customer_id", "signup_date"])
    assert served.metadata.run_id == champion.run_id and len(served.predict(rows)) == 3

    with Shipyard.open(copy, actor="alice", env={}) as service:
        folder = service.registry.local_model_dir(champion.source)
        assert folder.is_relative_to(copy)
        with (folder / "model.skops").open("ab") as handle:
            handle.write(b"\0")
        with pytest.raises(TamperedModel, match=r"changed: model\.skops"):
            service.registry.verify_version(champion)
