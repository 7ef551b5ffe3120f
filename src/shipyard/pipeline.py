"""The governed training pipeline: data → split → train → evaluate → log → register.

It calls the user's plain ``train(frame) -> model`` and does everything around
it the same way every time, so every version carries the same facts.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard import evidence as evidence_mod
from shipyard.config import ModelSpec, Settings
from shipyard.data import Dataset, load_dataset
from shipyard.domain.entities import ModelVersion
from shipyard.domain.errors import InvalidSpec, NotFound, ShipyardError
from shipyard.evidence import Champion, Lineage
from shipyard.lineage import DatasetRef, LineageEmitter, StepRun
from shipyard.policy.spec import policy_for
from shipyard.registry import MODEL_ARTIFACT, Registry
from shipyard.store.repository import Store

if TYPE_CHECKING:
    import pandas as pd

StepReporter = Callable[[str], AbstractContextManager[object]]


PROFILE_ARTIFACT = "reference_profile.json"


def no_progress(_step: str) -> AbstractContextManager[object]:
    return nullcontext()


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    """The configured data, labelled and split: what training and every check see."""

    dataset: Dataset
    features: list[str]
    parts: Split
    path: Path


def prepare(settings: Settings, spec: ModelSpec, data_path: Path | None = None) -> Prepared:
    data_path = data_path or settings.resolve(spec.data.path)
    dataset = load_dataset(data_path)
    features = feature_columns(spec, dataset.frame, str(data_path))
    frame = dataset.frame
    if spec.data.positive_label is not None:
        frame = frame.copy()
        frame[spec.data.target] = (frame[spec.data.target] == spec.data.positive_label).astype("int64")
    parts = split(spec, frame)
    check_binary_target(spec, parts)
    return Prepared(
        dataset=Dataset(frame=frame, uri=dataset.uri, fingerprint=dataset.fingerprint),
        features=features,
        parts=parts,
        path=data_path,
    )


def with_model_features(prepared: Prepared, model: Any, source: str) -> Prepared:
    """A model trained elsewhere may use fewer columns than configured: score it on its own."""
    from dataclasses import replace

    wanted = getattr(model, "feature_names_in_", None)
    if wanted is None:
        return prepared
    names = [str(name) for name in wanted]
    missing = [name for name in names if name not in prepared.dataset.frame.columns]
    if missing:
        raise InvalidSpec(
            f"the model at {source} needs columns the configured data lacks: {', '.join(missing)}",
            hint="Point models.*.data.path in shipyard.yaml at data with those columns.",
        )
    return replace(prepared, features=names)


def current_champion(store: Store, registry: Registry, model_name: str, *, excluding: int | None = None) -> Champion | None:
    from shipyard.domain.stages import Stage

    try:
        versions = store.list_versions(model_name)
    except NotFound:
        return None
    for version in versions:
        if version.stage is Stage.PRODUCTION and version.version != excluding:
            return Champion(version=version.version, model=registry.load_sklearn(version.source))
    return None


def gather_evidence(
    settings: Settings,
    store: Store,
    registry: Registry,
    model_name: str,
    *,
    model: Any,
    prepared: Prepared,
    lineage: Lineage,
    version: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Evidence for a model on the configured data, and the reference schema it was validated against."""
    from shipyard.checks import data

    spec = settings.model(model_name)
    schema = store.reference_schema(model_name) if _model_known(store, model_name) else None
    if schema is None:
        schema = data.infer_schema(prepared.dataset.frame, id_column=spec.data.id_column)
    parts = prepared.parts
    full = prepared.dataset.frame
    found = evidence_mod.collect(
        model=model,
        spec=spec,
        policy=policy_for(settings, model_name),
        frame=full.drop(columns=[spec.data.target]),
        holdout=parts.holdout,
        features=prepared.features,
        target=full[spec.data.target],
        holdout_target=parts.holdout[spec.data.target],
        schema=schema,
        lineage=lineage,
        champion=current_champion(store, registry, model_name, excluding=version),
        split_method=parts.method,
        train_rows=len(parts.train),
    )
    return found, schema


def _model_known(store: Store, model_name: str) -> bool:
    try:
        store.get_model(model_name)
    except NotFound:
        return False
    return True


def log_governance_artifacts(
    settings: Settings, registry: Registry, model_name: str, run_id: str, evidence: dict[str, Any], schema: dict[str, Any]
) -> list[str]:
    """Model card, lineage, reference schema and evidence next to the model; returns the run's artifact names."""
    from shipyard.checks import modelcard

    spec = settings.model(model_name)
    registry.log_text(run_id, modelcard.render(model_name, spec, evidence), "model_card.md")
    registry.log_text(run_id, json.dumps(evidence["lineage"], indent=2, sort_keys=True), "lineage.json")
    registry.log_text(run_id, json.dumps(schema, indent=2, sort_keys=True), "data_schema.json")
    registry.log_text(run_id, json.dumps(evidence, indent=2, sort_keys=True, default=str), "evidence.json")
    names = set(registry.artifact_names(run_id))
    model_dir = set(registry.artifact_names(run_id, MODEL_ARTIFACT)) if MODEL_ARTIFACT in names else set()
    return sorted(names | model_dir)


