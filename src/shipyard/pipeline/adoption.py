"""Adopting a model that an existing MLflow run logged, with the same evidence as a trained one."""

from __future__ import annotations

import time

from shipyard.config import Settings
from shipyard.evidence import Lineage
from shipyard.pipeline.evidence import (
    PROFILE_ARTIFACT,
    check_serving,
    gather_evidence,
    log_governance_artifacts,
    log_reference_profile,
    measure_footprint,
)
from shipyard.pipeline.prepare import prepare, with_model_features
from shipyard.pipeline.registration import (
    GitInfo,
    PipelineResult,
    Register,
    StepReporter,
    data_ref,
    is_commit,
    lineage_emitter,
    no_progress,
)
from shipyard.pipeline.registration import register as register_version
from shipyard.policy.spec import policy_for
from shipyard.registry import MODEL_ARTIFACT, ONNX_ARTIFACT, Registry
from shipyard.store.repository import Store


def adopt(
    settings: Settings,
    store: Store,
    registry: Registry,
    model_name: str,
    run_id: str,
    *,
    register: Register,
    artifact_path: str = MODEL_ARTIFACT,
    progress: StepReporter = no_progress,
    trust_pickle: bool = False,
) -> PipelineResult:
    """Register a model that an existing MLflow run logged, with the same evidence as a trained one.

    A model whose loading runs code (pickle, cloudpickle, …) is refused unless ``trust_pickle`` says
    the run is trusted; the registration records that it was, and the digests of the files loaded.

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
            files = registry.load_files(source, run_id=run_id, allow_pickle=trust_pickle)
            model = files.model
            prepared = with_model_features(prepare(settings, spec), model, source)
            data = data_ref(prepared)
            step.add_input(data)
        tags = facts["tags"]
        # A foreign run's tag is data, not a command-line argument: only a hex object name is a commit.
        tagged = tags.get("mlflow.source.git.commit")
        commit = tagged.lower() if tagged and is_commit(tagged.lower()) else None
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
            equivalence = evidence["serving_equivalence"] = check_serving(registry, source, model, prepared, existing=files.onnx)
            evidence["footprint"] = measure_footprint(store, registry, model_name, source, prepared, equivalence=equivalence)
            digests = dict(files.digests)
            if equivalence["converted"]:  # written beside the model just now: recorded with the files it was checked on
                digests[ONNX_ARTIFACT] = equivalence["onnx_sha256"]
            evidence["artifacts"] = log_governance_artifacts(settings, registry, model_name, run_id, evidence, schema)
        with progress("register"), lineage_events.step(f"{model_name}.register", parent=parent, inputs=[data]) as step:
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
                how="adopted",
                step=step,
                files_sha256=digests,
                details={"serialization_format": files.serialization_format, "trusted_run": trust_pickle},
            )
    return PipelineResult(
        version=version,
        run_id=run_id,
        metrics=evidence["metrics"]["holdout"],
        rows_train=len(prepared.parts.train),
        rows_holdout=len(prepared.parts.holdout),
        seconds=time.perf_counter() - started,
    )
