"""What every part of the store shares: the writing transaction and the row look-ups.

``Store`` (repository.py) opens the transactions; each part (versions, governance,
delivery, monitoring, the audit log) writes through ``write`` and reads through ``read``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from shipyard.domain.entities import AuditEvent
from shipyard.domain.errors import NotFound
from shipyard.domain.stages import Stage
from shipyard.store.audit import event_hash
from shipyard.store.tables import AuditHeadRow, AuditRow, ModelRow, ServingStateRow, StageChangeRow, VersionRow


class Tx:
    """A writing transaction. Holds the audit head lock until it ends."""

    def __init__(self, session: Session, head: AuditHeadRow, actor: str, now: datetime) -> None:
        self.session = session
        self.actor = actor
        self._head = head
        self.now = now
        self.events: list[AuditEvent] = []  # this transaction's audit events, for the commit hooks

    @property
    def seq(self) -> int:
        """The chain's last event so far, this transaction's included."""
        return self._head.seq

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
        event = row.to_entity()
        self.events.append(event)
        return event


class StoreBase(ABC):
    """The two doors every part of the store goes through."""

    engine: Engine
    url: str

    @abstractmethod
    def write(self, actor: str) -> AbstractContextManager[Tx]:
        """One writing transaction: lock the audit head, do the change, audit it, commit."""

    @abstractmethod
    def read(self) -> AbstractContextManager[Session]:
        """One reading session."""


MAX_VERSION = 2**31 - 1  # the largest version number the store's integer column holds on every database


def find_version(session: Session, model: str, version: int) -> VersionRow | None:
    if not 1 <= version <= MAX_VERSION:  # no such version, and PostgreSQL would refuse the query itself
        return None
    query = select(VersionRow).where(VersionRow.model_name == model, VersionRow.version == version)
    return session.scalars(query).one_or_none()


def version_row(session: Session, model: str, version: int) -> VersionRow:
    """The row of ``model``/``version``, or NotFound naming what is known instead."""
    row = find_version(session, model, version)
    if row is not None:
        return row
    if session.get(ModelRow, model) is None:
        raise NotFound(f"unknown model {model!r}", hint=known_models_hint(session))
    known = session.scalars(select(VersionRow.version).where(VersionRow.model_name == model).order_by(VersionRow.version)).all()
    raise NotFound(
        f"model {model!r} has no version {version}",
        hint=f"Known versions: {', '.join(map(str, known)) or 'none'}.",
    )


def known_models_hint(session: Session) -> str:
    names = session.scalars(select(ModelRow.name).order_by(ModelRow.name)).all()
    return f"Known models: {', '.join(names)}." if names else "No model is registered yet; run `shipyard pipeline run MODEL`."


def production_rows(session: Session, model: str) -> list[VersionRow]:
    """The production rows of ``model``: none or one, as the one-production index allows."""
    query = select(VersionRow).where(VersionRow.model_name == model, VersionRow.stage == Stage.PRODUCTION.value)
    return list(session.scalars(query).all())


def move(tx: Tx, row: VersionRow, to: Stage, reason: str, *, break_glass: bool = False) -> None:
    """Change a version's stage, with its stage-change row and audit event."""
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


def bump_generation(tx: Tx) -> None:
    """Tell gateways, which poll this one integer, that serving state changed."""
    state = tx.session.get(ServingStateRow, 1)
    if state is not None:
        state.generation += 1


__all__ = [
    "StoreBase",
    "Tx",
    "bump_generation",
    "find_version",
    "known_models_hint",
    "move",
    "production_rows",
    "version_row",
]
