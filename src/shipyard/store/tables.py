"""Tables of Shipyard's store. Rows become entities through ``to_entity()``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shipyard.domain.checkpoints import AuditKey, Checkpoint
from shipyard.domain.entities import AuditEvent, Model, ModelVersion, StageChange
from shipyard.domain.governance import Approval
from shipyard.domain.identity import Principal, Token
from shipyard.domain.mirror import PendingMirror
from shipyard.domain.monitoring import Alert, MonitorRun
from shipyard.domain.rollouts import Rollout
from shipyard.domain.stages import Stage


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything Shipyard writes is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


def partial_unique(name: str, *columns: str, where: str) -> Index:
    """A unique index over the rows matching ``where`` (SQL), as the migrations create it.

    The condition is kept in ``info``, not as ``sqlite_where``/``postgresql_where``: declaring those makes
    SQLAlchemy import both dialects' modules (tens of milliseconds on every command), and the ORM never
    creates tables — Alembic does. tests/store/test_migrations.py checks each migrated index has the condition.
    """
    return Index(name, *columns, unique=True, info={"where": where})


class ModelRow(Base):
    __tablename__ = "models"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))

    def to_entity(self) -> Model:
        return Model(name=self.name, owner=self.owner, created_at=as_utc(self.created_at), created_by=self.created_by)


class VersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_name", "version", name="uq_model_versions_model_version"),
        # At most one champion per model, enforced by the database itself.
        partial_unique("uq_model_versions_one_production", "model_name", where="stage = 'production'"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200), ForeignKey("models.name"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(20))
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str] = mapped_column(Text)
    data_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    data_fingerprint: Mapped[str | None] = mapped_column(String(80), nullable=True)
    git_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    files_sha256: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    registered_by: Mapped[str] = mapped_column(String(200))
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def to_entity(self) -> ModelVersion:
        return ModelVersion(
            model=self.model_name,
            version=self.version,
            stage=Stage(self.stage),
            run_id=self.run_id,
            source=self.source,
            data_uri=self.data_uri,
            data_fingerprint=self.data_fingerprint,
            git_commit=self.git_commit,
            metrics=dict(self.metrics or {}),
            files_sha256=dict(self.files_sha256) if self.files_sha256 else None,
            registered_by=self.registered_by,
            registered_at=as_utc(self.registered_at),
            updated_at=as_utc(self.updated_at),
        )


class StageChangeRow(Base):
    __tablename__ = "stage_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    from_stage: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_stage: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def to_entity(self) -> StageChange:
        return StageChange(
            model=self.model_name,
            version=self.version,
            from_stage=Stage(self.from_stage) if self.from_stage else None,
            to_stage=Stage(self.to_stage),
            actor=self.actor,
            reason=self.reason,
            at=as_utc(self.at),
        )


class AuditRow(Base):
    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str] = mapped_column(String(300), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    def to_entity(self) -> AuditEvent:
        return AuditEvent(
            seq=self.seq,
            at=as_utc(self.at),
            actor=self.actor,
            action=self.action,
            subject=self.subject,
            details=dict(self.details or {}),
            prev_hash=self.prev_hash,
            hash=self.hash,
        )


class AuditHeadRow(Base):
    """One row: the chain's last sequence number and hash.

    Every writing transaction locks it first, which serializes writers (so the
    chain never forks) and lets ``verify`` notice events cut from the end.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class AuditKeyRow(Base):
    """A public key of the server's audit signing key; retired keys stay to verify what they signed."""

    __tablename__ = "audit_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    def to_entity(self) -> AuditKey:
        return AuditKey(
            key_id=self.key_id,
            public_key=self.public_key,
            created_at=as_utc(self.created_at),
            created_by=self.created_by,
            retired_at=as_utc(self.retired_at) if self.retired_at else None,
        )


class AuditCheckpointRow(Base):
    """A signed checkpoint of the chain's head; the server also appends it to its checkpoint file."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(200))
    seq: Mapped[int] = mapped_column(Integer, index=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(128), unique=True)

    def to_entity(self) -> Checkpoint:
        return Checkpoint(
            project=self.project,
            seq=self.seq,
            head_hash=self.head_hash,
            signed_at=as_utc(self.signed_at),
            key_id=self.key_id,
            signature=self.signature,
        )


class EvidenceRow(Base):
    """Everything the checks found about one version; policies are judged against it."""

    __tablename__ = "evidence"
    __table_args__ = (UniqueConstraint("model_name", "version", name="uq_evidence_model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    collected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    collected_by: Mapped[str] = mapped_column(String(200))


class DataSchemaRow(Base):
    """The reference data schema of a model, inferred from its first accepted training data."""

    __tablename__ = "data_schemas"

    model_name: Mapped[str] = mapped_column(String(200), ForeignKey("models.name"), primary_key=True)
    schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    source_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GateReportRow(Base):
    __tablename__ = "gate_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(20))
    passed: Mapped[bool] = mapped_column(Boolean)
    break_glass: Mapped[bool] = mapped_column(Boolean)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApprovalRow(Base):
    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSON)
    decision: Mapped[str] = mapped_column(String(10))
    comment: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    evidence_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # A revoked approval stays, so the history of who signed off on what is never lost.
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)

    def to_entity(self) -> Approval:
        return Approval(
            model=self.model_name,
            version=self.version,
            stage=self.stage,
            actor=self.actor,
            roles=tuple(self.roles or ()),
            decision=self.decision,
            comment=self.comment,
            at=as_utc(self.at),
            evidence_sha256=self.evidence_sha256,
            revoked=self.revoked_reason,
        )


class DeploymentRow(Base):
    """How a model's traffic is split. The champion is its production version; this adds a challenger."""

    __tablename__ = "deployments"

    model_name: Mapped[str] = mapped_column(String(200), ForeignKey("models.name"), primary_key=True)
    challenger_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    mode: Mapped[str] = mapped_column(String(20))
    challenger_weight: Mapped[float] = mapped_column(Float)
    routing_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(200))


