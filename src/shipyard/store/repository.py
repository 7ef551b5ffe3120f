"""The store: every state change and its audit event, in one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from shipyard.domain.entities import AuditEvent, AuditVerification, Deployment, Model, ModelVersion, Promotion, StageChange
from shipyard.domain.errors import Conflict, InvalidSpec, NotFound
from shipyard.domain.governance import Approval, GateReport
from shipyard.domain.rollouts import ACTIVE as ACTIVE_ROLLOUT
from shipyard.domain.rollouts import Rollout
from shipyard.domain.stages import Stage, check_transition
from shipyard.store import database
from shipyard.store.audit import canonical_sha256, event_hash, verify_chain
from shipyard.store.monitoring import MonitoringRecords
from shipyard.store.tables import (
    ApiTokenRow,
    ApprovalRow,
    AuditHeadRow,
    AuditRow,
    DataSchemaRow,
    DeploymentRow,
    EvidenceRow,
    GateReportRow,
    ModelRow,
    RolloutRow,
    ServingStateRow,
    StageChangeRow,
    VersionRow,
    utcnow,
)

ANY_CHAMPION = object()


class ChampionChanged(Conflict):
    """A concurrent promotion replaced the champion a gate had compared against."""


class Tx:
    """A writing transaction. Holds the audit head lock until it ends."""

    def __init__(self, session: Session, head: AuditHeadRow, actor: str) -> None:
        self.session = session
        self.actor = actor
        self._head = head
        self.now = utcnow()

    def audit(self, action: str, subject: str, details: dict[str, Any] | None = None) -> AuditEvent:
        seq = self._head.seq + 1
        payload = dict(details or {})
        digest = event_hash(
            seq=seq, at=self.now, actor=self.actor, action=action, subject=subject, details=payload, prev_hash=self._head.hash
        )
        row = AuditRow(
            seq=seq,
            at=self.now,
            actor=self.actor,
            action=action,
            subject=subject,
            details=payload,
            prev_hash=self._head.hash,
            hash=digest,
        )
        self.session.add(row)
        self._head.seq = seq
        self._head.hash = digest
        return row.to_entity()


class Store(MonitoringRecords):
    """Shipyard's source of truth on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url

    @classmethod
    def open(cls, url: str, *, auto_migrate: bool | None = None) -> Store:
        """Connect, and migrate the embedded default (or refuse an out-of-date shared store)."""
        engine = database.make_engine(url)
        migrate = database.is_sqlite(url) if auto_migrate is None else auto_migrate
        try:
            with database.translate_errors(url):
                database.ensure_schema(engine, url, auto_migrate=migrate)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, url)

    def close(self) -> None:
        self.engine.dispose()

    # -- transactions -------------------------------------------------------

    @contextmanager
    def write(self, actor: str) -> Iterator[Tx]:
        """One writing transaction: lock the audit head, do the change, audit it, commit."""
        with (
            database.translate_errors(self.url),
            self.engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn,
            Session(bind=conn, expire_on_commit=False) as session,
            session.begin(),
        ):
            head = session.execute(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()).scalar_one()
            yield Tx(session, head, actor)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with database.translate_errors(self.url), Session(self.engine) as session:
            yield session

    # -- models and versions ------------------------------------------------

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
            if self._find_version(tx.session, model, version) is not None:
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
                self._put_evidence(tx, model, version, evidence)
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
            row = self._version_row(tx.session, model, version)
            current = Stage(row.stage)
            check_transition(f"{model}/{version}", current, to)
            if gate is not None:
                self._put_gate(tx, gate)
            archived: list[ModelVersion] = []
            if to is Stage.PRODUCTION:
                champions = tx.session.scalars(
                    select(VersionRow).where(VersionRow.model_name == model, VersionRow.stage == Stage.PRODUCTION.value)
                ).all()
                now_champion = champions[0].version if champions else None
                if champion_seen is not ANY_CHAMPION and now_champion != champion_seen:
                    raise ChampionChanged(
                        f"the champion of {model} changed from {champion_seen or 'none'} to {now_champion} "
                        "while the gate was evaluated",
                        hint="Run the promotion again: the gate will compare with the new champion.",
                    )
                for champion in champions:
                    self._move(tx, champion, Stage.ARCHIVED, f"replaced by version {version}: {reason}")
                    archived.append(champion.to_entity())
                # The old champion must leave the one-production index before the new one enters it.
                tx.session.flush()
            self._move(tx, row, to, reason, break_glass=break_glass)
            if Stage.PRODUCTION in (current, to):
                self._bump_generation(tx)
            tx.session.flush()
            return Promotion(version=row.to_entity(), from_stage=current, archived=tuple(archived))

    # -- governance -----------------------------------------------------------------

    def _put_evidence(self, tx: Tx, model: str, version: int, data: dict[str, Any]) -> None:
        row = tx.session.scalars(
            select(EvidenceRow).where(EvidenceRow.model_name == model, EvidenceRow.version == version)
        ).one_or_none()
        if row is None:
            tx.session.add(EvidenceRow(model_name=model, version=version, data=data, collected_at=tx.now, collected_by=tx.actor))
        else:
            row.data, row.collected_at, row.collected_by = data, tx.now, tx.actor
        # The audit chain pins the evidence by digest: an edited evidence row no longer matches it.
        tx.audit("evidence.collected", f"{model}/{version}", {"evidence_sha256": canonical_sha256(data), "keys": sorted(data)})

    def save_evidence(self, *, actor: str, model: str, version: int, data: dict[str, Any]) -> None:
        with self.write(actor) as tx:
            self._version_row(tx.session, model, version)
            self._put_evidence(tx, model, version, data)

    def evidence(self, model: str, version: int) -> dict[str, Any] | None:
        with self.read() as session:
            row = session.scalars(
                select(EvidenceRow).where(EvidenceRow.model_name == model, EvidenceRow.version == version)
            ).one_or_none()
            return dict(row.data) if row is not None else None

    def reference_schema(self, model: str) -> dict[str, Any] | None:
        with self.read() as session:
            row = session.get(DataSchemaRow, model)
            return dict(row.schema) if row is not None else None

    def _put_gate(self, tx: Tx, report: GateReport) -> int:
        row = GateReportRow(
            model_name=report.model,
            version=report.version,
            stage=report.stage,
            passed=report.passed,
            break_glass=report.break_glass,
            report=report.to_dict(),
            actor=tx.actor,
            at=tx.now,
        )
        tx.session.add(row)
        tx.session.flush()
        tx.audit(
            "gate.evaluated",
            f"{report.model}/{report.version}",
            {
                "stage": report.stage,
                "passed": report.passed,
                "break_glass": report.break_glass,
                "blocking": [r.name for r in report.blocking],
                "warnings": [r.name for r in report.warnings],
                "report_id": row.id,
                "report_sha256": canonical_sha256(row.report),
            },
        )
        return row.id

    def record_gate(self, report: GateReport) -> int:
        """Store and audit a gate report on its own (a refused promotion leaves this trace)."""
        with self.write(report.actor) as tx:
            return self._put_gate(tx, report)

    def gate_reports(self, model: str, version: int | None = None) -> list[dict[str, Any]]:
        with self.read() as session:
            query = select(GateReportRow).where(GateReportRow.model_name == model).order_by(GateReportRow.id)
            if version is not None:
                query = query.where(GateReportRow.version == version)
            return [{"id": row.id, **row.report} for row in session.scalars(query)]

    def record_approval(self, approval: Approval) -> Approval:
        with self.write(approval.actor) as tx:
            self._version_row(tx.session, approval.model, approval.version)
            tx.session.add(
                ApprovalRow(
                    model_name=approval.model,
                    version=approval.version,
                    stage=approval.stage,
                    actor=approval.actor,
                    roles=list(approval.roles),
                    decision=approval.decision,
                    comment=approval.comment,
                    at=tx.now,
                )
            )
            tx.audit(
                f"approval.{approval.decision}",
                f"{approval.model}/{approval.version}",
                {"stage": approval.stage, "roles": list(approval.roles), "comment": approval.comment},
            )
        return approval

    def approvals(self, model: str, version: int, stage: str | None = None) -> list[Approval]:
        with self.read() as session:
            query = (
                select(ApprovalRow)
                .where(ApprovalRow.model_name == model, ApprovalRow.version == version)
                .order_by(ApprovalRow.id)
            )
            if stage is not None:
                query = query.where(ApprovalRow.stage == stage)
            return [row.to_entity() for row in session.scalars(query)]

    # -- serving -----------------------------------------------------------------------

    @staticmethod
    def _bump_generation(tx: Tx) -> None:
        state = tx.session.get(ServingStateRow, 1)
        if state is not None:
            state.generation += 1

    def serving_generation(self) -> int:
        """Gateways poll this one integer and reload when it moves."""
        with self.read() as session:
            state = session.get(ServingStateRow, 1)
            return state.generation if state is not None else 0

    def deployments(self, models: list[str] | None = None) -> list[Deployment]:
        """The champion (production version) and any challenger of every model with a champion."""
        with self.read() as session:
            champions = {
                row.model_name: row.version
                for row in session.scalars(select(VersionRow).where(VersionRow.stage == Stage.PRODUCTION.value))
            }
            rows = {row.model_name: row for row in session.scalars(select(DeploymentRow))}
        found = []
        for name in sorted(set(champions) | set(rows)):
            if models is not None and name not in models:
                continue
            row = rows.get(name)
            found.append(
                Deployment(
                    model=name,
                    champion=champions.get(name),
                    challenger=row.challenger_version if row is not None else None,
                    mode=row.mode if row is not None else "single",
                    challenger_weight=row.challenger_weight if row is not None else 0.0,
                    routing_key=row.routing_key if row is not None else None,
                )
            )
        return found

    def set_deployment(
        self,
        *,
        actor: str,
        model: str,
        challenger: int | None,
        mode: str,
        weight: float,
        routing_key: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Deployment:
        with self.write(actor) as tx:
            if challenger is not None:
                self._version_row(tx.session, model, challenger)
            elif tx.session.get(ModelRow, model) is None:
                raise NotFound(f"unknown model {model!r}", hint=self._known_models_hint(tx.session))
            row = tx.session.get(DeploymentRow, model)
            if row is None:
                row = DeploymentRow(model_name=model)
                tx.session.add(row)
            row.challenger_version, row.mode, row.challenger_weight, row.routing_key = challenger, mode, weight, routing_key
            row.updated_at, row.updated_by = tx.now, actor
            self._bump_generation(tx)
            tx.audit(
                "deployment.changed",
                model,
                {"challenger": challenger, "mode": mode, "weight": weight, "routing_key": routing_key, **(details or {})},
            )
        [deployment] = self.deployments([model]) or [Deployment(model=model, champion=None)]
        return deployment

    # -- rollouts ----------------------------------------------------------------------

    def start_rollout(
        self,
        *,
        actor: str,
        model: str,
        version: int,
        strategy: str,
        steps: list[float],
        interval_seconds: float,
        checks: dict[str, Any],
        failure_limit: int,
        gate: GateReport | None,
    ) -> Rollout:
        """Begin a rollout and point the deployment at its first step, in one transaction."""
        with self.write(actor) as tx:
            row = self._version_row(tx.session, model, version)
            active = self._active_rollout_row(tx.session, model)
            if active is not None:
                raise Conflict(
                    f"{model} already has a {active.state} rollout of version {active.version}",
                    hint=f"Finish it first: `shipyard rollout abort {model}` or wait for it to end.",
                )
            champion = tx.session.scalars(
                select(VersionRow.version).where(VersionRow.model_name == model, VersionRow.stage == Stage.PRODUCTION.value)
            ).one_or_none()
            if champion is None:
                raise Conflict(
                    f"{model} has no champion to roll out from",
                    hint=f"The first version goes straight to production: `shipyard promote {model} {version} --to production`.",
                )
            if champion == version:
                raise Conflict(f"{model}/{version} is already the champion")
            if row.stage not in (Stage.STAGING.value, Stage.ARCHIVED.value):
                raise Conflict(
                    f"{model}/{version} is {row.stage}; a rollout starts from staging",
                    hint=f"Promote it to staging first: `shipyard promote {model} {version} --to staging`.",
                )
            if gate is not None:
                self._put_gate(tx, gate)
            rollout = RolloutRow(
                model_name=model,
                version=version,
                champion_version=champion,
                strategy=strategy,
                steps=steps,
                step_index=0,
                interval_seconds=interval_seconds,
                checks=checks,
                failure_limit=failure_limit,
                failures=0,
                state="running",
                history=[{"at": tx.now.isoformat(), "event": "started", "weight": steps[0]}],
                started_by=actor,
                started_at=tx.now,
                step_started_at=tx.now,
            )
            tx.session.add(rollout)
            tx.session.flush()
            self._route(tx, model, version, strategy, steps[0] / 100.0)
            tx.audit(
                "rollout.started",
                f"{model}/{version}",
                {"rollout": rollout.id, "strategy": strategy, "steps": steps, "champion": champion},
            )
            return rollout.to_entity()

    def _route(self, tx: Tx, model: str, challenger: int | None, strategy: str, weight: float) -> None:
        deployment = tx.session.get(DeploymentRow, model)
        if deployment is None:
            deployment = DeploymentRow(model_name=model, routing_key=None)
            tx.session.add(deployment)
        if challenger is None:
            mode = "single"
        elif strategy == "shadow" or (strategy == "bluegreen" and weight <= 0):
            mode = "shadow"  # blue-green judges the new version on shadowed traffic before the switch
        else:
            mode = strategy
        deployment.challenger_version, deployment.mode, deployment.challenger_weight = challenger, mode, weight
        deployment.updated_at, deployment.updated_by = tx.now, tx.actor
        self._bump_generation(tx)

    @staticmethod
    def _active_rollout_row(session: Session, model: str) -> RolloutRow | None:
        query = select(RolloutRow).where(RolloutRow.model_name == model, RolloutRow.state.in_(ACTIVE_ROLLOUT))
        return session.scalars(query).one_or_none()

    def active_rollouts(self) -> list[Rollout]:
        with self.read() as session:
            query = select(RolloutRow).where(RolloutRow.state.in_(ACTIVE_ROLLOUT)).order_by(RolloutRow.id)
            return [row.to_entity() for row in session.scalars(query)]

    def rollouts(self, model: str) -> list[Rollout]:
        with self.read() as session:
            return [
                r.to_entity()
                for r in session.scalars(select(RolloutRow).where(RolloutRow.model_name == model).order_by(RolloutRow.id))
            ]

    def advance_rollout(self, *, actor: str, model: str, action: str, details: dict[str, Any] | None = None) -> Rollout:
        """Apply one controller or operator decision to a model's active rollout.

        ``action``: wait (record a judgement), fail (count a failed analysis; roll back at
        the limit), next (to the next step), promote (the challenger becomes champion),
        rollback, pause, resume, abort.
        """
        with self.write(actor) as tx:
            row = self._active_rollout_row(tx.session, model)
            if row is None:
                raise NotFound(f"{model} has no active rollout", hint=f"Start one with `shipyard rollout start {model} VERSION`.")
            event: dict[str, Any] = {"at": tx.now.isoformat(), "event": action, **(details or {})}
            if action == "fail":
                row.failures += 1
                row.step_started_at = tx.now  # judge a fresh window next time
                if row.failures >= row.failure_limit:
                    action = "rollback"
                    event["event"] = "rollback"
                    event["reason"] = f"{row.failures} failed analyses (limit {row.failure_limit})"
            if action == "pause":
                self._expect(row, "running", "pause")
                row.state = "paused"
            elif action == "resume":
                self._expect(row, "paused", "resume")
                row.state = "running"
                row.step_started_at = tx.now
            elif action == "next":
                row.step_index += 1
                row.step_started_at = tx.now
                event["weight"] = row.steps[row.step_index]
                self._route(tx, model, row.version, row.strategy, row.steps[row.step_index] / 100.0)
            elif action in ("rollback", "abort"):
                row.state = "rolled_back" if action == "rollback" else "aborted"
                row.finished_at = tx.now
                self._route(tx, model, None, row.strategy, 0.0)
            elif action == "promote":
                version = self._version_row(tx.session, model, row.version)
                champions = tx.session.scalars(
                    select(VersionRow).where(VersionRow.model_name == model, VersionRow.stage == Stage.PRODUCTION.value)
                ).all()
                for champion in champions:
                    self._move(tx, champion, Stage.ARCHIVED, f"replaced by version {row.version} after rollout {row.id}")
                tx.session.flush()
                if version.stage != Stage.PRODUCTION.value:
                    self._move(tx, version, Stage.PRODUCTION, f"rollout {row.id} reached full traffic")
                row.state = "promoted"
                row.finished_at = tx.now
                self._route(tx, model, None, row.strategy, 0.0)
            elif action not in ("wait", "fail"):
                raise InvalidSpec(f"unknown rollout action {action!r}")
            row.history = [*row.history, event]
            tx.audit(f"rollout.{event['event']}", f"{model}/{row.version}", {"rollout": row.id, **(details or {})})
            tx.session.flush()
            return row.to_entity()

    @staticmethod
    def _expect(row: RolloutRow, state: str, action: str) -> None:
        if row.state != state:
            raise Conflict(f"the rollout of {row.model_name}/{row.version} is {row.state}; only a {state} rollout can {action}")

    def add_token(self, *, actor: str, name: str, token_sha256: str) -> None:
        with self.write(actor) as tx:
            if tx.session.get(ApiTokenRow, name) is not None:
                raise Conflict(f"a token named {name!r} exists already", hint="Pick another name.")
            tx.session.add(ApiTokenRow(name=name, token_sha256=token_sha256, created_by=actor, created_at=tx.now))
            tx.audit("token.created", name, {})

    def token_hashes(self) -> dict[str, str]:
        with self.read() as session:
            return {row.token_sha256: row.name for row in session.scalars(select(ApiTokenRow))}

    def _move(self, tx: Tx, row: VersionRow, to: Stage, reason: str, *, break_glass: bool = False) -> None:
        before = row.stage
        row.stage = to.value
        row.updated_at = tx.now
        tx.session.add(
            StageChangeRow(
                model_name=row.model_name,
                version=row.version,
                from_stage=before,
                to_stage=to.value,
                actor=tx.actor,
                reason=reason,
                at=tx.now,
            )
        )
        details: dict[str, Any] = {"from": before, "to": to.value, "reason": reason}
        if break_glass:
            details["break_glass"] = True
        tx.audit("version.stage_changed", f"{row.model_name}/{row.version}", details)

    @staticmethod
    def _find_version(session: Session, model: str, version: int) -> VersionRow | None:
        query = select(VersionRow).where(VersionRow.model_name == model, VersionRow.version == version)
        return session.scalars(query).one_or_none()

    def _version_row(self, session: Session, model: str, version: int) -> VersionRow:
        row = self._find_version(session, model, version)
        if row is not None:
            return row
        if session.get(ModelRow, model) is None:
            raise NotFound(f"unknown model {model!r}", hint=self._known_models_hint(session))
        known = session.scalars(
            select(VersionRow.version).where(VersionRow.model_name == model).order_by(VersionRow.version)
        ).all()
        raise NotFound(
            f"model {model!r} has no version {version}",
            hint=f"Known versions: {', '.join(map(str, known)) or 'none'}.",
        )

    @staticmethod
    def _known_models_hint(session: Session) -> str:
        names = session.scalars(select(ModelRow.name).order_by(ModelRow.name)).all()
        return f"Known models: {', '.join(names)}." if names else "No model is registered yet; run `shipyard pipeline run MODEL`."

    def get_model(self, name: str) -> Model:
        with self.read() as session:
            row = session.get(ModelRow, name)
            if row is None:
                raise NotFound(f"unknown model {name!r}", hint=self._known_models_hint(session))
            return row.to_entity()

    def list_models(self) -> list[Model]:
        with self.read() as session:
            return [row.to_entity() for row in session.scalars(select(ModelRow).order_by(ModelRow.name))]

    def get_version(self, model: str, version: int) -> ModelVersion:
        with self.read() as session:
            return self._version_row(session, model, version).to_entity()

    def list_versions(self, model: str | None = None) -> list[ModelVersion]:
        with self.read() as session:
            query = select(VersionRow).order_by(VersionRow.model_name, VersionRow.version)
            if model is not None:
                if session.get(ModelRow, model) is None:
                    raise NotFound(f"unknown model {model!r}", hint=self._known_models_hint(session))
                query = query.where(VersionRow.model_name == model)
            return [row.to_entity() for row in session.scalars(query)]

    def stage_history(self, model: str, version: int | None = None) -> list[StageChange]:
        with self.read() as session:
            query = select(StageChangeRow).where(StageChangeRow.model_name == model).order_by(StageChangeRow.id)
            if version is not None:
                query = query.where(StageChangeRow.version == version)
            return [row.to_entity() for row in session.scalars(query)]

    # -- audit ----------------------------------------------------------------

    def audit_events(self, *, model: str | None = None, since: datetime | None = None) -> list[AuditEvent]:
        with self.read() as session:
            query = select(AuditRow).order_by(AuditRow.seq)
            if model is not None:
                query = query.where((AuditRow.subject == model) | AuditRow.subject.startswith(f"{model}/", autoescape=True))
            if since is not None:
                query = query.where(AuditRow.at >= since)
            return [row.to_entity() for row in session.scalars(query)]

    def verify_audit(self) -> AuditVerification:
        with self.read() as session:
            head = session.get(AuditHeadRow, 1)
            rows = session.scalars(select(AuditRow).order_by(AuditRow.seq).execution_options(yield_per=1000))
            try:
                return verify_chain((row.to_entity() for row in rows), (head.seq, head.hash) if head is not None else None)
            finally:
                rows.close()  # verification may stop early; release the server-side cursor now
