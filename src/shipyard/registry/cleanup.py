"""Deleting runs for real: MLflow's delete is soft and frees nothing, so the run's artifacts and its
logged models go too, as `mlflow gc` does — only in experiments Shipyard created."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shipyard.registry.tracking import CREATED_TAG, Tracking, local_path, translate_errors


@dataclass(frozen=True, slots=True)
class StrayRun:
    run_id: str
    experiment: str
    started_ms: int
    bytes: int


def _size(uri: str) -> int:
    path = local_path(uri)
    if path is None or not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def stray_runs(tracking: Tracking, *, registered: Iterable[str], started_before_ms: int) -> list[StrayRun]:
    """Runs older than the cut-off that no version was registered from, in Shipyard's own experiments."""
    from mlflow.entities import ViewType

    client = tracking.client
    keep = set(registered)
    with translate_errors("listing runs", tracking.tracking_uri):
        experiments = client.search_experiments(view_type=ViewType.ALL, filter_string=f"tags.`{CREATED_TAG}` = 'true'")
        ids = [e.experiment_id for e in experiments]
        if not ids:
            return []
        names = {e.experiment_id: e.name for e in experiments}
        keep |= {str(v.run_id) for v in client.search_model_versions() if v.run_id}
        runs = client.search_runs(
            ids, filter_string=f"attributes.start_time < {int(started_before_ms)}", run_view_type=ViewType.ALL
        )
        found = []
        for run in runs:
            if run.info.run_id in keep:
                continue
            size = _size(run.info.artifact_uri) + sum(_size(m.artifact_location) for m in _logged_models(tracking, run))
            found.append(StrayRun(run.info.run_id, names[run.info.experiment_id], int(run.info.start_time or 0), size))
        return found


def _logged_models(tracking: Tracking, run: Any) -> list[Any]:
    info = run.info
    return list(
        tracking.client.search_logged_models(
            experiment_ids=[info.experiment_id], filter_string=f"source_run_id = '{info.run_id}'"
        )
    )


def run_exists(tracking: Tracking, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    with translate_errors(f"reading run {run_id}", tracking.tracking_uri):
        try:
            tracking.client.get_run(run_id)
        except MlflowException:
            return False
    return True


def delete_run(tracking: Tracking, run_id: str) -> bool:
    """Delete a run, its artifacts and its logged models for good; False when it is already gone."""
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    client = tracking.client
    store = client._tracking_client.store
    with translate_errors(f"deleting run {run_id}", tracking.tracking_uri):
        try:
            run = client.get_run(run_id)
        except MlflowException:
            return False
        if not hasattr(store, "_hard_delete_run"):
            from shipyard.domain.errors import InvalidSpec

            raise InvalidSpec(f"the MLflow tracking store at {tracking.tracking_uri} cannot delete runs for good")
        # Artifacts first: killed half way, the run is still listed, and the next pass deletes again.
        for model in _logged_models(tracking, run):
            get_artifact_repository(model.artifact_location).delete_artifacts()  # type: ignore[no-untyped-call]
            store._hard_delete_logged_model(model.model_id)
        get_artifact_repository(run.info.artifact_uri).delete_artifacts()  # type: ignore[no-untyped-call]
        store._hard_delete_run(run_id)
    return True
