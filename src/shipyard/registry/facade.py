"""The Registry: a project's MLflow store, the files of its registered versions, and the mirror of their stages."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import BackendUnavailable, NotFound
from shipyard.domain.stages import STAGE_ALIASES, Stage
from shipyard.registry import flavors, integrity, view
from shipyard.registry.integrity import ModelFiles
from shipyard.registry.tracking import MODEL_ARTIFACT, ONNX_ARTIFACT, Tracking, local_path, translate_errors
from shipyard.registry.view import MANAGED_ALIASES, ORPHANED, STAGE_TAG, MlflowModel, MlflowVersion

if TYPE_CHECKING:
    from shipyard.domain.entities import ModelVersion


class Registry(Tracking):
    """Tracking, plus registered models: their files (checked and loaded) and the stages mirrored into MLflow."""

    # -- model files ----------------------------------------------------------------

    @contextmanager
    def _private_copy(self, source: str) -> Iterator[Path]:
        """The model's files copied into a folder only this process uses, removed afterwards.

        What is hashed and what is loaded are then the same bytes: a file swapped at the
        source between the check and the load cannot slip in.
        """
        import shutil
        import tempfile

        source = self.here(source)
        with tempfile.TemporaryDirectory(prefix="shipyard-model-") as tmp:
            target = Path(tmp) / MODEL_ARTIFACT
            path = local_path(source)
            if path is None:
                import mlflow.artifacts

                with translate_errors(f"downloading the model at {source}", self.tracking_uri), self._as_default():
                    mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp, tracking_uri=self.tracking_uri)
                downloaded = [p for p in Path(tmp).iterdir() if p.is_dir()]
                if len(downloaded) != 1:
                    raise NotFound(f"no model at {source}")
                target = downloaded[0]
            else:
                if not (path / "MLmodel").is_file():
                    raise NotFound(f"no model at {source} (MLmodel is missing)")
                try:
                    shutil.copytree(path, target, symlinks=False)
                except (OSError, shutil.Error) as exc:
                    raise BackendUnavailable(f"cannot read the model files at {source}: {exc}") from exc
            yield target

    @contextmanager
    def _mlmodel_folder(self, source: str) -> Iterator[Path]:
        """A folder holding the model's MLmodel file (the model folder itself when it is local)."""
        import tempfile

        source = self.here(source)
        path = local_path(source)
        if path is not None:
            yield path
            return
        import mlflow.artifacts

        with tempfile.TemporaryDirectory(prefix="shipyard-mlmodel-") as tmp:
            with translate_errors(f"reading the MLmodel of {source}", self.tracking_uri), self._as_default():
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{source.rstrip('/')}/MLmodel", dst_path=tmp, tracking_uri=self.tracking_uri
                )
            yield Path(tmp)

    def file_digests(self, source: str) -> dict[str, str]:
        """sha256 of every file of the model, by path relative to the model folder."""
        return integrity.file_digests(self.local_model_dir(source))

    def verify_files(self, source: str, digests: Mapping[str, str] | None, *, subject: str) -> None:
        """Raise TamperedModel unless the files at ``source`` are exactly those ``digests`` record.

        No digests (a version registered before they were recorded): UnverifiedModel, fail closed.
        """
        integrity.require_digests(subject, digests)
        source = self.here(source)
        with self._private_copy(source) as folder:
            integrity.check(subject, source, digests, integrity.file_digests(folder))

    def verify_version(self, version: ModelVersion) -> None:
        """`verify_files` for a registered version: call it before every promotion."""
        self.verify_files(version.source, version.files_sha256, subject=version.subject)

    def copy_version_files(self, version: ModelVersion, dest: Path) -> dict[str, str]:
        """Copy a registered version's files into ``dest`` (a new folder), only when they match its recorded digests."""
        import shutil

        digests = integrity.require_digests(version.subject, version.files_sha256)
        source = self.here(version.source)
        with self._private_copy(source) as folder:
            found = integrity.file_digests(folder)
            integrity.check(version.subject, source, digests, found)
            shutil.copytree(folder, dest, ignore=shutil.ignore_patterns(*integrity.NOT_MODEL_FILES))
        return found

    def add_model_file(self, source: str, path: Path) -> None:
        """Put the file at ``path`` into the model's folder at ``source``, beside the model (before it is registered,
        so its digest is recorded with the others and every load checks it)."""
        import shutil

        source = self.here(source)
        folder = local_path(source)
        if folder is not None:
            try:
                shutil.copyfile(path, folder / path.name)
            except OSError as exc:
                raise BackendUnavailable(f"cannot write {path.name} into the model folder {source}: {exc}") from exc
            return
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        with translate_errors(f"logging {path.name} beside the model at {source}", self.tracking_uri), self._as_default():
            get_artifact_repository(source).log_artifact(str(path))  # type: ignore[no-untyped-call]

    def model_format(self, source: str) -> str:
        """How the scikit-learn model at ``source`` is serialised (skops, pickle or cloudpickle), read from its MLmodel alone."""
        source = self.here(source)
        with self._mlmodel_folder(source) as folder:
            mlmodel = integrity.read_mlmodel(folder, source)
        kind, flavor = flavors.model_kind(mlmodel, source)
        return flavors.serialization_format(kind, flavor, integrity.serialization_format(flavor))

    def load_files(
        self,
        source: str,
        *,
        digests: Mapping[str, str] | None = None,
        subject: str | None = None,
        allow_pickle: bool = False,
        run_id: str | None = None,
    ) -> ModelFiles:
        """Load the scikit-learn model at ``source`` from a private copy of its files.

        With ``digests`` (a registered version), the copy must match them exactly
        (TamperedModel otherwise); registration was the decision to trust those files.
        Without them (a run being adopted), a model whose loading can run code from its
        files (pickle, cloudpickle, skops trusting other callables, code folders) is
        refused (UntrustedFormat) unless ``allow_pickle`` says the run ``run_id`` is
        trusted. The digests returned are those of the copy that was loaded: record them.
        """
        source = self.here(source)
        with self._private_copy(source) as folder:
            found = integrity.file_digests(folder)
            if digests is not None:
                integrity.check(subject or source, source, digests, found)
            mlmodel = integrity.read_mlmodel(folder, source)
            kind, flavor = flavors.model_kind(mlmodel, source)
            fmt = flavors.serialization_format(kind, flavor, integrity.serialization_format(flavor))
            if digests is None and not allow_pickle:
                if kind == "sklearn":
                    integrity.refuse_untrusted(folder, flavor, source=source, run_id=run_id)
                elif (reason := flavors.untrusted_reason(kind, flavor, fmt)) is not None:
                    raise integrity.UntrustedFormat(
                        f"refusing to load the model of {f'run {run_id}' if run_id else source}: {reason}",
                        hint=f"Pass {integrity.TRUST_FLAG} if you trust the run and whoever could write its artifacts.",
                    )
            if kind == "sklearn":
                model = self._load_sklearn_folder(folder, source)
            else:
                with translate_errors(f"loading the model at {source}", self.tracking_uri):
                    model = flavors.load(kind, folder)
            return ModelFiles(
                model=model,
                digests=found,
                serialization_format=fmt,
                mlmodel=mlmodel,
                input_example=_input_example(folder),
                onnx=_onnx(folder),
            )

    def load_sklearn(
        self,
        source: str,
        *,
        digests: Mapping[str, str] | None = None,
        subject: str | None = None,
        allow_pickle: bool = False,
        run_id: str | None = None,
    ) -> Any:
        """The model alone; see `load_files`. A registered version is loaded with `load_version`."""
        return self.load_files(source, digests=digests, subject=subject, allow_pickle=allow_pickle, run_id=run_id).model

    def load_version(self, version: ModelVersion) -> ModelFiles:
        """A registered version, loaded only when its files are those recorded at registration."""
        return self.load_files(
            version.source, digests=integrity.require_digests(version.subject, version.files_sha256), subject=version.subject
        )

    def _load_sklearn_folder(self, folder: Path, source: str) -> Any:
        import mlflow.sklearn

        with translate_errors(f"loading the model at {source}", self.tracking_uri):
            return mlflow.sklearn.load_model(str(folder))

    # -- registry ---------------------------------------------------------------

    def register_version(self, name: str, *, source: str, run_id: str, description: str, tags: Mapping[str, str]) -> int:
        from mlflow.exceptions import MlflowException

        with translate_errors(f"registering {name}", self.registry_uri):
            try:
                self.client.get_registered_model(name)
            except MlflowException as exc:
                if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                    raise
                self.client.create_registered_model(name, description=description)
            version = self.client.create_model_version(name, source, run_id=run_id, tags=dict(tags))
            return int(version.version)

    def mirror(self, name: str, stages: Mapping[int, Stage], changed: list[int] | None = None) -> None:
        """Make MLflow's version tags and aliases say what the store says."""
        with translate_errors(f"mirroring stages of {name}", self.registry_uri):
            for version in stages if changed is None else changed:
                self.client.set_model_version_tag(name, str(version), STAGE_TAG, stages[version].value)
            current = self.client.get_registered_model(name).aliases or {}
            for alias, stage in STAGE_ALIASES.items():
                holders = [version for version, s in stages.items() if s is stage]
                target = str(max(holders)) if holders else None
                if target is not None and str(current.get(alias)) != target:
                    self.client.set_registered_model_alias(name, alias, target)
                elif target is None and alias in current:
                    self.client.delete_registered_model_alias(name, alias)

    def aliases(self, name: str) -> dict[str, int]:
        with translate_errors(f"reading aliases of {name}", self.registry_uri):
            return {alias: int(v) for alias, v in (self.client.get_registered_model(name).aliases or {}).items()}

    def version_tags(self, name: str, version: int) -> dict[str, str]:
        with translate_errors(f"reading {name}/{version}", self.registry_uri):
            return dict(self.client.get_model_version(name, str(version)).tags)

    # -- the mirror as MLflow holds it ----------------------------------------------

    def registered_model(self, name: str) -> MlflowModel:
        """Every version MLflow holds for ``name`` (number, run id, source, tags) and the aliases."""
        with translate_errors(f"reading {name} from the MLflow registry", self.registry_uri):
            aliases = self.client.get_registered_model(name).aliases or {}
            return view.to_entity(name, view.versions_of(self.client, name), aliases)

    def orphans(self, name: str, known_versions: Iterable[int]) -> list[MlflowVersion]:
        """The versions MLflow holds for ``name`` that the store does not know (``known_versions``)."""
        return self.registered_model(name).unknown_to(known_versions)

    def mark_orphan(self, name: str, version: int) -> list[str]:
        """Tag a version the store does not know shipyard.stage=orphaned and take from it the aliases
        Shipyard manages (a plain client could have pointed @production at it); the version, its
        files and any other alias stay. Returns the aliases taken."""
        with translate_errors(f"marking {name}/{version} orphaned", self.registry_uri):
            self.client.set_model_version_tag(name, str(version), STAGE_TAG, ORPHANED)
            current = self.client.get_registered_model(name).aliases or {}
            taken = sorted(alias for alias, held in current.items() if alias in MANAGED_ALIASES and int(held) == version)
            for alias in taken:
                self.client.delete_registered_model_alias(name, alias)
        return taken


def _onnx(folder: Path) -> bytes | None:
    path = folder / ONNX_ARTIFACT
    return path.read_bytes() if path.is_file() else None


def _input_example(folder: Path) -> Any | None:
    """The input example logged with the model (MLflow's JSON), or None."""
    try:
        return json.loads((folder / "input_example.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
