"""What the pipeline hands the service to register, the result it reports, and the lineage around both."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.config import Settings
from shipyard.domain.entities import ModelVersion
from shipyard.lineage import DatasetRef, LineageEmitter, StepRun
from shipyard.pipeline.prepare import Prepared

StepReporter = Callable[[str], AbstractContextManager[object]]


def no_progress(_step: str) -> AbstractContextManager[object]:
    return nullcontext()


@dataclass(frozen=True, slots=True, kw_only=True)
class GitInfo:
    commit: str | None
    dirty: bool | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineResult:
    version: ModelVersion
    run_id: str
    metrics: dict[str, float]
    rows_train: int
    rows_holdout: int
    seconds: float
    train_seconds: float = 0.0  # of ``seconds``, the user's code: importing train.py and train() (0 when adopted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.to_dict(),
            "run_id": self.run_id,
            "metrics": self.metrics,
            "rows_train": self.rows_train,
            "rows_holdout": self.rows_holdout,
            "seconds": round(self.seconds, 3),
            "train_seconds": round(self.train_seconds, 3),
        }


COMMIT = re.compile(r"[0-9a-f]{7,64}")


def is_commit(text: str | None) -> bool:
    """A git object name (abbreviated or full, SHA-1 or SHA-256): hex only, so never an option or a path."""
    return text is not None and COMMIT.fullmatch(text) is not None


def git_info(root: Path) -> GitInfo:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return GitInfo(commit=None, dirty=None)
    status = git("status", "--porcelain", "--untracked-files=no")
    return GitInfo(commit=commit, dirty=bool(status) if status is not None else None)


def lineage_emitter(settings: Settings) -> LineageEmitter:
    """OpenLineage events of pipeline steps: under the shared location's lineage/ (deploy.shared_path, else .shipyard/),
    and to `lineage.url` when set."""
    config = settings.spec.lineage
    return LineageEmitter(
        namespace=f"shipyard/{settings.spec.project}", directory=settings.lineage_dir, url=config.url, api_key=config.api_key
    )


def data_ref(prepared: Prepared) -> DatasetRef:
    frame = prepared.dataset.frame
    return DatasetRef(
        namespace="file",
        name=str(prepared.path.resolve()),
        fields=tuple((str(column), str(dtype)) for column, dtype in frame.dtypes.items()),
        fingerprint=prepared.dataset.fingerprint,
        rows=len(frame),
    )


def data_refs(prepared: Prepared) -> list[DatasetRef]:
    """The step's input datasets: the data file (or a feature store's entity file), and each feature view it joined."""
    refs = [data_ref(prepared)]
    facts = prepared.feature_store
    if facts:
        for view in facts["feature_views"]:
            refs.append(
                DatasetRef(
                    namespace=f"feast://{facts['project']}",
                    name=f"feature_views/{view['name']}",
                    fields=tuple(
                        (name, str(prepared.dataset.frame[name].dtype))
                        for name in view["features"]
                        if name in prepared.dataset.frame.columns
                    ),
                    fingerprint=view["hash"],
                    rows=len(prepared.dataset.frame),
                )
            )
    return refs


def model_ref(settings: Settings, version: ModelVersion) -> DatasetRef:
    """A registered model as OpenLineage output: one dataset per model, its version as the dataset version."""
    return DatasetRef(
        namespace=f"mlflow/{settings.registry_uri}", name=f"models/{version.model}", fingerprint=str(version.version)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    """Everything the service needs to register a new version (the pipeline itself writes no state)."""

    model: str
    owner: str
    description: str
    source: str
    run_id: str
    data_uri: str
    data_fingerprint: str
    git_commit: str | None
    metrics: dict[str, float]
    details: dict[str, Any]
    evidence: dict[str, Any]
    schema: dict[str, Any]
    files_sha256: dict[str, str] | None = None  # of the files the evidence was collected on (None: hash the source)


Register = Callable[[Registration], ModelVersion]


def register(
    settings: Settings,
    register_version: Register,
    model_name: str,
    *,
    source: str,
    run_id: str,
    prepared: Prepared,
    evidence: dict[str, Any],
    schema: dict[str, Any],
    git: GitInfo,
    how: str,
    step: StepRun,
    files_sha256: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> ModelVersion:
    """Hand the version to the service to register; ``step`` (its lineage run) gets the version as output."""
    spec = settings.model(model_name)
    version = register_version(
        Registration(
            model=model_name,
            owner=spec.owner,
            description=spec.description,
            source=source,
            run_id=run_id,
            data_uri=prepared.dataset.uri,
            data_fingerprint=prepared.dataset.fingerprint,
            git_commit=git.commit,
            metrics=evidence["metrics"]["holdout"],
            details={
                "how": how,
                "git_dirty": git.dirty,
                "split": prepared.parts.method,
                "rows_train": len(prepared.parts.train),
                "rows_holdout": len(prepared.parts.holdout),
                **(details or {}),
            },
            evidence=evidence,
            schema=schema,
            files_sha256=files_sha256,
        )
    )
    step.add_output(model_ref(settings, version))
    step.add_facet("shipyard_training", {"mlflow_run_id": run_id, "git_commit": git.commit or ""})
    return version
