"""Models and versions in the store: registration, the stage machine, and reading them back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shipyard.domain.entities import Model, ModelVersion, Promotion, StageChange
from shipyard.domain.errors import Conflict, NotFound
from shipyard.domain.governance import GateReport
from shipyard.domain.stages import Stage, check_transition
from shipyard.store.audit import canonical_sha256
from shipyard.store.base import (
    StoreBase,
    bump_generation,
    find_version,
    known_models_hint,
    move,
    production_rows,
    version_row,
)
from shipyard.store.governance import put_evidence, put_gate
from shipyard.store.mirror import complete_registration, mark_mirror_pending
from shipyard.store.monitoring import resolve_left_production
from shipyard.store.tables import DataSchemaRow, ModelRow, StageChangeRow, VersionRow

ANY_CHAMPION = object()


class ChampionChanged(Conflict):
    """A concurrent promotion replaced the champion a gate had compared against."""


class VersionRecords(StoreBase):
    """Mixed into ``Store``: models, versions and their stages."""

    def register_version(
        self,
        *,
        actor: str,
        model: str,
        owner: str,
        version: int,
        source: str,
        run_id: str | None,
        data_uri: str | None,
        data_fingerprint: str | None,
        git_commit: str | None,
        metrics: dict[str, float],
        details: dict[str, Any] | None = None,
        evidence: dict[str, Any] | None = None,
        schema: dict[str, Any] | None = None,
        files_sha256: dict[str, str] | None = None,
    ) -> ModelVersion:
        """Register a candidate, with its evidence and (for a model's first version) its reference schema."""
        with self.write(actor) as tx:
            if find_version(tx.session, model, version) is not None:
                raise Conflict(f"version {model}/{version} is already registered in the store")
            if tx.session.get(ModelRow, model) is None:
                tx.session.add(ModelRow(name=model, owner=owner, created_at=tx.now, created_by=actor))
                tx.audit("model.created", model, {"owner": owner})
            row = VersionRow(
                model_name=model,
                version=version,
                stage=Stage.CANDIDATE.value,
                run_id=run_id,
                source=source,
                data_uri=data_uri,
                data_fingerprint=data_fingerprint,
                git_commit=git_commit,
                metrics=metrics,
                files_sha256=files_sha256,
                registered_by=actor,
                registered_at=tx.now,
                updated_at=tx.now,
            )
            tx.session.add(row)
            tx.session.add(
                StageChangeRow(
                    model_name=model,
                    version=version,
                    from_stage=None,
                    to_stage=Stage.CANDIDATE.value,
                    actor=actor,
                    reason="registered",
                    at=tx.now,
                )
            )
            tx.audit(
                "version.registered",
                f"{model}/{version}",
                {
                    "stage": Stage.CANDIDATE.value,
                    "run_id": run_id,
                    "source": source,
                    "data_uri": data_uri,
                    "data_fingerprint": data_fingerprint,
                    "git_commit": git_commit,
                    "metrics": metrics,
                    **(details or {}),
                },
            )
            if schema is not None and tx.session.get(DataSchemaRow, model) is None:
                tx.session.add(DataSchemaRow(model_name=model, schema=schema, source_version=version, created_at=tx.now))
                tx.audit("schema.inferred", model, {"source_version": version, "schema_sha256": canonical_sha256(schema)})
            if evidence is not None:
                put_evidence(tx, model, version, evidence)
            if run_id is not None:
                complete_registration(tx, model, run_id)
            mark_mirror_pending(tx, model, f"version {version} registered")
            tx.session.flush()
            return row.to_entity()

    def transition(
        self,
        *,
        actor: str,
        model: str,
        version: int,
        to: Stage,
        reason: str,
        gate: GateReport | None = None,
        break_glass: bool = False,
        champion_seen: int | object | None = ANY_CHAMPION,
    ) -> Promotion:
        """Move a version along the stage machine; promoting to production archives the champion.

        The gate report that allowed the move is stored and audited in the same transaction.
        ``champion_seen`` is the production version the gate compared against: if another
        promotion replaced it meanwhile, ChampionChanged is raised and nothing is written.
        """
        with self.write(actor) as tx:
            row = version_row(tx.session, model, version)
            current = Stage(row.stage)
            check_transition(f"{model}/{version}", current, to)
            if gate is not None:
                put_gate(tx, gate)
            archived: list[ModelVersion] = []
            if to is Stage.PRODUCTION:
                champions = production_rows(tx.session, model)
                now_champion = champions[0].version if champions else None
                if champion_seen is not ANY_CHAMPION and now_champion != champion_seen:
                    raise ChampionChanged(
                        f"the champion of {model} changed from {champion_seen or 'none'} to {now_champion} "
                        "while the gate was evaluated",
                        hint="Run the promotion again: the gate will compare with the new champion.",
                    )
                for champion in champions:
                    move(tx, champion, Stage.ARCHIVED, f"replaced by version {version}: {reason}")
                    resolve_left_production(tx, model, champion.version)
                    archived.append(champion.to_entity())
                # The old champion must leave the one-production index before the new one enters it.
                tx.session.flush()
            move(tx, row, to, reason, break_glass=break_glass)
            if current is Stage.PRODUCTION:
                resolve_left_production(tx, model, version)
            if Stage.PRODUCTION in (current, to):
                bump_generation(tx)
            mark_mirror_pending(tx, model, f"version {version} moved from {current.value} to {to.value}")
            tx.session.flush()
            return Promotion(version=row.to_entity(), from_stage=current, archived=tuple(archived))

    def get_model(self, name: str) -> Model:
        with self.read() as session:
            row = session.get(ModelRow, name)
            if row is None:
                raise NotFound(f"unknown model {name!r}", hint=known_models_hint(session))
            return row.to_entity()

    def list_models(self) -> list[Model]:
        with self.read() as session:
            return [row.to_entity() for row in session.scalars(select(ModelRow).order_by(ModelRow.name))]

    def get_version(self, model: str, version: int) -> ModelVersion:
        with self.read() as session:
            return version_row(session, model, version).to_entity()

    def list_versions(self, model: str | None = None) -> list[ModelVersion]:
        with self.read() as session:
            query = select(VersionRow).order_by(VersionRow.model_name, VersionRow.version)
            if model is not None:
                if session.get(ModelRow, model) is None:
                    raise NotFound(f"unknown model {model!r}", hint=known_models_hint(session))
                query = query.where(VersionRow.model_name == model)
            return [row.to_entity() for row in session.scalars(query)]

    def stage_history(self, model: str, version: int | None = None) -> list[StageChange]:
        with self.read() as session:
            query = select(StageChangeRow).where(StageChangeRow.model_name == model).order_by(StageChangeRow.id)
            if version is not None:
                query = query.where(StageChangeRow.version == version)
            return [row.to_entity() for row in session.scalars(query)]


__all__ = ["ANY_CHAMPION", "ChampionChanged", "VersionRecords"]
