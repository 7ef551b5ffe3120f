"""The MLflow mirror: what may be behind, and repairing it from the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.service.base import ServiceBase

if TYPE_CHECKING:
    from shipyard.domain.mirror import PendingMirror


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconciled:
    """What `reconcile` found and repaired for one model (its tags and aliases now match the store)."""

    model: str
    orphans: tuple[int, ...] = ()  # MLflow versions the store does not know, now tagged orphaned
    registrations_closed: tuple[str, ...] = ()  # runs whose registration never completed

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "orphans": list(self.orphans), "registrations_closed": list(self.registrations_closed)}


class Mirroring(ServiceBase):
    def mirror_backlog(self, model: str | None = None) -> list[PendingMirror]:
        """What MLflow may not show yet: stage changes not mirrored, registrations never completed."""
        return self.store.mirror_pending(model)

    def reconcile(self, model: str | None = None, *, grace_seconds: float = 60.0) -> list[Reconciled]:
        """Make MLflow say what the store says, and report what was wrong.

        Per model: stage tags and aliases set from the store; versions MLflow holds that the store does
        not know (a registration that crashed half way, or a plain MLflow client) tagged orphaned and
        stripped of Shipyard's aliases — never deleted — each audited; registrations begun more than
        ``grace_seconds`` ago and never completed closed. Then the mirror backlog is cleared.
        """
        from datetime import UTC, datetime

        from shipyard.registry import ORPHANED

        names = [model] if model else [m.name for m in self.store.list_models()]
        self.authorize("operate", what="repair the MLflow mirror", subject=model or "*")
        done = []
        for name in names:
            backlog = self.store.mirror_pending(name)
            versions = self.store.list_versions(name)
            orphans: list[int] = []
            for orphan in self.registry.orphans(name, {v.version for v in versions}):
                if orphan.stage == ORPHANED:
                    continue
                taken = self.registry.mark_orphan(name, orphan.number)
                with self.store.write(self.actor) as tx:
                    details = {"run_id": orphan.run_id, "source": orphan.source, "aliases_removed": taken}
                    tx.audit("mirror.orphan_marked", f"{name}/{orphan.number}", details)
                orphans.append(orphan.number)
            self.registry.mirror(name, {v.version: v.stage for v in versions})
            now = datetime.now(UTC)
            closed = []
            for pending in backlog:
                late = (now - pending.since).total_seconds() >= grace_seconds
                if pending.kind == "registration" and pending.registration is not None and late:
                    self.store.end_registration(pending.registration)
                    closed.append(pending.run_id or "")
            stages_seq = [p.seq for p in backlog if p.kind == "stages" and p.seq is not None]
            self.store.clear_mirror_pending(name, seq=max(stages_seq) if stages_seq else None)
            done.append(Reconciled(model=name, orphans=tuple(orphans), registrations_closed=tuple(closed)))
        return done
