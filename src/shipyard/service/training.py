"""New versions: the governed training pipeline, adopting a run trained elsewhere, and registering either."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.domain.errors import InvalidSpec, ShipyardError
from shipyard.service.versions import Versions

if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.domain.entities import ModelVersion
    from shipyard.features import Materialized
    from shipyard.pipeline import PipelineResult, Registration, StepReporter


class Training(Versions):
    def run_pipeline(self, model: str, *, progress: StepReporter | None = None, data_path: Path | None = None) -> PipelineResult:
        """Train MODEL with the project's `train()` in this process, collect its evidence, register a candidate."""
        from shipyard import pipeline

        self.settings.model(model)  # unknown model → NotFound before any heavy import
        self.authorize("train", what=f"train {model}", subject=model)
        return pipeline.run(
            self.settings,
            self.store,
            self.registry,
            model,
            register=self._register_version,
            progress=progress or pipeline.no_progress,
            data_path=data_path,
        )

    def materialize_features(self, model: str, *, end: str | None = None) -> Materialized:
        """Load a Feast-backed model's feature views into its online store, up to ``end`` (ISO 8601; default now);
        audited."""
        from shipyard.features import FeatureSource, Materialized, materialize

        self.authorize("operate", what=f"materialize the online features of {model}", subject=model)
        spec = self.settings.model(model)
        if spec.data.feast is None:
            raise InvalidSpec(
                f"model {model!r} is not trained from a feature store: it has no online features to materialize",
                hint="Declare models.*.data.feast (repo, feature_service, entities, event_timestamp) in shipyard.yaml.",
            )
        try:
            when = datetime.fromisoformat(end) if end and end != "now" else datetime.now(UTC)
        except ValueError:
            raise InvalidSpec(f"end {end!r} is not a time; expected ISO 8601, e.g. 2026-11-30T12:00:00+00:00, or now") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        done = materialize(FeatureSource.of(self.settings.root, spec.data.feast), end=when)
        result = Materialized(model=model, **done)
        with self.store.write(self.actor) as tx:
            tx.audit("features.materialized", model, result.to_dict())
        return result

    def run_pipeline_isolated(self, model: str, *, data_path: Path | None = None) -> PipelineResult:
        """`run_pipeline` in a child process: the user's training code never runs in this one."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.settings.model(model)
        self.authorize("train", what=f"train {model}", subject=model)
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as child:
            return child.submit(_train_in_child, self.settings, model, data_path).result()

    def register(
        self,
        model: str,
        run_id: str,
        *,
        artifact_path: str = "model",
        progress: StepReporter | None = None,
        trust_pickle: bool = False,
    ) -> PipelineResult:
        """Adopt a model logged by an existing MLflow run as a governed candidate.

        ``trust_pickle``: the run is trusted to hold a model whose loading runs code; the
        registration's audit event says so.
        """
        from shipyard import pipeline

        self.settings.model(model)
        self.authorize("train", what=f"register a version of {model}", subject=model)
        return pipeline.adopt(
            self.settings,
            self.store,
            self.registry,
            model,
            run_id,
            register=self._register_version,
            artifact_path=artifact_path,
            progress=progress or pipeline.no_progress,
            trust_pickle=trust_pickle,
        )

    def _register_version(self, registration: Registration) -> ModelVersion:
        """The one place a new version is written: MLflow's registry first, then the store, then the mirror.

        The store notes the registration before MLflow sees it, so a crash in between leaves a trace that
        `models list` warns about and `models reconcile` resolves (MLflow's version would be an orphan).
        """
        marker = self.store.begin_registration(actor=self.actor, model=registration.model, run_id=registration.run_id)
        try:
            number = self.registry.register_version(
                registration.model,
                source=registration.source,
                run_id=registration.run_id,
                description=registration.description,
                tags={"shipyard.registered_by": self.actor, "shipyard.data.fingerprint": registration.data_fingerprint},
            )
        except ShipyardError:
            self.store.end_registration(marker)  # MLflow refused it: nothing was registered anywhere
            raise
        version = self.store.register_version(
            actor=self.actor,
            model=registration.model,
            owner=registration.owner,
            version=number,
            source=registration.source,
            run_id=registration.run_id,
            data_uri=registration.data_uri,
            data_fingerprint=registration.data_fingerprint,
            git_commit=registration.git_commit,
            metrics=registration.metrics,
            details=registration.details,
            evidence=registration.evidence,
            schema=registration.schema,
            files_sha256=registration.files_sha256 or self.registry.file_digests(registration.source),
        )
        self.mirror(registration.model, changed=[version.version])
        return version


def _train_in_child(settings: Settings, model: str, data_path: Path | None) -> PipelineResult:
    """The child process's whole job: open the project as the parent's actor and run the pipeline."""
    from shipyard.service import Shipyard

    with Shipyard(settings) as service:
        return service.run_pipeline(model, data_path=data_path)
