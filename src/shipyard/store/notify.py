"""Notification cursors: how far into the audit log a notifier has delivered.

The notifier reads audit events after its cursor, sends what they call for, and moves the cursor
past each message it delivered (or gave up on). The cursor is a row in the store, so a restarted
worker, or another one that took the lease over, neither sends a message again nor skips one.
Every move names the position it starts from: a worker that lost the race moves nothing.

Moving a cursor is not audited (it would add an event for every few events); giving a message up
is, with its ``notify.failed`` event written in the same transaction as the move.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from shipyard.domain.entities import AuditEvent
from shipyard.domain.notifications import NotifyCursor
from shipyard.store.base import StoreBase, Tx
from shipyard.store.tables import AuditHeadRow, AuditRow, Base, as_utc


class NotifyCursorRow(Base):
    """One notifier's place in the audit log."""

    __tablename__ = "notify_cursors"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)  # the last audit event handled
    attempts: Mapped[int] = mapped_column(Integer)  # failed deliveries of the next message
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def to_entity(self) -> NotifyCursor:
        return NotifyCursor(
            name=self.name,
            seq=self.seq,
            attempts=self.attempts,
            last_error=self.last_error,
            updated_at=as_utc(self.updated_at),
        )


def _at(tx: Tx, name: str, seen: int) -> NotifyCursorRow | None:
    """The cursor row, if it is still where this notifier saw it."""
    row = tx.session.get(NotifyCursorRow, name)
    return row if row is not None and row.seq == seen else None


class NotifyRecords(StoreBase):
    """Mixed into ``Store``: notification cursors over the audit log."""

    def notify_cursor(self, name: str) -> NotifyCursor | None:
        with self.read() as session:
            row = session.get(NotifyCursorRow, name)
            return row.to_entity() if row is not None else None

    def start_notify_cursor(self, *, actor: str, name: str) -> NotifyCursor:
        """The cursor, placed at the end of the audit log when it is new: a notifier starts from now,
        it does not announce the history it was not there for."""
        with self.write(actor) as tx:
            row = tx.session.get(NotifyCursorRow, name)
            if row is None:
                row = NotifyCursorRow(name=name, seq=tx.seq, attempts=0, last_error=None, updated_at=tx.now)
                tx.session.add(row)
                tx.session.flush()
            return row.to_entity()

    def notify_backlog(self, after: int, *, actions: tuple[str, ...], limit: int) -> tuple[list[AuditEvent], int]:
        """Up to ``limit`` events with one of ``actions`` after ``after``, in order, and the chain's last event.

        The head is read first: once it shows an event, every event up to it is committed (they are
        written with it), so none of them can appear later behind a cursor moved to the head.
        """
        with self.read() as session:
            head = session.get(AuditHeadRow, 1)
            last = head.seq if head is not None else 0
            query = (
                select(AuditRow)
                .where(AuditRow.seq > after, AuditRow.seq <= last, AuditRow.action.in_(actions))
                .order_by(AuditRow.seq)
                .limit(limit)
            )
            return [row.to_entity() for row in session.scalars(query)], last

    def advance_notify_cursor(self, *, actor: str, name: str, seen: int, to: int) -> bool:
        """Move the cursor from ``seen`` to ``to`` (the next message starts with no failed attempt).

        False, and nothing written, when the cursor is no longer at ``seen``.
        """
        with self.write(actor) as tx:
            row = _at(tx, name, seen)
            if row is None:
                return False
            row.seq, row.attempts, row.last_error, row.updated_at = to, 0, None, tx.now
            return True

    def note_notify_failure(self, *, actor: str, name: str, seen: int, to: int, error: str) -> NotifyCursor | None:
        """Count one more failed delivery of the message right after ``to`` (events from ``seen`` up to
        ``to`` called for none). None, and nothing written, when the cursor is no longer at ``seen``."""
        with self.write(actor) as tx:
            row = _at(tx, name, seen)
            if row is None:
                return None
            row.seq, row.attempts, row.last_error, row.updated_at = to, row.attempts + 1, error[:2000], tx.now
            return row.to_entity()

    def give_up_notification(
        self, *, actor: str, name: str, seen: int, event: AuditEvent, details: dict[str, Any]
    ) -> AuditEvent | None:
        """Record a ``notify.failed`` event for the message ``event`` called for, and move past it, in one
        transaction. None, and nothing written, when the cursor is no longer at ``seen``."""
        with self.write(actor) as tx:
            row = _at(tx, name, seen)
            if row is None:
                return None
            row.seq, row.attempts, row.last_error, row.updated_at = event.seq, 0, None, tx.now
            return tx.audit("notify.failed", event.subject, {"notifier": name, "event": event.seq, **details})


__all__ = ["NotifyCursorRow", "NotifyRecords"]
