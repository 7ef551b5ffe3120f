"""A project folder moved elsewhere keeps working, on its own files only (nothing stored depends on its old place)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx

from serving.harness import ROW, Server, wait_for
from shipyard.service import Shipyard


def svc(root: Path, actor: str) -> Shipyard:
    return Shipyard.open(root, actor=actor, env={})


def test_a_moved_project_trains_promotes_serves_and_traces(trained_project: Path, tmp_path: Path) -> None:
    with svc(trained_project, "alice") as service:
        service.promote("churn", 1, "staging", reason="before the move")
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    shutil.move(trained_project, moved)  # the original folder no longer exists
    assert not trained_project.exists()

    with svc(moved, "vera") as service:
        service.approve("churn", 1, "production", comment="after the move")
    with svc(moved, "rui") as service:
        service.promote("churn", 1, "production", reason="after the move")  # checks the moved files' digests
    with svc(moved, "alice") as service:
        result = service.run_pipeline("churn")  # evidence against the champion loads it from the moved folder
        assert result.version.source.startswith(moved.resolve().as_uri())
        assert service.evidence("churn", result.version.version)["comparison"]["champion_version"] == 1  # type: ignore[index]
    with Server(moved) as server, httpx.Client() as client:
        answer = client.post(
            f"{server.url}/v1/models/churn:predict", content=json.dumps({"instances": [ROW]}), headers={"x-request-id": "moved"}
        )
        assert answer.status_code == 200 and answer.json()["version"] == 1
    with svc(moved, "val") as service:
        wait_for(lambda: bool((moved / ".shipyard" / "predictions").exists()))
        (traced,) = service.trace("moved")["answers"]
        assert traced["version"]["version"] == 1 and traced["training_run"] == service.store.get_version("churn", 1).run_id
        # Plain MLflow, pointed at the moved store, loads the champion from the moved files.
        import mlflow
        import pandas as pd

        previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        try:
            mlflow.set_tracking_uri(service.settings.tracking_uri)
            mlflow.set_registry_uri(service.settings.registry_uri)
            location = mlflow.MlflowClient().get_model_version_download_uri("churn", "1")
            assert location.startswith(moved.resolve().as_uri()) or location.startswith(str(moved.resolve()))
            assert mlflow.pyfunc.load_model("models:/churn@production").predict(pd.DataFrame([ROW])).shape == (1,)
        finally:
            mlflow.set_tracking_uri(previous[0])
            mlflow.set_registry_uri(previous[1])
