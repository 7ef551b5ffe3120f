"""The store: every state change and its audit event, in one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from shipyard.domain.entities import AuditEvent, AuditVerification, Model, ModelVersion, Promotion, StageChange
from shipyard.domain.errors import Conflict, NotFound
from shipyard.domain.stages import Stage, check_transition
from shipyard.store import database
from shipyard.store.audit import event_hash, verify_chain
from shipyard.store.tables import AuditHeadRow, AuditRow, ModelRow, StageChangeRow, VersionRow, utcnow


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


class Store:
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
    ) -> ModelVersion:
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
            tx.session.flush()
            return row.to_entity()

    def transition(self, *, actor: str, model: str, version: int, to: Stage, reason: str) -> Promotion:
        """Move a version along the stage machine; promoting to production archives the champion."""
        with self.write(actor) as tx:
            row = self._version_row(tx.session, model, version)
            current = Stage(row.stage)
            check_transition(f"{model}/{version}", current, to)
            archived: list[ModelVersion] = []
            if to is Stage.PRODUCTION:
                champions = tx.session.scalars(
                    select(VersionRow).where(VersionRow.model_name == model, VersionRow.stage == Stage.PRODUCTION.value)
                ).all()
                for champion in champions:
                    self._move(tx, champion, Stage.ARCHIVED, f"replaced by version {version}: {reason}")
                    archived.append(champion.to_entity())
                # The old champion must leave the one-production index before the new one enters it.
                tx.session.flush()
            self._move(tx, row, to, reason)
            tx.session.flush()
            return Promotion(version=row.to_entity(), from_stage=current, archived=tuple(archived))

    def _move(self, tx: Tx, row: VersionRow, to: Stage, reason: str) -> None:
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
        tx.audit("version.stage_changed", f"{row.model_name}/{row.version}", {"from": before, "to": to.value, "reason": reason})

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
