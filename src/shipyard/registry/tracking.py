"""MLflow tracking for a project: the client, runs, artifacts and where model files lie.

Wraps ``MlflowClient`` (never the fluent API, which keeps global state) and
translates MLflow's errors into Shipyard's at this edge.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import BackendUnavailable, InvalidSpec, NotFound, ShipyardError
from shipyard.registry import relocation
from shipyard.registry.relocation import Relocation
from shipyard.registry.requirements import model_requirements

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

log = logging.getLogger("shipyard")
MODEL_ARTIFACT = "model"
# The model converted to ONNX, in the model's folder beside the scikit-learn file (KServe and Triton serve it as it is).
ONNX_ARTIFACT = "model.onnx"


@contextmanager
def translate_errors(what: str, uri: str) -> Iterator[None]:
    from mlflow.exceptions import MlflowException

    try:
        yield
    except ShipyardError:
        raise
    except MlflowException as exc:
        code = getattr(exc, "error_code", "")
        if code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(f"{what}: {exc.message}") from exc
        if code == "INVALID_PARAMETER_VALUE":  # what was asked for is malformed: the caller's mistake, not MLflow's state
            raise InvalidSpec(f"{what}: {exc.message}") from exc
        raise BackendUnavailable(
            f"{what} failed against MLflow at {uri}: {exc.message}",
            hint="Check the MLflow tracking URI (SHIPYARD_TRACKING_URI or mlflow.tracking_uri in shipyard.yaml).",
        ) from exc
    except OSError as exc:
        raise BackendUnavailable(f"{what} failed against MLflow at {uri}: {exc}") from exc


CREATED_TAG = "shipyard.created"  # on experiments Shipyard created


class Tracking:
    """A project's MLflow tracking store: runs, their artifacts, and the folder its files lie in."""

    def __init__(
        self,
        tracking_uri: str,
        registry_uri: str,
        artifact_root: Path | None = None,
        cache_dir: Path | None = None,
        cold_dir: Path | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.cold_dir = cold_dir  # where retention moved model files of long-archived versions (see registry.cold)
        self.registry_uri = registry_uri
        self.artifact_root = artifact_root
        self.cache_dir = cache_dir  # where facts about this machine may be kept between commands
        # Set for a project's embedded store only: its locations follow the project folder (see relocation).
        self.project_root = relocation.embedded_root(tracking_uri, registry_uri, artifact_root)
        self._database = relocation.sqlite_file(tracking_uri)
        self._client: MlflowClient | None = None
        self._relocation: Relocation | None = None
        self._previous_roots: tuple[Path, ...] = ()
        self._repaired = False

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            with translate_errors("connecting", self.tracking_uri):
                client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
                if self.project_root is not None and self._database is not None:
                    client.get_experiment("0")  # MLflow creates its tables on first use; the repair reads them
                    self._repaired = False
                    self._repair_once()
                self._client = client
        return self._client

    def _repair_once(self) -> None:
        """Repair a moved project's locations (plain SQLite: a read when nothing moved, no MLflow import)."""
        if self._repaired or self.project_root is None or self._database is None or not self._database.is_file():
            return
        self._repair(self._database, self.project_root)
        self._repaired = True

    def _repair(self, database: Path, root: Path) -> None:
        try:
            self._relocation, self._previous_roots = relocation.repair(database, root)
        except sqlite3.Error as exc:
            raise BackendUnavailable(
                f"cannot repair the MLflow store {database} for the project folder {root}: {exc}",
                hint="Check that the project folder is writable, then run the command again.",
            ) from exc
        if self._relocation is not None:
            moved = ", ".join(str(p) for p in self._relocation.moved_from)
            log.info("the project moved from %s to %s: %d MLflow locations repaired", moved, root, self._relocation.rewritten)

    @property
    def relocation(self) -> Relocation | None:
        """What opening this project at a new folder repaired (None: nothing had moved)."""
        _ = self.client
        return self._relocation

    @property
    def previous_roots(self) -> tuple[Path, ...]:
        """Every folder this project's embedded store was used at before its current one."""
        self._repair_once()
        return self._previous_roots

    def here(self, source: str) -> str:
        """``source`` as it lies now (see ``located``), with its files brought back from the cold location
        when retention moved them there."""
        source = self.located(source)
        self._rehydrate(source)
        return source

    def located(self, source: str) -> str:
        """``source`` as it lies now: a location recorded under a previous folder of the project, moved into the current one."""
        root = self.project_root
        if root is None or relocation.is_under(source, root):
            return source
        for old in self.previous_roots:
            moved = relocation.relocate(source, old, root)
            if moved != source:
                return moved
        return source

    def cold_archive(self, source: str) -> Path | None:
        """Where the cold location keeps (or would keep) ``source``'s files; None when it cannot."""
        from shipyard.registry import cold

        path = local_path(self.located(source))
        if path is None or self.cold_dir is None or self.artifact_root is None:
            return None
        return cold.archive_for(self.cold_dir, self.artifact_root, path)

    def _rehydrate(self, source: str) -> None:
        path = local_path(source)
        if path is None or path.exists():
            return
        archive = self.cold_archive(source)
        if archive is not None and archive.is_file():
            from shipyard.registry import cold

            cold.rehydrate(path, archive)
            log.info("brought the model files at %s back from the cold location", source)

    @contextmanager
    def _as_default(self) -> Iterator[None]:
        """MLflow's artifact downloads read the process-wide tracking and registry URIs
        (MLflow 3 looks a logged model up by id); point them at this project only for the call."""
        import os

        from mlflow.tracking._model_registry import utils as registry_default
        from mlflow.tracking._tracking_service import utils as tracking_default

        # Saved raw, not through get_*_uri(): those resolve the defaults, and setting a
        # resolved default back would pin it, so a later mlflow.set_tracking_uri() would no
        # longer move the registry with it. MLflow also copies what is set into the
        # environment (for subprocesses); that is put back as it was too.
        saved: tuple[Any, Any] = (tracking_default._tracking_uri, registry_default._registry_uri)
        names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
        environment = {name: os.environ.get(name) for name in names}
        tracking_default.set_tracking_uri(self.tracking_uri)
        registry_default.set_registry_uri(self.registry_uri)
        try:
            yield
        finally:
            tracking_default.set_tracking_uri(saved[0])
            registry_default._registry_uri = saved[1]
            for name, value in environment.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    # -- tracking ---------------------------------------------------------------

    def experiment_id(self, name: str) -> str:
        with translate_errors(f"opening experiment {name!r}", self.tracking_uri):
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                return str(found.experiment_id)
            location = self.artifact_root.resolve().as_uri() if self.artifact_root is not None else None
            # The tag marks it as Shipyard's own: retention deletes stray runs only in experiments so marked.
            return str(self.client.create_experiment(name, artifact_location=location, tags={CREATED_TAG: "true"}))

    def start_run(self, experiment_id: str, *, run_name: str, tags: Mapping[str, str]) -> str:
        with translate_errors("starting a run", self.tracking_uri):
            run = self.client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
            return str(run.info.run_id)

    def log_run_data(
        self,
        run_id: str,
        *,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        tags: Mapping[str, str] | None = None,
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        with translate_errors("logging run data", self.tracking_uri):
            self.client.log_batch(
                run_id,
                metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()],
                params=[Param(key, _param_value(value)) for key, value in params.items()],
                tags=[RunTag(key, value) for key, value in (tags or {}).items()],
            )

    def log_dataset(self, run_id: str, *, name: str, uri: str, digest: str, frame: pd.DataFrame, context: str) -> None:
        from mlflow.entities import Dataset, DatasetInput, InputTag
        from mlflow.types.utils import _infer_schema

        with _quiet_schema_hints():
            schema = json.dumps({"mlflow_colspec": _infer_schema(frame.head(100)).to_dict()})
        dataset = Dataset(
            name=name,
            digest=digest[:36],
            source_type="local" if uri.startswith("file:") else "uri",
            source=json.dumps({"uri": uri}),
            schema=schema,
            profile=json.dumps({"num_rows": len(frame), "num_elements": int(frame.size)}),
        )
        with translate_errors("logging the dataset", self.tracking_uri):
            self.client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", context)])])

    def log_sklearn_model(self, run_id: str, model: Any, *, example: pd.DataFrame) -> str:
        """Save with skops, signature, input example and exact requirements; return the model's URI."""
        import tempfile

        import mlflow.sklearn
        import skops.io
        from mlflow.models import Model, infer_signature

        with _quiet_schema_hints():
            signature = infer_signature(example, model.predict(example))
        # The model was trained in this process a moment ago, so the types it is
        # made of are trusted by construction; skops still refuses any others at load.
        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
        with tempfile.TemporaryDirectory() as tmp, translate_errors("logging the model", self.tracking_uri):
            path = Path(tmp) / MODEL_ARTIFACT
            with _quiet_schema_hints():
                mlflow.sklearn.save_model(
                    model,
                    str(path),
                    mlflow_model=Model(run_id=run_id, artifact_path=MODEL_ARTIFACT),
                    signature=signature,
                    input_example=example.head(5),
                    serialization_format="skops",
                    skops_trusted_types=trusted,
                    pip_requirements=model_requirements(model, cache_dir=self.cache_dir),
                )
            self.client.log_artifacts(run_id, str(path), MODEL_ARTIFACT)
            return f"{self.client.get_run(run_id).info.artifact_uri}/{MODEL_ARTIFACT}"

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        with translate_errors(f"logging {artifact_file}", self.tracking_uri):
            self.client.log_text(run_id, text, artifact_file)

    def log_file(self, run_id: str, local_path: Path) -> None:
        with translate_errors(f"logging {local_path.name}", self.tracking_uri):
            self.client.log_artifact(run_id, str(local_path))

    def download_artifact(self, run_id: str, path: str, destination: Path) -> Path:
        """One run artifact, copied under ``destination``; NotFound when the run never logged it."""
        from mlflow.exceptions import MlflowException

        if path not in self.artifact_names(run_id):
            raise NotFound(f"run {run_id} has no artifact {path!r}", hint="Train the version again with `shipyard pipeline run`.")
        destination.mkdir(parents=True, exist_ok=True)
        with translate_errors(f"downloading {path} of run {run_id}", self.tracking_uri):
            try:
                return Path(self.client.download_artifacts(run_id, path, str(destination)))
            except MlflowException as exc:
                raise NotFound(f"run {run_id} has no artifact {path!r}: {exc.message}") from exc

    def artifact_names(self, run_id: str, path: str | None = None) -> list[str]:
        with translate_errors(f"listing artifacts of run {run_id}", self.tracking_uri):
            return [Path(info.path).name for info in self.client.list_artifacts(run_id, path)]

    def run_facts(self, run_id: str) -> dict[str, Any]:
        """Tags, artifact location and dataset inputs of a run that trained a model elsewhere."""
        import json

        with translate_errors(f"reading run {run_id}", self.tracking_uri):
            run = self.client.get_run(run_id)
        sources = []
        for dataset_input in run.inputs.dataset_inputs if run.inputs else []:
            try:
                uri = json.loads(dataset_input.dataset.source).get("uri")
            except (ValueError, AttributeError):
                uri = None
            if uri:
                sources.append(uri)
        return {
            "run_id": run_id,
            "artifact_uri": run.info.artifact_uri,
            "status": run.info.status,
            "tags": dict(run.data.tags),
            "data_sources": sources,
        }

    def model_source(self, run_id: str, artifact_path: str) -> str:
        """Where a run's model lives: a run artifact folder, or an MLflow 3 logged model of that name."""
        path = artifact_path.strip("/")
        with translate_errors(f"finding model {path!r} of run {run_id}", self.tracking_uri), self._as_default():
            run = self.client.get_run(run_id)
            # MLflow 3 keeps logged models outside the run's artifacts (and lists them
            # there as if they were inside), so look for a logged model first.
            logged = self.client.search_logged_models(
                experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
            )
            for model in logged:
                if model.name == path:
                    return str(model.artifact_location)
            if "MLmodel" in {Path(a.path).name for a in self.client.list_artifacts(run_id, path)}:
                return f"{run.info.artifact_uri.rstrip('/')}/{path}"
        names = sorted({m.name for m in logged})
        raise NotFound(
            f"run {run_id} has no model at {path!r}",
            hint=f"Models logged by the run: {', '.join(names) or 'none'}. Pass one with --artifact-path.",
        )

    def finish_run(self, run_id: str, *, failed: bool = False) -> None:
        with translate_errors("closing the run", self.tracking_uri):
            self.client.set_terminated(run_id, "FAILED" if failed else "FINISHED")

    def run_summary(self, run_id: str) -> dict[str, Any]:
        with translate_errors(f"reading run {run_id}", self.tracking_uri):
            run = self.client.get_run(run_id)
        return {
            "run_id": run_id,
            "experiment_id": run.info.experiment_id,
            "status": run.info.status,
            "artifact_uri": run.info.artifact_uri,
            "params": dict(run.data.params),
            "metrics": dict(run.data.metrics),
        }

    def local_model_dir(self, source: str) -> Path:
        """A local folder with the model's files: the source itself when it is local, else a download."""
        source = self.here(source)
        path = local_path(source)
        if path is not None:
            if not (path / "MLmodel").is_file():
                raise NotFound(f"no model at {source} (MLmodel is missing)")
            return path
        import mlflow.artifacts

        with translate_errors(f"downloading the model at {source}", self.tracking_uri), self._as_default():
            return Path(mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=self.tracking_uri))


@contextmanager
def _quiet_schema_hints() -> Iterator[None]:
    # MLflow hints that integer columns cannot hold missing values; Shipyard's
    # signature is inferred from real rows on purpose, so the hint is noise here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer", category=UserWarning)
        yield


def local_path(source: str) -> Path | None:
    """The folder a local source (a path or a file: URI) names; None for a remote one."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(source)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(source)
    return None


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]
