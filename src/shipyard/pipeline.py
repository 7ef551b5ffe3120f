"""The governed training pipeline: data → split → train → evaluate → log → register.

It calls the user's plain ``train(frame) -> model`` and does everything around
it the same way every time, so every version carries the same facts.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.checks.evaluation import binary_metrics, positive_scores
from shipyard.config import ModelSpec, Settings
from shipyard.domain.entities import ModelVersion
from shipyard.domain.errors import InvalidSpec, NotFound, ShipyardError
from shipyard.registry import Registry
from shipyard.store.repository import Store

if TYPE_CHECKING:
    import pandas as pd

StepReporter = Callable[[str], AbstractContextManager[object]]


def no_progress(_step: str) -> AbstractContextManager[object]:
    return nullcontext()


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataset:
    frame: pd.DataFrame
    uri: str
    fingerprint: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame
    method: str


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.to_dict(),
            "run_id": self.run_id,
            "metrics": self.metrics,
            "rows_train": self.rows_train,
            "rows_holdout": self.rows_holdout,
            "seconds": round(self.seconds, 3),
        }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_dataset(path: Path) -> Dataset:
    import pandas as pd

    if not path.is_file():
        raise NotFound(f"dataset {path} does not exist", hint="Check data.path in shipyard.yaml.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix == ".csv":
            frame = pd.read_csv(path)
        else:
            raise InvalidSpec(f"dataset {path} has suffix {suffix!r}; expected .parquet or .csv")
    except (ValueError, OSError) as exc:
        raise InvalidSpec(f"dataset {path} could not be read: {exc}") from exc
    return Dataset(frame=frame, uri=path.resolve().as_uri(), fingerprint=sha256_file(path))


def feature_columns(spec: ModelSpec, frame: pd.DataFrame, source: str) -> list[str]:
    data = spec.data
    named = [data.target, data.time_column, data.id_column, *(data.features or [])]
    missing = [c for c in named if c is not None and c not in frame.columns]
    if missing:
        raise InvalidSpec(
            f"dataset {source} has no column {', '.join(map(repr, missing))}",
            hint=f"Columns present: {', '.join(map(str, frame.columns))}. Fix models.*.data in shipyard.yaml.",
        )
    if data.features:
        return list(data.features)
    excluded = {data.target, data.time_column, data.id_column}
    return [c for c in frame.columns if c not in excluded]


def split(spec: ModelSpec, frame: pd.DataFrame) -> Split:
    """Deterministic: by time when configured (the holdout is the newest rows), else seeded."""
    import numpy as np

    data = spec.data
    n_holdout = max(1, round(len(frame) * data.holdout_fraction))
    if n_holdout >= len(frame):
        raise InvalidSpec(f"dataset has {len(frame)} rows; too few to hold out {data.holdout_fraction:.0%} and train")
    if data.time_column:
        keys = [data.time_column] + ([data.id_column] if data.id_column else [])
        ordered = frame.sort_values(keys, kind="mergesort").reset_index(drop=True)
        cut = len(ordered) - n_holdout
        return Split(train=ordered.iloc[:cut], holdout=ordered.iloc[cut:], method=f"time:{data.time_column}")
    order = np.random.default_rng(data.seed).permutation(len(frame))
    shuffled = frame.iloc[order].reset_index(drop=True)
    cut = len(shuffled) - n_holdout
    return Split(train=shuffled.iloc[:cut], holdout=shuffled.iloc[cut:], method=f"random:seed={data.seed}")


def check_binary_target(spec: ModelSpec, parts: Split) -> None:
    target = spec.data.target
    for name, part in (("training", parts.train), ("holdout", parts.holdout)):
        values = set(part[target].dropna().unique().tolist())
        if not values <= {0, 1} or len(values) < 2:
            raise InvalidSpec(
                f"target {target!r} in the {name} rows has values {sorted(map(str, values))[:5]}; "
                "expected both classes of a binary 0/1 label",
            )


def load_train_function(root: Path, entrypoint: str) -> Callable[[Any], Any]:
    file_name, _, function = entrypoint.rpartition(":")
    path = root / file_name
    if not path.is_file():
        raise NotFound(f"training code {path} does not exist", hint="Check models.*.train in shipyard.yaml (FILE.py:FUNCTION).")
    module_name = f"shipyard_user_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise InvalidSpec(f"training code {path} cannot be imported")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise InvalidSpec(f"importing {path} failed: {_user_error(exc, path)}") from exc
    func = getattr(module, function, None)
    if not callable(func):
        raise InvalidSpec(f"{path} has no function {function!r}", hint="Define train(frame) -> model there.")
    return func  # type: ignore[no-any-return]


def _user_error(exc: BaseException, path: Path) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == path.resolve()]
    where = f" (at {path.name} line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


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


def _estimator_params(model: Any) -> dict[str, Any]:
    if not hasattr(model, "get_params"):
        return {}
    params = {}
    for key, value in model.get_params(deep=True).items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            params[key[:250]] = value
    return dict(list(sorted(params.items()))[:90])


def run(
    settings: Settings,
    store: Store,
    registry: Registry,
    model_name: str,
    *,
    progress: StepReporter = no_progress,
) -> PipelineResult:
    """Run the governed pipeline for one model and register a candidate version."""
    started = time.perf_counter()
    spec = settings.model(model_name)
    actor = settings.actor

    with progress("load data"):
        data_path = settings.resolve(spec.data.path)
        dataset = load_dataset(data_path)
        features = feature_columns(spec, dataset.frame, str(data_path))
        parts = split(spec, dataset.frame)
        check_binary_target(spec, parts)
        # Reach MLflow before training, so an unreachable server fails fast.
        experiment = registry.experiment_id(settings.experiment)
    with progress("train"):
        train = load_train_function(settings.root, spec.train)
        train_frame = parts.train[[*features, spec.data.target]].reset_index(drop=True)
        try:
            model = train(train_frame)
        except ShipyardError:
            raise
        except Exception as exc:
            raise InvalidSpec(f"{spec.train} raised {_user_error(exc, settings.resolve(spec.train.rpartition(':')[0]))}") from exc
        if model is None:
            raise InvalidSpec(f"{spec.train} returned None; expected a fitted model")
    with progress("evaluate"):
        holdout_x = parts.holdout[features].reset_index(drop=True)
        scores = positive_scores(model, holdout_x)
        metrics = binary_metrics(parts.holdout[spec.data.target].to_numpy(), scores)

    git = git_info(settings.root)
    with progress("log to MLflow"):
        tags = {
            "shipyard.model": model_name,
            "shipyard.data.uri": dataset.uri,
            "shipyard.data.fingerprint": dataset.fingerprint,
            "mlflow.user": actor,
        }
        if git.commit:
            tags["mlflow.source.git.commit"] = git.commit
            tags["shipyard.git.dirty"] = str(git.dirty).lower()
        run_id = registry.start_run(experiment, run_name=f"{model_name}-train", tags=tags)
        try:
            params = {
                **_estimator_params(model),
                "shipyard.split": parts.method,
                "shipyard.holdout_fraction": spec.data.holdout_fraction,
                "shipyard.rows_train": len(parts.train),
                "shipyard.rows_holdout": len(parts.holdout),
                "shipyard.features": ",".join(features),
            }
            registry.log_run_data(run_id, params=params, metrics={f"holdout_{k}": v for k, v in metrics.items()})
            registry.log_dataset(
                run_id, name=data_path.name, uri=dataset.uri, digest=dataset.fingerprint, frame=dataset.frame, context="training"
            )
            source = registry.log_sklearn_model(run_id, model, example=holdout_x.head(5))
        except BaseException:
            registry.finish_run(run_id, failed=True)
            raise
        registry.finish_run(run_id)
    with progress("register"):
        number = registry.register_version(
            model_name,
            source=source,
            run_id=run_id,
            description=spec.description,
            tags={"shipyard.registered_by": actor, "shipyard.data.fingerprint": dataset.fingerprint},
        )
        version = store.register_version(
            actor=actor,
            model=model_name,
            owner=spec.owner,
            version=number,
            source=source,
            run_id=run_id,
            data_uri=dataset.uri,
            data_fingerprint=dataset.fingerprint,
            git_commit=git.commit,
            metrics=metrics,
            details={
                "git_dirty": git.dirty,
                "split": parts.method,
                "rows_train": len(parts.train),
                "rows_holdout": len(parts.holdout),
            },
        )
    return PipelineResult(
        version=version,
        run_id=run_id,
        metrics=metrics,
        rows_train=len(parts.train),
        rows_holdout=len(parts.holdout),
        seconds=time.perf_counter() - started,
    )
