"""Legal holds, and the actions a retention pass plans and carries out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class LegalHold:
    """A version retention must never touch, until an admin lifts the hold."""

    model: str
    version: int
    reason: str
    actor: str
    at: datetime

    @property
    def subject(self) -> str:
        return f"{self.model}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "reason": self.reason,
            "actor": self.actor,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionAction:
    """One step of a retention pass: what it does, to what, why, and the bytes it frees.

    ``kind``: compact (many small prediction-log files of a day into one), drop_inputs (a day's raw
    inputs replaced by its daily profile), delete_partition (a day of log deleted), cold_artifacts
    (an archived version's files compressed into the cold location), delete_run (an unregistered
    run and its artifacts deleted for real).
    """

    kind: str
    subject: str  # model/date=YYYY-MM-DD, model/version or run:<id>
    rule: str  # the retention setting that asks for it, e.g. retention.predictions.drop_inputs_after
    reason: str
    bytes_freed: int
    model: str | None = None
    version: int | None = None
    day: str | None = None
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "rule": self.rule,
            "reason": self.reason,
            "bytes_freed": self.bytes_freed,
            "model": self.model,
            "version": self.version,
            "day": self.day,
            "run_id": self.run_id,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPlan:
    """Every action a pass would take, and what it leaves alone on purpose (held, champion, …)."""

    actions: tuple[RetentionAction, ...]
    kept: tuple[dict[str, Any], ...]  # {"subject", "why"}: versions protected from a rule that would apply

    @property
    def bytes_freed(self) -> int:
        return sum(a.bytes_freed for a in self.actions)

    def to_dict(self) -> dict[str, Any]:
        return {"actions": [a.to_dict() for a in self.actions], "kept": list(self.kept), "bytes_freed": self.bytes_freed}


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionOutcome:
    """What an apply did: the actions carried out (each audited) and those already done by an earlier pass."""

    done: tuple[RetentionAction, ...]
    failed: tuple[dict[str, Any], ...]  # {"subject", "error"}

    @property
    def bytes_freed(self) -> int:
        return sum(a.bytes_freed for a in self.done)

    def to_dict(self) -> dict[str, Any]:
        return {"done": [a.to_dict() for a in self.done], "failed": list(self.failed), "bytes_freed": self.bytes_freed}
