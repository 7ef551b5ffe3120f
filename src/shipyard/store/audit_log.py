"""The audit log in the store: reading events back and verifying the chain."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.domain.entities import AuditEvent, AuditVerification
from shipyard.domain.errors import InvalidSpec
from shipyard.store import database
from shipyard.store.audit import holds, verify_chain
from shipyard.store.base import StoreBase
from shipyard.store.replay import unexplained_rows
from shipyard.store.tables import AuditHeadRow, AuditRow


class AuditRecords(StoreBase):
    """Mixed into ``Store``: the events every other part wrote, and their verification."""

    def audit_events(
        self, *, model: str | None = None, since: datetime | None = None, action: str | None = None
    ) -> list[AuditEvent]:
        with self.read() as session:
            query = select(AuditRow).order_by(AuditRow.seq)
            if action is not None:
                query = query.where(AuditRow.action == action)
            if model is not None:
                query = query.where((AuditRow.subject == model) | AuditRow.subject.startswith(f"{model}/", autoescape=True))
            if since is not None:
                query = query.where(AuditRow.at >= since)
            return [row.to_entity() for row in session.scalars(query)]

    def audit_head_seq(self) -> int:
        """The last event's sequence number (0 for an empty log): one row read."""
        with self.read() as session:
            head = session.get(AuditHeadRow, 1)
            return head.seq if head is not None else 0

    def audit_page(
        self,
        *,
        model: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[AuditEvent], int, int]:
        """One page of events, newest first, filtered in the database: (events, how many match, how many in all).

        ``action`` matches an action or its family (``approval`` matches ``approval.denied``).
        """
        from sqlalchemy import func

        with self.read() as session:
            query = select(AuditRow)
            if model is not None:
                query = query.where((AuditRow.subject == model) | AuditRow.subject.startswith(f"{model}/", autoescape=True))
            if actor:
                query = query.where(AuditRow.actor == actor)
            if action:
                query = query.where((AuditRow.action == action) | AuditRow.action.startswith(f"{action}.", autoescape=True))
            matching = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            total = session.scalar(select(func.count()).select_from(AuditRow)) or 0
            rows = session.scalars(query.order_by(AuditRow.seq.desc()).offset(max(0, offset)).limit(max(1, limit)))
            return [row.to_entity() for row in rows], matching, total

    def record_denial(self, *, actor: str, action: str, subject: str, details: dict[str, Any] | None = None) -> AuditEvent:
        """Leave the trace of a refused action: a ``<action>.denied`` event, in its own transaction."""
        if not action.strip() or action.endswith(".denied"):
            raise InvalidSpec(
                f"a denial needs the action that was refused, like 'promote' or 'approval'; got {action!r}",
                hint="The store adds '.denied' itself.",
            )
        with self.write(actor) as tx:
            return tx.audit(f"{action}.denied", subject, details)

    @contextmanager
    def _snapshot(self) -> Iterator[Session]:
        """One consistent view of the chain and its head.

        PostgreSQL's default (read committed) gives each statement its own view, so an
        event appended between reading the head and the events looked like tampering.
        SQLite's reading transaction is already one snapshot.
        """
        with database.translate_errors(self.url), self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with Session(bind=conn) as session:
                yield session

    def verify_audit(self) -> AuditVerification:
        with self._snapshot() as session:
            head = session.get(AuditHeadRow, 1)
            rows = session.scalars(select(AuditRow).order_by(AuditRow.seq).execution_options(yield_per=1000))
            try:
                return verify_chain((row.to_entity() for row in rows), (head.seq, head.hash) if head is not None else None)
            finally:
                rows.close()  # verification may stop early; release the server-side cursor now

    def unexplained_state(self) -> list[str]:
        """State rows (stages, approvals, deployments, rollouts, tokens, audit keys) that no audit event explains,
        read with the events in one snapshot, so a change committing meanwhile is not taken for one."""
        with self._snapshot() as session:
            return unexplained_rows(session)

    def verify_audit_from(self, checkpoint: tuple[int, str] | None) -> tuple[AuditVerification, tuple[int, str] | None]:
        """Verify only the events after ``checkpoint``, the (seq, hash) an earlier call returned.

        It still checks that the checkpoint's event is there unchanged, that the new events
        link to it, and that the chain ends at its head; it reads only those events. Returns
        the result (``events`` counts the whole chain) and the checkpoint for the next call:
        the head when the chain holds, the old checkpoint when it does not. Events before the
        checkpoint are not read again; a full ``verify_audit`` still finds an edit among them.
        """
        with self._snapshot() as session:
            head = session.get(AuditHeadRow, 1)
            head_at = (head.seq, head.hash) if head is not None else None
            after = checkpoint[0] if checkpoint is not None else 0
            if checkpoint is not None and after > 0:
                anchor = session.get(AuditRow, after)
                problem = None
                if anchor is None:
                    problem = f"event {after}, verified before, is gone: events were deleted or renumbered"
                elif anchor.hash != checkpoint[1] or not holds(anchor.to_entity()):
                    problem = f"event {after} changed since it was verified"
                if problem is not None:
                    return AuditVerification(ok=False, events=after, first_bad_seq=after, problem=problem), checkpoint
            query = select(AuditRow).where(AuditRow.seq > after).order_by(AuditRow.seq)
            rows = session.scalars(query.execution_options(yield_per=1000))
            try:
                result = verify_chain((row.to_entity() for row in rows), head_at, start=checkpoint)
            finally:
                rows.close()
        result = replace(result, events=after + result.events)
        return result, (head_at if result.ok else checkpoint)


__all__ = ["AuditRecords"]