class ServingStateRow(Base):
    """One row: bumped by every change gateways must apply, so they poll one integer."""

    __tablename__ = "serving_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(Integer)


class ApiTokenRow(Base):
    """A bearer token bound to a principal: only its sha256 is kept. Revoked tokens stay, for the record."""

    __tablename__ = "api_tokens"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    principal: Mapped[str] = mapped_column(String(200), index=True)
    scope: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)

    def to_entity(self) -> Token:
        return Token(
            name=self.name,
            principal=self.principal,
            scope=self.scope,
            created_by=self.created_by,
            created_at=as_utc(self.created_at),
            expires_at=as_utc(self.expires_at) if self.expires_at is not None else None,
            last_used_at=as_utc(self.last_used_at) if self.last_used_at is not None else None,
            revoked_at=as_utc(self.revoked_at) if self.revoked_at is not None else None,
            revoked_by=self.revoked_by,
        )


class PrincipalRow(Base):
    """A person or service account and its roles: team mode's source of truth for who may do what."""

    __tablename__ = "principals"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    roles: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def to_entity(self) -> Principal:
        return Principal(name=self.name, roles=tuple(self.roles), created_by=self.created_by, created_at=as_utc(self.created_at))


class RolloutRow(Base):
    __tablename__ = "rollouts"
    __table_args__ = (partial_unique("uq_rollouts_one_active", "model_name", where="state IN ('running', 'paused')"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200), ForeignKey("models.name"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    champion_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    strategy: Mapped[str] = mapped_column(String(20))
    steps: Mapped[list[float]] = mapped_column(JSON)
    step_index: Mapped[int] = mapped_column(Integer)
    interval_seconds: Mapped[float] = mapped_column(Float)
    checks: Mapped[dict[str, Any]] = mapped_column(JSON)
    failure_limit: Mapped[int] = mapped_column(Integer)
    failures: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    started_by: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    step_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    def to_entity(self) -> Rollout:
        return Rollout(
            id=self.id,
            model=self.model_name,
            version=self.version,
            champion=self.champion_version,
            strategy=self.strategy,
            steps=tuple(self.steps),
            step_index=self.step_index,
            interval_seconds=self.interval_seconds,
            checks=dict(self.checks),
            failure_limit=self.failure_limit,
            failures=self.failures,
            state=self.state,
            history=tuple(self.history),
            started_by=self.started_by,
            started_at=as_utc(self.started_at),
            step_started_at=as_utc(self.step_started_at),
            finished_at=as_utc(self.finished_at) if self.finished_at else None,
        )


class MonitorRunRow(Base):
    __tablename__ = "monitor_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200), ForeignKey("models.name"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    window_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rows: Mapped[int] = mapped_column(Integer)
    dataset_drift: Mapped[bool] = mapped_column(Boolean)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(200))

    def to_entity(self) -> MonitorRun:
        return MonitorRun(
            id=self.id,
            model=self.model_name,
            version=self.version,
            at=as_utc(self.at),
            window_start=as_utc(self.window_start) if self.window_start else None,
            window_end=as_utc(self.window_end) if self.window_end else None,
            rows=self.rows,
            dataset_drift=self.dataset_drift,
            report=dict(self.report),
            actor=self.actor,
        )


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (partial_unique("uq_alerts_one_open", "model_name", "signal", where="state = 'open'"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200), ForeignKey("models.name"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    signal: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20))
    observed: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    action: Mapped[str] = mapped_column(String(20))
    action_state: Mapped[str] = mapped_column(String(20))
    action_result: Mapped[dict[str, Any]] = mapped_column(JSON)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(20), nullable=True)
    monitor_run: Mapped[int] = mapped_column(Integer)
    seen: Mapped[int] = mapped_column(Integer)

    def to_entity(self) -> Alert:
        return Alert(
            id=self.id,
            model=self.model_name,
            version=self.version,
            signal=self.signal,
            state=self.state,
            observed=self.observed,
            threshold=self.threshold,
            action=self.action,
            action_state=self.action_state,
            action_result=dict(self.action_result),
            opened_at=as_utc(self.opened_at),
            last_seen_at=as_utc(self.last_seen_at),
            resolved_at=as_utc(self.resolved_at) if self.resolved_at else None,
            monitor_run=self.monitor_run,
            seen=self.seen,
            resolution=self.resolution,
        )


class MirrorPendingRow(Base):
    """A model whose MLflow aliases and tags may be behind its stages in the store."""

    __tablename__ = "mirror_pending"

    model_name: Mapped[str] = mapped_column(String(200), ForeignKey("models.name"), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seq: Mapped[int] = mapped_column(Integer)

    def to_entity(self) -> PendingMirror:
        return PendingMirror(kind="stages", model=self.model_name, reason=self.reason, since=as_utc(self.since), seq=self.seq)


class RegistrationPendingRow(Base):
    """An MLflow registration begun and not yet recorded in the store (no foreign key: the model may be new)."""

    __tablename__ = "registrations_pending"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200), index=True)
    run_id: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def to_entity(self) -> PendingMirror:
        return PendingMirror(
            kind="registration",
            model=self.model_name,
            reason=f"{self.actor} began registering run {self.run_id} in MLflow",
            since=as_utc(self.since),
            run_id=self.run_id,
            registration=self.id,
        )


class LeaseRow(Base):
    """Who may act alone on the shared store (e.g. the worker), until when."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
