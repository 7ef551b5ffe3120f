"""Legal holds: versions retention never touches. Adding and lifting one are audited."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from shipyard.domain.errors import Conflict, InvalidSpec, NotFound
from shipyard.domain.retention import LegalHold
from shipyard.store.base import StoreBase, version_row
from shipyard.store.tables import Base, as_utc


class HoldRow(Base):
    __tablename__ = "legal_holds"

    model_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def to_entity(self) -> LegalHold:
        return LegalHold(model=self.model_name, version=self.version, reason=self.reason, actor=self.actor, at=as_utc(self.at))


class HoldRecords(StoreBase):
    """Mixed into ``Store``: legal holds on versions."""

    def add_hold(self, *, actor: str, model: str, version: int, reason: str) -> LegalHold:
        if not reason.strip():
            raise InvalidSpec("a legal hold needs a reason", hint="Pass --reason, e.g. --reason 'litigation 2026-114'.")
        with self.write(actor) as tx:
            version_row(tx.session, model, version)  # NotFound naming the known versions
            existing = tx.session.get(HoldRow, (model, version))
            if existing is not None:
                raise Conflict(
                    f"{model}/{version} is already under legal hold (by {existing.actor}: {existing.reason})",
                    hint=f"Lift it first with `shipyard hold remove {model} {version} --reason ...` to change it.",
                )
            row = HoldRow(model_name=model, version=version, reason=reason, actor=actor, at=tx.now)
            tx.session.add(row)
            tx.audit("hold.added", f"{model}/{version}", {"reason": reason})
            return row.to_entity()

    def remove_hold(self, *, actor: str, model: str, version: int, reason: str) -> LegalHold:
        if not reason.strip():
            raise InvalidSpec("lifting a legal hold needs a reason", hint="Pass --reason, e.g. --reason 'case closed'.")
        with self.write(actor) as tx:
            row = tx.session.get(HoldRow, (model, version))
            if row is None:
                raise NotFound(f"{model}/{version} is not under legal hold", hint="List holds with `shipyard hold list`.")
            held = row.to_entity()
            tx.session.delete(row)
            tx.audit("hold.removed", f"{model}/{version}", {"reason": reason, "held_since": held.at.isoformat()})
            return held

    def holds(self, model: str | None = None) -> list[LegalHold]:
        with self.read() as session:
            query = select(HoldRow).order_by(HoldRow.model_name, HoldRow.version)
            if model is not None:
                query = query.where(HoldRow.model_name == model)
            return [row.to_entity() for row in session.scalars(query)]

    def record_retention(self, *, actor: str, action: str, subject: str, details: dict[str, object]) -> None:
        """One carried-out retention action, as its own audit event."""
        with self.write(actor) as tx:
            tx.audit(f"retention.{action}", subject, dict(details))


__all__ = ["HoldRecords", "HoldRow"]