def lineage_emitter(settings: Settings) -> LineageEmitter:
    """OpenLineage events of pipeline steps: to .shipyard/lineage/events.jsonl, and to `lineage.url` when set."""
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


def model_ref(settings: Settings, version: ModelVersion) -> DatasetRef:
    """A registered model as OpenLineage output: one dataset per model, its version as the dataset version."""
    return DatasetRef(
        namespace=f"mlflow/{settings.registry_uri}", name=f"models/{version.model}", fingerprint=str(version.version)
    )


def log_reference_profile(registry: Registry, run_id: str, model: Any, prepared: Prepared) -> None:
    """The training data's profile and the holdout's scores, which monitoring compares live traffic with."""
    import tempfile

    from shipyard.checks.evaluation import positive_scores
    from shipyard.monitoring.profile import build_profile, save_profile

    features = prepared.features
    scores = positive_scores(model, prepared.parts.holdout[features])
    profile = build_profile(prepared.parts.train[features].reset_index(drop=True), scores=scores)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / PROFILE_ARTIFACT
        save_profile(profile, path)
        registry.log_file(run_id, path)


def _register(
    settings: Settings,
    store: Store,
    registry: Registry,
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
) -> ModelVersion:
    """Register the version in MLflow and the store; ``step`` (its lineage run) gets the version as output."""
    spec = settings.model(model_name)
    actor = settings.actor
    number = registry.register_version(
        model_name,
        source=source,
        run_id=run_id,
        description=spec.description,
        tags={"shipyard.registered_by": actor, "shipyard.data.fingerprint": prepared.dataset.fingerprint},
    )
    version = store.register_version(
        actor=actor,
        model=model_name,
        owner=spec.owner,
        version=number,
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
        },
        evidence=evidence,
        schema=schema,
        files_sha256=registry.file_digests(source),
    )
    step.add_output(model_ref(settings, version))
    step.add_facet("shipyard_training", {"mlflow_run_id": run_id, "git_commit": git.commit or ""})
    return version


def run(
    settings: Settings,
    store: Store,
    registry: Registry,
    model_name: str,
    *,
    progress: StepReporter = no_progress,
    data_path: Path | None = None,
) -> PipelineResult:
    """Run the governed pipeline for one model and register a candidate version.

    ``data_path`` replaces the configured data source (a retrain on recent labelled data).
    """
    started = time.perf_counter()
    spec = settings.model(model_name)
    actor = settings.actor
    lineage = lineage_emitter(settings)

    with lineage.step(f"{model_name}.pipeline", facets={"shipyard_pipeline": {"model": model_name, "actor": actor}}) as parent:
        with progress("load data"), lineage.step(f"{model_name}.load_data", parent=parent) as step:
            policy_for(settings, model_name)  # a bad policy fails before any work
            prepared = prepare(settings, spec, data_path)
            parts, features, dataset = prepared.parts, prepared.features, prepared.dataset
            data = data_ref(prepared)
            step.add_input(data)
            # Reach MLflow before training, so an unreachable server fails fast.
            experiment = registry.experiment_id(settings.experiment)
        with progress("train"), lineage.step(f"{model_name}.train", parent=parent, inputs=[data]):
            train = load_train_function(settings.root, spec.train)
            train_frame = parts.train[[*features, spec.data.target]].reset_index(drop=True)
            try:
                model = train(train_frame)
            except ShipyardError:
                raise
            except Exception as exc:
                where = settings.resolve(spec.train.rpartition(":")[0])
                raise InvalidSpec(f"{spec.train} raised {_user_error(exc, where)}") from exc
            if model is None:
                raise InvalidSpec(f"{spec.train} returned None; expected a fitted model")

        git = git_info(settings.root)
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
        facts = Lineage(
            data_sources=[dataset.uri],
            data_fingerprint=dataset.fingerprint,
            git_commit=git.commit,
            git_clean=None if git.dirty is None else not git.dirty,
            trained_by=actor,
            run_id=run_id,
        )
        try:
            with progress("evaluate and check"), lineage.step(f"{model_name}.evaluate", parent=parent, inputs=[data]):
                evidence, schema = gather_evidence(
                    settings, store, registry, model_name, model=model, prepared=prepared, lineage=facts
                )
                metrics = evidence["metrics"]["holdout"]
            with progress("log to MLflow"):
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
                    run_id,
                    name=prepared.path.name,
                    uri=dataset.uri,
                    digest=dataset.fingerprint,
                    frame=dataset.frame,
                    context="training",
                )
                example = parts.holdout[features].head(5).reset_index(drop=True)
                source = registry.log_sklearn_model(run_id, model, example=example)
                log_reference_profile(registry, run_id, model, prepared)
                evidence["artifacts"] = log_governance_artifacts(settings, registry, model_name, run_id, evidence, schema)
        except BaseException:
            registry.finish_run(run_id, failed=True)
            raise
        registry.finish_run(run_id)
        with progress("register"), lineage.step(f"{model_name}.register", parent=parent, inputs=[data]) as step:
            version = _register(
                settings,
                store,
                registry,
                model_name,
                source=source,
                run_id=run_id,
                prepared=prepared,
                evidence=evidence,
                schema=schema,
                git=git,
                how="trained",
                step=step,
            )
    return PipelineResult(
        version=version,
        run_id=run_id,
        metrics=metrics,
        rows_train=len(parts.train),
        rows_holdout=len(parts.holdout),
        seconds=time.perf_counter() - started,
    )


