"""The MLflow mirror's backlog, kept in the store so nobody needs MLflow to know it is behind.

Shipyard commits a change to the store, then mirrors it into MLflow. A crash between
the two leaves MLflow's aliases behind; a crash between registering a version in
MLflow and in the store leaves an orphan MLflow version. The store records both
kinds of pending work in the same transactions as the changes, and the mirror
clears them once MLflow matches.

This is bookkeeping, not history, so it is not audited: every mark is written with
an audited change (whose event already says what changed), and a clear only says
that MLflow caught up. Whoever repairs an orphan MLflow version audits that repair.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from shipyard.domain.errors import InvalidSpec
from shipyard.domain.mirror import PendingMirror
from shipyard.store.base import StoreBase, Tx
from shipyard.store.tables import MirrorPendingRow, RegistrationPendingRow

# The actor of writes that audit nothing; it is never recorded.
BOOKKEEPING = "shipyard"


def mark_mirror_pending(tx: Tx, model: str, reason: str) -> None:
    """Note, in the change's own transaction, that MLflow must be brought up to ``model``'s stages.

    Call it after the change's audit events: the mark remembers the last of them, so a
    mirror that read the stages before a later change cannot clear that later mark.
    """
    row = tx.session.get(MirrorPendingRow, model)
    if row is None:
        tx.session.add(MirrorPendingRow(model_name=model, reason=reason, since=tx.now, seq=tx.seq))
    else:
        row.reason, row.seq = reason, tx.seq  # ``since`` stays: the mirror has been behind since then


def complete_registration(tx: Tx, model: str, run_id: str) -> None:
    """The store recorded the version registered for ``run_id``: the newest registration begun for it is done.

    Older ones for the same run stay listed: an earlier attempt may have left an orphan in MLflow.
    """
    newest = tx.session.scalars(
        select(RegistrationPendingRow.id)
        .where(RegistrationPendingRow.model_name == model, RegistrationPendingRow.run_id == run_id)
        .order_by(RegistrationPendingRow.id.desc())
        .limit(1)
    ).first()
    if newest is not None:
        tx.session.execute(delete(RegistrationPendingRow).where(RegistrationPendingRow.id == newest))


class MirrorRecords(StoreBase):
    """Mixed into ``Store``: what the MLflow mirror still has to do."""

    def begin_registration(self, *, actor: str, model: str, run_id: str) -> int:
        """Record, before registering in MLflow, that a version of ``model`` for ``run_id`` is being registered."""
        if not run_id.strip():
            raise InvalidSpec(f"registering a version of {model} needs the MLflow run id; got {run_id!r}")
        with self.write(actor) as tx:
            row = RegistrationPendingRow(model_name=model, run_id=run_id, actor=actor, since=tx.now)
            tx.session.add(row)
            tx.session.flush()
            return row.id

    def end_registration(self, registration: int) -> bool:
        """Drop a begun registration that will never complete (MLflow refused it, or its orphan was dealt with)."""
        with self.write(BOOKKEEPING) as tx:
            result = tx.session.execute(delete(RegistrationPendingRow).where(RegistrationPendingRow.id == registration))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def mirror_pending(self, model: str | None = None) -> list[PendingMirror]:
        """Models whose MLflow mirror may be behind, then registrations begun and not recorded, oldest first."""
        with self.read() as session:
            stages = select(MirrorPendingRow).order_by(MirrorPendingRow.since, MirrorPendingRow.model_name)
            begun = select(RegistrationPendingRow).order_by(RegistrationPendingRow.id)
            if model is not None:
                stages = stages.where(MirrorPendingRow.model_name == model)
                begun = begun.where(RegistrationPendingRow.model_name == model)
            return [row.to_entity() for row in session.scalars(stages)] + [row.to_entity() for row in session.scalars(begun)]

    def clear_mirror_pending(self, model: str, *, seq: int | None = None) -> bool:
        """MLflow matches ``model``'s stages again: drop its mark.

        ``seq``: the mark's ``seq`` the caller saw before reading the stages it mirrored; a
        mark set by a later change is kept. Returns whether a mark was dropped.
        """
        with self.write(BOOKKEEPING) as tx:
            query = delete(MirrorPendingRow).where(MirrorPendingRow.model_name == model)
            if seq is not None:
                query = query.where(MirrorPendingRow.seq <= seq)
            return bool(tx.session.execute(query).rowcount)  # type: ignore[attr-defined]


__all__ = ["MirrorRecords", "complete_registration", "mark_mirror_pending"]
