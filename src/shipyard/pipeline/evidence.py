"""Evidence about a model on the configured data, and the governance artifacts logged next to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard import evidence as evidence_mod
from shipyard.config import Settings
from shipyard.domain.entities import ModelVersion
from shipyard.domain.errors import NotFound
from shipyard.evidence import Champion, Lineage
from shipyard.pipeline.prepare import Prepared, prepare, with_model_features
from shipyard.policy.spec import policy_for
from shipyard.registry import MODEL_ARTIFACT, ONNX_ARTIFACT, Registry
from shipyard.store.repository import Store

if TYPE_CHECKING:
    from shipyard.serving import footprint

PROFILE_ARTIFACT = "reference_profile.json"


def current_champion(store: Store, registry: Registry, model_name: str, *, excluding: int | None = None) -> Champion | None:
    from shipyard.domain.stages import Stage

    try:
        versions = store.list_versions(model_name)
    except NotFound:
        return None
    for version in versions:
        if version.stage is Stage.PRODUCTION and version.version != excluding:
            return Champion(version=version.version, model=registry.load_version(version).model)
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
        task=prepared.task,
        task_declared=prepared.task_declared,
        train_target=parts.train[spec.data.target],
    )
    if prepared.feature_store is not None and spec.data.feast is not None:
        from shipyard.checks import skew

        found["feature_store"] = prepared.feature_store
        found["feature_skew"] = skew.measure(settings.root, spec.data.feast, full, seed=spec.data.seed)
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


def log_reference_profile(registry: Registry, run_id: str, model: Any, prepared: Prepared) -> None:
    """The training data's profile and the holdout's scores, which monitoring compares live traffic with."""
    import tempfile

    from shipyard.checks.evaluation import positive_scores
    from shipyard.monitoring.profile import build_profile, save_profile

    features = prepared.features
    if prepared.task == "binary":
        scores = positive_scores(model, prepared.parts.holdout[features])
    else:
        from shipyard.checks.outputs import task_scores
        from shipyard.checks.targets import classes

        labels = classes(prepared.parts.train[prepared.target]) if prepared.task == "multiclass" else []
        scores = task_scores(model, prepared.parts.holdout[features], prepared.task, labels)
    per_class = None
    if prepared.task == "multiclass":  # each class's probability, watched beside the predicted class's
        from shipyard.checks.outputs import class_probabilities

        per_class = class_probabilities(model, prepared.parts.holdout[features], labels)
    profile = build_profile(prepared.parts.train[features].reset_index(drop=True), scores=scores, class_scores=per_class)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / PROFILE_ARTIFACT
        save_profile(profile, path)
        registry.log_file(run_id, path)


def check_serving(
    registry: Registry, source: str, model: Any, prepared: Prepared, *, existing: bytes | None = None
) -> dict[str, Any]:
    """The `serving_equivalence` evidence; when the ONNX conversion agrees with scikit-learn on the holdout, its file
    goes into the model's folder at ``source`` (call it before the version's digests are recorded).

    ``existing``: the ONNX file the folder already holds (a run adopted again). Another version's digests may
    cover it, so a different file is never written over it: the conversion is then not kept, and says why.
    """
    import tempfile

    from shipyard.checks import equivalence

    found = equivalence.check(model, prepared.parts.holdout[prepared.features].reset_index(drop=True))
    if found.onnx is None or found.onnx == existing:
        return found.evidence
    if existing is not None:
        return {
            **found.evidence,
            "converted": False,
            "runtime": "scikit-learn",
            "reason": f"the model's folder already holds another {ONNX_ARTIFACT}, which is left as it is",
        }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ONNX_ARTIFACT
        path.write_bytes(found.onnx)
        registry.add_model_file(source, path)
    return found.evidence


def measure_footprint(
    store: Store,
    registry: Registry,
    model_name: str,
    source: str,
    prepared: Prepared,
    *,
    equivalence: dict[str, Any] | None,
    excluding: int | None = None,
    probe: footprint.Probe | None = None,
) -> dict[str, Any]:
    """The ``footprint`` evidence: the model at ``source`` measured in a fresh process, beside the champion's files
    (checked against the digests recorded at its registration)."""
    import shutil
    import tempfile

    from shipyard.domain.stages import Stage
    from shipyard.registry import integrity
    from shipyard.serving import footprint as measuring

    try:
        champion = next(
            (v for v in store.list_versions(model_name) if v.stage is Stage.PRODUCTION and v.version != excluding), None
        )
    except NotFound:
        champion = None
    with tempfile.TemporaryDirectory(prefix="shipyard-footprint-files-") as tmp:
        own = Path(tmp) / "candidate"
        shutil.copytree(registry.local_model_dir(source), own)
        theirs = None
        if champion is not None:
            folder = Path(tmp) / "champion"
            shutil.copytree(registry.local_model_dir(champion.source), folder)
            integrity.check(
                champion.subject,
                champion.source,
                integrity.require_digests(champion.subject, champion.files_sha256),
                integrity.file_digests(folder),
            )
            held = store.evidence(model_name, champion.version) or {}
            theirs = (champion.version, folder, held.get("serving_equivalence"))
        sample = prepared.parts.holdout[prepared.features].reset_index(drop=True)
        return measuring.measure(own, sample, equivalence=equivalence, champion=theirs, probe=probe)


def refresh_evidence(settings: Settings, store: Store, registry: Registry, version: ModelVersion) -> dict[str, Any]:
    """A registered version's evidence collected again, on the model's configured data and current champion.

    The governance artifacts next to its run are logged again; the caller stores the evidence.
    """
    spec = settings.model(version.model)
    old = store.evidence(version.model, version.version) or {}
    model = registry.load_version(version).model
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
    if "serving_equivalence" in old:  # about the registered files, which do not change
        evidence["serving_equivalence"] = old["serving_equivalence"]
    # Measured again: the champion it is compared with may have changed.
    evidence["footprint"] = measure_footprint(
        store, registry, version.model, version.source, prepared,
        equivalence=evidence.get("serving_equivalence"), excluding=version.version,
    )  # fmt: skip
    evidence["artifacts"] = old.get("artifacts", [])
    if version.run_id:
        evidence["artifacts"] = log_governance_artifacts(settings, registry, version.model, version.run_id, evidence, schema)
    return evidence
