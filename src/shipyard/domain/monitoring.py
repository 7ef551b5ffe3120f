"""Monitoring: what a monitor run found, and the alerts it raised."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

SIGNALS = ("feature_drift_share", "prediction_drift", "metric_decay", "error_rate")
ACTIONS = ("retrain", "rollback", "webhook", "none")
# How an alert was resolved: the monitor saw the signal go away, its version left
# production (a rollback or a new champion), or someone closed it.
RESOLUTIONS = ("cleared", "left_production", "manual")


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorRun:
    id: int
    model: str
    version: int
    at: datetime
    window_start: datetime | None
    window_end: datetime | None
    rows: int
    dataset_drift: bool
    report: dict[str, Any]
    actor: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("at", "window_start", "window_end"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One signal over its threshold. At most one open alert per model and signal: that is the deduplication."""

    id: int
    model: str
    version: int
    signal: str
    state: str  # open | resolved
    observed: float
    threshold: float
    action: str
    action_state: str  # pending | done | failed | skipped
    action_result: dict[str, Any]
    opened_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    monitor_run: int
    seen: int  # monitor runs that saw the signal while this alert was open
    resolution: str | None = None  # one of RESOLUTIONS once resolved

    @property
    def open(self) -> bool:
        return self.state == "open"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("opened_at", "last_seen_at", "resolved_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data