def adopt(
    settings: Settings,
    store: Store,
    registry: Registry,
    model_name: str,
    run_id: str,
    *,
    artifact_path: str = MODEL_ARTIFACT,
    progress: StepReporter = no_progress,
) -> PipelineResult:
    """Register a model that an existing MLflow run logged, with the same evidence as a trained one.

    Like a trained version it gets OpenLineage events and a reference profile (from the project's
    configured data, which its evidence is measured on too), so monitoring and `trace` work on it.
    """
    started = time.perf_counter()
    spec = settings.model(model_name)
    lineage_events = lineage_emitter(settings)
    facets = {"shipyard_pipeline": {"model": model_name, "actor": settings.actor, "adopted_run": run_id}}
    with lineage_events.step(f"{model_name}.adopt", facets=facets) as parent:
        with progress("load run and data"), lineage_events.step(f"{model_name}.load_data", parent=parent) as step:
            policy_for(settings, model_name)
            facts = registry.run_facts(run_id)
            source = registry.model_source(run_id, artifact_path)
            model = registry.load_sklearn(source)
            prepared = with_model_features(prepare(settings, spec), model, source)
            data = data_ref(prepared)
            step.add_input(data)
        tags = facts["tags"]
        commit = tags.get("mlflow.source.git.commit")
        dirty = tags.get("shipyard.git.dirty")
        git = GitInfo(commit=commit, dirty=None if dirty is None else dirty == "true")
        lineage = Lineage(
            data_sources=facts["data_sources"] or [prepared.dataset.uri],
            data_fingerprint=prepared.dataset.fingerprint,
            git_commit=commit,
            git_clean=None if git.dirty is None else not git.dirty,
            trained_by=tags.get("mlflow.user"),
            run_id=run_id,
        )
        with progress("evaluate and check"), lineage_events.step(f"{model_name}.evaluate", parent=parent, inputs=[data]):
            evidence, schema = gather_evidence(
                settings, store, registry, model_name, model=model, prepared=prepared, lineage=lineage
            )
        with progress("log evidence to the run"):
            if PROFILE_ARTIFACT not in registry.artifact_names(run_id):
                log_reference_profile(registry, run_id, model, prepared)
            evidence["artifacts"] = log_governance_artifacts(settings, registry, model_name, run_id, evidence, schema)
        with progress("register"), lineage_events.step(f"{model_name}.register", parent=parent, inputs=[data]) as step:
            version = _register(
                settings,
                store,
                registry,
                model_name,
                source=source,
                run_id=run_id,
                prepared=prepared,
                evidence=evidence,
                schema=schema,
                git=git,
                how="adopted",
                step=step,
            )
    return PipelineResult(
        version=version,
        run_id=run_id,
        metrics=evidence["metrics"]["holdout"],
        rows_train=len(prepared.parts.train),
        rows_holdout=len(prepared.parts.holdout),
        seconds=time.perf_counter() - started,
    )


def refresh_evidence(
    settings: Settings, store: Store, registry: Registry, version: ModelVersion, *, save: bool = True
) -> dict[str, Any]:
    """Collect a registered version's evidence again, on the model's configured data and current champion.

    With ``save=False`` nothing is written anywhere (``gate check`` changes nothing).
    """
    spec = settings.model(version.model)
    old = store.evidence(version.model, version.version) or {}
    model = registry.load_sklearn(version.source)
    prepared = with_model_features(prepare(settings, spec), model, version.source)
    lineage_facts = old.get("lineage") or {}
    lineage = Lineage(
        data_sources=lineage_facts.get("data_sources") or [version.data_uri or prepared.dataset.uri],
        data_fingerprint=lineage_facts.get("data_fingerprint") or version.data_fingerprint or prepared.dataset.fingerprint,
        git_commit=lineage_facts.get("git_commit", version.git_commit),
        git_clean=lineage_facts.get("git_clean"),
        trained_by=lineage_facts.get("trained_by"),
        run_id=version.run_id or "",
    )
    evidence, schema = gather_evidence(
        settings, store, registry, version.model, model=model, prepared=prepared, lineage=lineage, version=version.version
    )
    evidence["holdout_fingerprint"] = prepared.dataset.fingerprint
    evidence["artifacts"] = old.get("artifacts", [])
    if save:
        if version.run_id:
            evidence["artifacts"] = log_governance_artifacts(settings, registry, version.model, version.run_id, evidence, schema)
        store.save_evidence(actor=settings.actor, model=version.model, version=version.version, data=evidence)
    return evidence
