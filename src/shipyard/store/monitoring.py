"""Monitor runs and alerts in the store: the part of ``Store`` the closed loop writes."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from shipyard.domain.errors import NotFound
from shipyard.domain.monitoring import Alert, MonitorRun
from shipyard.store.base import StoreBase, Tx
from shipyard.store.tables import AlertRow, ModelRow, MonitorRunRow


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalReading:
    """One alert rule's reading in a monitor run."""

    signal: str
    observed: float
    threshold: float
    fired: bool
    action: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedRun:
    run: MonitorRun
    opened: tuple[Alert, ...]
    ongoing: tuple[Alert, ...]
    resolved: tuple[Alert, ...]


def resolve_left_production(tx: Tx, model: str, version: int) -> list[Alert]:
    """Close the open alerts raised on a version that stops being the champion, in the caller's transaction.

    They judged that version; once it no longer serves, they say nothing about what does.
    """
    query = select(AlertRow).where(AlertRow.model_name == model, AlertRow.version == version, AlertRow.state == "open")
    resolved = []
    for row in tx.session.scalars(query.order_by(AlertRow.id)):
        row.state, row.resolved_at, row.resolution = "resolved", tx.now, "left_production"
        tx.audit(
            "alert.resolved",
            f"{model}/{version}",
            {
                "alert": row.id,
                "signal": row.signal,
                "reason": f"version {version} left production",
                "resolution": "left_production",
            },
        )
        resolved.append(row.to_entity())
    return resolved


class MonitoringRecords(StoreBase):
    """Mixed into ``Store``: monitor runs, and alerts deduplicated by (model, signal) while open."""

    def record_monitor_run(
        self,
        *,
        actor: str,
        model: str,
        version: int,
        window: tuple[datetime | None, datetime | None],
        rows: int,
        dataset_drift: bool,
        report: dict[str, Any],
        readings: list[SignalReading],
    ) -> RecordedRun:
        """Store the run and open, refresh or resolve one alert per signal, with their audit events, in one transaction."""
        opened: list[Alert] = []
        ongoing: list[Alert] = []
        resolved: list[Alert] = []
        with self.write(actor) as tx:
            run = MonitorRunRow(
                model_name=model,
                version=version,
                at=tx.now,
                window_start=window[0],
                window_end=window[1],
                rows=rows,
                dataset_drift=dataset_drift,
                report=report,
                actor=actor,
            )
            tx.session.add(run)
            tx.session.flush()
            subject = f"{model}/{version}"
            tx.audit("monitor.run", subject, {"monitor_run": run.id, "rows": rows, "dataset_drift": dataset_drift})
            for reading in readings:
                row = tx.session.scalars(
                    select(AlertRow).where(
                        AlertRow.model_name == model, AlertRow.signal == reading.signal, AlertRow.state == "open"
                    )
                ).one_or_none()
                if reading.fired and row is None:
                    row = AlertRow(
                        model_name=model,
                        version=version,
                        signal=reading.signal,
                        state="open",
                        observed=reading.observed,
                        threshold=reading.threshold,
                        action=reading.action,
                        action_state="skipped" if reading.action == "none" else "pending",
                        action_result={},
                        opened_at=tx.now,
                        last_seen_at=tx.now,
                        resolved_at=None,
                        monitor_run=run.id,
                        seen=1,
                    )
                    tx.session.add(row)
                    tx.session.flush()
                    details = {"alert": row.id, "signal": reading.signal, "observed": reading.observed}
                    tx.audit("alert.opened", subject, {**details, "threshold": reading.threshold, "action": reading.action})
                    opened.append(row.to_entity())
                elif reading.fired and row is not None:
                    row.observed = reading.observed
                    row.last_seen_at = tx.now
                    row.seen += 1
                    ongoing.append(row.to_entity())
                elif row is not None:
                    row.state, row.resolved_at, row.resolution = "resolved", tx.now, "cleared"
                    tx.audit(
                        "alert.resolved",
                        subject,
                        {
                            "alert": row.id,
                            "signal": reading.signal,
                            "observed": reading.observed,
                            "threshold": reading.threshold,
                            "resolution": "cleared",
                        },
                    )
                    resolved.append(row.to_entity())
            tx.session.flush()
            return RecordedRun(run=run.to_entity(), opened=tuple(opened), ongoing=tuple(ongoing), resolved=tuple(resolved))

    def record_alert_action(self, *, actor: str, alert_id: int, state: str, result: dict[str, Any]) -> Alert:
        with self.write(actor) as tx:
            row = tx.session.get(AlertRow, alert_id)
            if row is None:
                raise NotFound(f"no alert {alert_id}", hint="List alerts with `shipyard monitor alerts`.")
            row.action_state = state
            row.action_result = result
            tx.audit(f"alert.{row.action}", f"{row.model_name}/{row.version}", {"alert": row.id, "state": state, **result})
            tx.session.flush()
            return row.to_entity()

    def resolve_alert(self, *, actor: str, alert_id: int, reason: str) -> Alert:
        with self.write(actor) as tx:
            row = tx.session.get(AlertRow, alert_id)
            if row is None:
                raise NotFound(f"no alert {alert_id}", hint="List alerts with `shipyard monitor alerts`.")
            if row.state == "open":
                row.state, row.resolved_at, row.resolution = "resolved", tx.now, "manual"
                details = {"alert": row.id, "reason": reason, "resolution": "manual"}
                tx.audit("alert.resolved", f"{row.model_name}/{row.version}", details)
            tx.session.flush()
            return row.to_entity()

    def alerts(self, *, model: str | None = None, state: str | None = None, since: datetime | None = None) -> list[Alert]:
        with self.read() as session:
            query = select(AlertRow).order_by(AlertRow.id)
            if model is not None:
                query = query.where(AlertRow.model_name == model)
            if state is not None:
                query = query.where(AlertRow.state == state)
            if since is not None:
                query = query.where(AlertRow.opened_at >= since)
            return [row.to_entity() for row in session.scalars(query)]

    def monitor_runs(self, model: str, *, limit: int = 20) -> list[MonitorRun]:
        with self.read() as session:
            query = select(MonitorRunRow).where(MonitorRunRow.model_name == model).order_by(MonitorRunRow.id.desc()).limit(limit)
            return [row.to_entity() for row in session.scalars(query)]

    def latest_monitor_runs(
        self, models: Collection[str], *, known: Mapping[str, MonitorRun] | None = None
    ) -> dict[str, MonitorRun]:
        """Each of ``models``' latest monitor run (a model without one is left out).

        A run already in ``known`` is kept rather than read again, so when no run is new this is one small
        query (each model's latest run id): the gateway asks every reload interval.
        """
        known = known or {}
        # Per model, so each is one look-up in the index, however many runs the model has.
        latest_id = select(func.max(MonitorRunRow.id)).where(MonitorRunRow.model_name == ModelRow.name).scalar_subquery()
        with self.read() as session:
            found = session.execute(select(ModelRow.name, latest_id).where(ModelRow.name.in_(models)))
            latest: dict[str, int] = {name: run_id for name, run_id in found if run_id is not None}
            new = [run_id for name, run_id in latest.items() if name not in known or known[name].id != run_id]
            read: dict[str, MonitorRun] = {}
            if new:
                rows = session.scalars(select(MonitorRunRow).where(MonitorRunRow.id.in_(new)))
                read = {row.model_name: row.to_entity() for row in rows}
        return {name: read[name] if name in read else known[name] for name in latest}


__all__ = ["MonitoringRecords", "RecordedRun", "SignalReading", "resolve_left_production"]
