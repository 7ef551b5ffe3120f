"""Legal holds, retention passes and what each model costs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shipyard.service.base import ServiceBase

if TYPE_CHECKING:
    from shipyard.costs import Costs
    from shipyard.domain.retention import LegalHold, RetentionAction, RetentionOutcome, RetentionPlan


class Retention(ServiceBase):
    # -- legal holds -----------------------------------------------------------------------

    def add_hold(self, model: str, version: int, *, reason: str) -> LegalHold:
        """Put a version under legal hold: no retention rule touches it until the hold is lifted."""
        subject = f"{model}/{version}"
        self.authorize("hold", what=f"put {subject} under legal hold", subject=subject)
        return self.store.add_hold(actor=self.actor, model=model, version=version, reason=reason)

    def remove_hold(self, model: str, version: int, *, reason: str) -> LegalHold:
        subject = f"{model}/{version}"
        self.authorize("hold", what=f"lift the legal hold on {subject}", subject=subject)
        return self.store.remove_hold(actor=self.actor, model=model, version=version, reason=reason)

    def holds(self, model: str | None = None) -> list[LegalHold]:
        return self.store.holds(model)

    # -- retention -------------------------------------------------------------------------

    def retention_plan(self, *, now: datetime | None = None) -> RetentionPlan:
        """Every action a pass would take now, with the bytes each frees; changes nothing."""
        from shipyard.retention import passes

        return passes.plan(self.settings, self.store, self.registry, now or datetime.now(UTC))

    def retention_apply(self, *, now: datetime | None = None) -> RetentionOutcome:
        """Carry the retention plan out, each action audited; safe to interrupt and run again."""
        from shipyard.retention import passes

        self.authorize("retention", what="apply retention", subject="retention")

        def record(action: RetentionAction, details: dict[str, Any]) -> None:
            self.store.record_retention(actor=self.actor, action=action.kind, subject=action.subject, details=details)

        return passes.apply(self.settings, self.store, self.registry, now or datetime.now(UTC), record=record)

    # -- costs -----------------------------------------------------------------------------

    def costs(self, since: str = "30d") -> Costs:
        """Per model: CPU time predicting, predictions served, CPU-seconds per 1,000, and storage held."""
        from shipyard import costs
        from shipyard.domain.durations import parse_duration
        from shipyard.registry.tracking import local_path

        until = datetime.now(UTC)
        start = until - timedelta(seconds=parse_duration(since, unit_required=True))
        stored = {m.name for m in self.store.list_models()}
        names = sorted(stored | set(self.settings.spec.models))
        lineage = costs.lineage_bytes(self.settings.lineage_dir, names)
        rows = []
        for name in names:
            cpu, served, logged, unattributed = costs.usage(self.settings.predictions_dir, name, start, until)
            artifacts = 0
            for version in self.store.list_versions(name) if name in stored else []:
                folder = local_path(self.registry.located(version.source))
                if folder is not None:
                    artifacts += costs.folder_bytes(folder)
                archive = self.registry.cold_archive(version.source)
                if archive is not None:
                    artifacts += costs.folder_bytes(archive)
            rows.append(
                costs.ModelCost(
                    model=name,
                    cpu_seconds=cpu,
                    predictions=served,
                    logged_rows=logged,
                    unattributed_rows=unattributed,
                    artifact_bytes=artifacts,
                    log_bytes=costs.log_bytes(self.settings.predictions_dir, name),
                    lineage_bytes=lineage.get(name, 0),
                )
            )
        return costs.Costs(since=start, until=until, models=tuple(rows))
