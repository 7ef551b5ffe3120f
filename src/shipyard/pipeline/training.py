"""The governed training pipeline: data → split → train → evaluate → log → register.

It calls the user's plain ``train(frame) -> model`` and does everything around
it the same way every time, so every version carries the same facts.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shipyard.config import Settings
from shipyard.domain.errors import InvalidSpec, NotFound, ShipyardError
from shipyard.evidence import Lineage
from shipyard.pipeline.evidence import (
    check_serving,
    gather_evidence,
    log_governance_artifacts,
    log_reference_profile,
    measure_footprint,
)
from shipyard.pipeline.prepare import Prepared, prepare
from shipyard.pipeline.registration import (
    GitInfo,
    PipelineResult,
    Register,
    StepReporter,
    data_ref,
    git_info,
    lineage_emitter,
    no_progress,
)
from shipyard.pipeline.registration import register as register_version
from shipyard.policy.spec import policy_for
from shipyard.registry import Registry
from shipyard.store.repository import Store


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


def _fit(settings: Settings, model_name: str, prepared: Prepared) -> tuple[Any, float]:
    """The user's code: importing their module (and what it imports) and calling train(); its seconds."""
    spec = settings.model(model_name)
    started = time.perf_counter()
    train = load_train_function(settings.root, spec.train)
    train_frame = prepared.parts.train[[*prepared.features, spec.data.target]].reset_index(drop=True)
    try:
        model = train(train_frame)
    except ShipyardError:
        raise
    except Exception as exc:
        where = settings.resolve(spec.train.rpartition(":")[0])
        raise InvalidSpec(f"{spec.train} raised {_user_error(exc, where)}") from exc
    if model is None:
        raise InvalidSpec(f"{spec.train} returned None; expected a fitted model")
    return model, time.perf_counter() - started


def _run_tags(settings: Settings, model_name: str, prepared: Prepared, git: GitInfo) -> dict[str, str]:
    tags = {
        "shipyard.model": model_name,
        "shipyard.data.uri": prepared.dataset.uri,
        "shipyard.data.fingerprint": prepared.dataset.fingerprint,
        "mlflow.user": settings.actor,
    }
    if git.commit:
        tags["mlflow.source.git.commit"] = git.commit
        tags["shipyard.git.dirty"] = str(git.dirty).lower()
    return tags


def _log_model(
    settings: Settings, registry: Registry, model_name: str, run_id: str, model: Any, prepared: Prepared,
    metrics: dict[str, float] | None,
) -> str:  # fmt: skip
    """Parameters, the training dataset and the model itself into the run; the model's source URI."""
    spec = settings.model(model_name)
    parts, features = prepared.parts, prepared.features
    params = {
        **_estimator_params(model),
        "shipyard.split": parts.method,
        "shipyard.holdout_fraction": spec.data.holdout_fraction,
        "shipyard.rows_train": len(parts.train),
        "shipyard.rows_holdout": len(parts.holdout),
        "shipyard.features": ",".join(features),
    }
    registry.log_run_data(run_id, params=params, metrics={f"holdout_{k}": v for k, v in (metrics or {}).items()})
    dataset = prepared.dataset
    registry.log_dataset(
        run_id, name=prepared.path.name, uri=dataset.uri, digest=dataset.fingerprint, frame=dataset.frame, context="training"
    )
    example = parts.holdout[features].head(5).reset_index(drop=True)
    source: str = registry.log_sklearn_model(run_id, model, example=example)
    return source


def train_and_log(
    settings: Settings, registry: Registry, model_name: str, *, progress: StepReporter = no_progress,
    data_path: Path | None = None,
) -> tuple[str, float]:  # fmt: skip
    """Team mode's client half: train with the project's own code and data and log the model to MLflow, no more.

    The server adopts the run (``adopt``): it checks the model files' digests and collects the evidence itself,
    so nothing a client computes about its model is trusted. Returns the run id and the seconds train() took.
    """
    spec = settings.model(model_name)
    with progress("load data"):
        policy_for(settings, model_name)
        prepared = prepare(settings, spec, data_path)
        experiment = registry.experiment_id(settings.experiment)
    with progress("train"):
        model, train_seconds = _fit(settings, model_name, prepared)
    run_id = registry.start_run(
        experiment, run_name=f"{model_name}-train", tags=_run_tags(settings, model_name, prepared, git_info(settings.root))
    )
    try:
        with progress("log to MLflow"):
            _log_model(settings, registry, model_name, run_id, model, prepared, None)
    except BaseException:
        registry.finish_run(run_id, failed=True)
        raise
    registry.finish_run(run_id)
    return run_id, train_seconds


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
    register: Register,
    progress: StepReporter = no_progress,
    data_path: Path | None = None,
) -> PipelineResult:
    """Run the governed pipeline for one model and register a candidate version.

    ``data_path`` replaces the configured data source (a retrain on recent labelled data).
    ``register`` is the service's port that writes the new version (the pipeline writes no state itself).
    """
    started = time.perf_counter()
    spec = settings.model(model_name)
    actor = settings.actor
    lineage = lineage_emitter(settings)

    from shipyard.serving.footprint import Probe

    # The footprint's measuring process imports its libraries while this one trains and evaluates.
    with (
        Probe() as probe,
        lineage.step(f"{model_name}.pipeline", facets={"shipyard_pipeline": {"model": model_name, "actor": actor}}) as parent,
    ):
        with progress("load data"), lineage.step(f"{model_name}.load_data", parent=parent) as step:
            policy_for(settings, model_name)  # a bad policy fails before any work
            prepared = prepare(settings, spec, data_path)
            parts, dataset = prepared.parts, prepared.dataset
            data = data_ref(prepared)
            step.add_input(data)
            # Reach MLflow before training, so an unreachable server fails fast.
            experiment = registry.experiment_id(settings.experiment)
        with progress("train"), lineage.step(f"{model_name}.train", parent=parent, inputs=[data]):
            model, train_seconds = _fit(settings, model_name, prepared)
        git = git_info(settings.root)
        run_id = registry.start_run(
            experiment, run_name=f"{model_name}-train", tags=_run_tags(settings, model_name, prepared, git)
        )
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
                source = _log_model(settings, registry, model_name, run_id, model, prepared, metrics)
                log_reference_profile(registry, run_id, model, prepared)
                evidence["serving_equivalence"] = check_serving(registry, source, model, prepared)
            with progress("measure the footprint"):
                evidence["footprint"] = measure_footprint(
                    store, registry, model_name, source, prepared, equivalence=evidence["serving_equivalence"], probe=probe
                )
            with progress("log the evidence"):
                evidence["artifacts"] = log_governance_artifacts(settings, registry, model_name, run_id, evidence, schema)
        except BaseException:
            registry.finish_run(run_id, failed=True)
            raise
        registry.finish_run(run_id)
        with progress("register"), lineage.step(f"{model_name}.register", parent=parent, inputs=[data]) as step:
            version = register_version(
                settings,
                register,
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
        train_seconds=train_seconds,
    )
