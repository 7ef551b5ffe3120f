"""Delivery and governance figures for models: DORA's four keys, and how well the rules were kept.

Every figure covers the window ``since`` … ``now`` and is read from the store alone.

Delivery (DORA for models):

- deployments: moves of a version to production in the window (the stage history), per model and in total;
  deployment frequency is deployments per day of the window.
- rollbacks: deployments that return an earlier version, i.e. a move to production from archived or whose
  reason mentions a rollback (the automated rollback writes ``rollback: ...``). They restore service, so they
  count as deployments but are neither changes nor lead times.
- lead time: registration of the version to its move to production, median and p90 over the window's
  deployments that are not rollbacks; commit to production likewise, for versions whose git commit time is
  known (``commit_time``).
- change failure rate: failed changes / changes. Changes are the window's deployments that are not rollbacks,
  plus rollouts that ended rolled back or aborted in the window; failed changes are those rollouts, plus
  deployments whose model's next move to production was a rollback.
- time to restore: for each restore in the window — a rollback (as above) or a rollout rolled back or aborted —
  the time since the earliest alert on that model that was open when it happened, median and p90; and the number
  of alerts open now. Only restores count: an alert that clears on its own, or a drift that a retrained version
  answers, restored nothing.

Governance:

- the audit chain verifies, and how many events it holds;
- of the versions in production now, the share with complete evidence (every key of ``required_evidence``
  present and not null), with lineage (data fingerprint and git commit known), and approved for production
  (at least one approval and no rejection among each approver's latest decisions, as the approvals rule reads them);
- break-glass promotions: stage changes in the window made with break-glass, from the audit chain.

A figure without data (no deployments, no production version, an empty window) is None in ``to_dict``
and absent from ``gauges``: a missing series says "unknown", a zero would say "perfect".
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipyard.domain.entities import AuditVerification, ModelVersion, StageChange
from shipyard.domain.errors import InvalidSpec
from shipyard.domain.governance import Approval
from shipyard.domain.stages import Stage

if TYPE_CHECKING:
    # Only a type here: importing this module stays free of SQLAlchemy.
    from shipyard.store.repository import Store

# What evidence.collect stores and the gates' rules read: metrics, lineage, data validation, fairness, robustness.
REQUIRED_EVIDENCE = ("metrics", "lineage", "data_validation", "fairness", "robustness")
FAILED_ROLLOUT = ("rolled_back", "aborted")

_ROLLBACK = re.compile(r"roll[\s-]?back", re.IGNORECASE)


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True, kw_only=True)
class Durations:
    """Durations in seconds: how many, their median and 90th percentile (None without any)."""

    count: int
    median: float | None
    p90: float | None

    @classmethod
    def of(cls, seconds: list[float]) -> Durations:
        return cls(
            count=len(seconds),
            median=statistics.median(seconds) if seconds else None,
            p90=percentile(seconds, 0.9),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "median_seconds": self.median, "p90_seconds": self.p90}


@dataclass(frozen=True, slots=True, kw_only=True)
class Kpis:
    since: datetime
    until: datetime
    # delivery
    deployments: int
    deployments_by_model: dict[str, int]
    deployment_frequency_per_day: float
    rollbacks: int
    lead_time: Durations  # registration → production
    commit_lead_time: Durations  # git commit → production
    changes: int
    failed_changes: int
    failed_rollouts: int
    rollout_time: Durations  # rollout started → full traffic, for rollouts promoted in the window
    restore_time: Durations  # alert opened → the rollback that restored the previous state
    open_alerts: int
    # governance
    audit_chain_valid: bool
    audit_events: int
    audit_problem: str | None
    production_versions: int
    required_evidence: tuple[str, ...]
    incomplete_evidence: tuple[str, ...]  # subjects of production versions lacking required evidence
    missing_lineage: tuple[str, ...]
    unapproved: tuple[str, ...]
    break_glass_promotions: int

    @property
    def window_seconds(self) -> float:
        return (self.until - self.since).total_seconds()

    @property
    def change_failure_rate(self) -> float | None:
        return self.failed_changes / self.changes if self.changes else None

    def _share(self, lacking: tuple[str, ...]) -> float | None:
        if not self.production_versions:
            return None
        return (self.production_versions - len(lacking)) / self.production_versions

    @property
    def evidence_complete_share(self) -> float | None:
        return self._share(self.incomplete_evidence)

    @property
    def lineage_share(self) -> float | None:
        return self._share(self.missing_lineage)

    @property
    def approved_share(self) -> float | None:
        return self._share(self.unapproved)

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "window_seconds": self.window_seconds,
            "delivery": {
                "deployments": self.deployments,
                "deployments_by_model": dict(self.deployments_by_model),
                "deployment_frequency_per_day": self.deployment_frequency_per_day,
                "rollbacks": self.rollbacks,
                "lead_time": self.lead_time.to_dict(),
                "commit_lead_time": self.commit_lead_time.to_dict(),
                "changes": self.changes,
                "failed_changes": self.failed_changes,
                "failed_rollouts": self.failed_rollouts,
                "rollout_time": self.rollout_time.to_dict(),
                "change_failure_rate": self.change_failure_rate,
                "time_to_restore": self.restore_time.to_dict(),
                "open_alerts": self.open_alerts,
            },
            "governance": {
                "audit_chain_valid": self.audit_chain_valid,
                "audit_events": self.audit_events,
                "audit_problem": self.audit_problem,
                "production_versions": self.production_versions,
                "required_evidence": list(self.required_evidence),
                "evidence_complete_share": self.evidence_complete_share,
                "lineage_share": self.lineage_share,
                "approved_share": self.approved_share,
                "incomplete_evidence": list(self.incomplete_evidence),
                "missing_lineage": list(self.missing_lineage),
                "unapproved": list(self.unapproved),
                "break_glass_promotions": self.break_glass_promotions,
            },
        }

    def gauges(self) -> list[tuple[str, str, dict[str, str], float]]:
        """(metric name, help, labels, value) for a Prometheus collector; undefined figures are left out.

        Base units (seconds; a frequency per second), no ``quantile`` label (that belongs to summaries:
        a median and a p90 are gauges of their own), and a name ending ``_total`` for what only grows.
        """
        out: list[tuple[str, str, dict[str, str], float]] = []

        def add(name: str, help_text: str, value: float | None, labels: dict[str, str] | None = None) -> None:
            if value is not None:
                out.append((f"shipyard_kpi_{name}", help_text, labels or {}, float(value)))

        def durations(name: str, help_text: str, found: Durations, labels: dict[str, str]) -> None:
            add(f"{name}_median_seconds", f"{help_text} Median.", found.median, labels)
            add(f"{name}_p90_seconds", f"{help_text} 90th percentile.", found.p90, labels)

        add("window_seconds", "Length of the window the KPIs cover.", self.window_seconds)
        deployed = "Moves of a version to production in the window."
        for model, count in sorted(self.deployments_by_model.items()):
            add("deployments", deployed, count, {"model": model})
        add(
            "deployments_per_second",
            "Deployments to production per second of the window (times 86400 for per day).",
            self.deployment_frequency_per_day / 86400.0,
        )
        add("rollbacks", "Deployments in the window that returned an earlier version.", self.rollbacks)
        lead = "Lead time to production over the window's deployments, by start point."
        durations("lead_time", lead, self.lead_time, {"from": "registration"})
        durations("lead_time", lead, self.commit_lead_time, {"from": "commit"})
        add("changes", "Production deployments and failed rollouts in the window.", self.changes)
        add("failed_changes", "Changes in the window that were rolled back or aborted.", self.failed_changes)
        add("change_failure_rate", "Failed changes divided by changes in the window.", self.change_failure_rate)
        durations(
            "rollout",
            "Time from a rollout's start to full traffic, for rollouts promoted in the window.",
            self.rollout_time,
            {},
        )
        restore = "Time from an alert opening to the rollback that restored service, for restores in the window."
        durations("time_to_restore", restore, self.restore_time, {})
        add("open_alerts", "Alerts open now.", self.open_alerts)
        add("audit_chain_valid", "1 when the audit chain verifies, else 0.", 1.0 if self.audit_chain_valid else 0.0)
        add("audit_events_total", "Events in the audit chain (it only grows).", self.audit_events)
        add("production_versions", "Versions in production now.", self.production_versions)
        add(
            "production_evidence_complete_ratio",
            "Share of production versions with every required evidence key.",
            self.evidence_complete_share,
        )
        add("production_lineage_ratio", "Share of production versions with data fingerprint and git commit.", self.lineage_share)
        add("production_approved_ratio", "Share of production versions approved for production.", self.approved_share)
        add("break_glass_promotions", "Stage changes made with break-glass in the window.", self.break_glass_promotions)
        return out


def is_rollback(change: StageChange) -> bool:
    """A move to production that brings back an earlier version."""
    return change.to_stage is Stage.PRODUCTION and (
        change.from_stage is Stage.ARCHIVED or _ROLLBACK.search(change.reason) is not None
    )


def approved(approvals: list[Approval]) -> bool:
    """Each approver's latest decision counts (revoked ones do not); one rejection outweighs any approvals."""
    latest = {a.actor: a.decision for a in approvals if a.stage == Stage.PRODUCTION.value and a.revoked is None}
    return "approve" in latest.values() and "reject" not in latest.values()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def compute(
    store: Store,
    *,
    since: datetime,
    now: datetime | None = None,
    commit_time: Callable[[str], datetime | None] | None = None,
    required_evidence: tuple[str, ...] = REQUIRED_EVIDENCE,
    audit: AuditVerification | None = None,
) -> Kpis:
    """Read the store and work out every figure for the window ``since`` … ``now``.

    ``audit``: the audit chain's verification when the caller keeps one up to date (the worker verifies
    only new events); else the whole chain is verified here.
    """
    until = _utc(now) if now is not None else datetime.now(UTC)
    start = _utc(since)
    if start >= until:
        raise InvalidSpec(f"the window starts at {start.isoformat()}, not before its end {until.isoformat()}")

    def in_window(at: datetime | None) -> bool:
        return at is not None and start <= at <= until

    versions: dict[tuple[str, int], ModelVersion] = {(v.model, v.version): v for v in store.list_versions()}
    commits: dict[str, datetime | None] = {}

    def committed(sha: str) -> datetime | None:
        # One lookup per commit: several versions are often trained from the same one.
        if sha not in commits and commit_time is not None:
            found = commit_time(sha)
            commits[sha] = _utc(found) if found is not None else None
        return commits.get(sha)

    by_model: dict[str, int] = {}
    rollbacks = changes = failed = failed_rollouts = 0
    rollout_time: list[float] = []
    restores: list[tuple[str, datetime]] = []
    lead: list[float] = []
    commit_lead: list[float] = []
    for model in store.list_models():
        # Moves after ``until`` did not happen yet as far as this report is concerned.
        moves = [c for c in store.stage_history(model.name) if c.to_stage is Stage.PRODUCTION and c.at <= until]
        for index, move in enumerate(moves):
            if not in_window(move.at):
                continue
            by_model[model.name] = by_model.get(model.name, 0) + 1
            if is_rollback(move):
                rollbacks += 1
                restores.append((model.name, move.at))
                continue
            changes += 1
            following = moves[index + 1] if index + 1 < len(moves) else None
            if following is not None and is_rollback(following):
                failed += 1
            version = versions.get((move.model, move.version))
            if version is None:
                continue
            lead.append((move.at - version.registered_at).total_seconds())
            started = committed(version.git_commit) if version.git_commit else None
            if started is not None:
                commit_lead.append((move.at - started).total_seconds())
        for rollout in store.rollouts(model.name):
            if rollout.state in FAILED_ROLLOUT and rollout.finished_at is not None and in_window(rollout.finished_at):
                failed_rollouts += 1
                restores.append((model.name, rollout.finished_at))
            elif rollout.state == "promoted" and rollout.finished_at is not None and in_window(rollout.finished_at):
                rollout_time.append((rollout.finished_at - rollout.started_at).total_seconds())
    changes += failed_rollouts
    failed += failed_rollouts

    alerts = store.alerts()
    restore = []
    for model_name, at in restores:
        # The incident a restore ended began with the earliest alert on the model still open at that moment.
        began = [
            a.opened_at
            for a in alerts
            if a.model == model_name and a.opened_at <= at and (a.resolved_at is None or a.resolved_at >= at)
        ]
        if began:
            restore.append((at - min(began)).total_seconds())
    open_alerts = sum(1 for alert in alerts if alert.open)

    production = [v for v in versions.values() if v.stage is Stage.PRODUCTION]
    incomplete: list[str] = []
    no_lineage: list[str] = []
    unapproved: list[str] = []
    for version in production:
        evidence = store.evidence(version.model, version.version) or {}
        if any(evidence.get(key) is None for key in required_evidence):
            incomplete.append(version.subject)
        lineage = evidence.get("lineage") or {}
        fingerprint = version.data_fingerprint or lineage.get("data_fingerprint")
        commit = version.git_commit or lineage.get("git_commit")
        if not (fingerprint and commit):
            no_lineage.append(version.subject)
        if not approved(store.approvals(version.model, version.version, Stage.PRODUCTION.value)):
            unapproved.append(version.subject)

    # The store filters on the action and ``since`` (not every event of the window); the end is applied here.
    break_glass = sum(
        1
        for event in store.audit_events(since=start, action="version.stage_changed")
        if event.details.get("break_glass") is True and in_window(event.at)
    )
    verification = audit if audit is not None else store.verify_audit()
    deployments = sum(by_model.values())
    return Kpis(
        since=start,
        until=until,
        deployments=deployments,
        deployments_by_model=by_model,
        deployment_frequency_per_day=deployments / ((until - start).total_seconds() / 86400),
        rollbacks=rollbacks,
        lead_time=Durations.of(lead),
        commit_lead_time=Durations.of(commit_lead),
        changes=changes,
        failed_changes=failed,
        failed_rollouts=failed_rollouts,
        rollout_time=Durations.of(rollout_time),
        restore_time=Durations.of(restore),
        open_alerts=open_alerts,
        audit_chain_valid=verification.ok,
        audit_events=verification.events,
        audit_problem=verification.problem,
        production_versions=len(production),
        required_evidence=tuple(required_evidence),
        incomplete_evidence=tuple(sorted(incomplete)),
        missing_lineage=tuple(sorted(no_lineage)),
        unapproved=tuple(sorted(unapproved)),
        break_glass_promotions=break_glass,
    )


__all__ = ["REQUIRED_EVIDENCE", "Durations", "Kpis", "compute"]
