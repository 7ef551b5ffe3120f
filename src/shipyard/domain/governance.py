"""Gate reports, rule results and approvals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # a blocking rule did not hold
    WARNED = "warned"  # a warn-only rule did not hold
    ERROR = "error"  # the rule could not be evaluated; blocks like a failure


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleResult:
    index: int
    kind: str
    name: str
    severity: str
    outcome: Outcome
    observed: Any
    expected: Any
    message: str | None = None

    @property
    def blocking(self) -> bool:
        return self.severity == "block" and self.outcome in (Outcome.FAILED, Outcome.ERROR)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "name": self.name,
            "severity": self.severity,
            "outcome": self.outcome.value,
            "observed": self.observed,
            "expected": self.expected,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class GateReport:
    model: str
    version: int
    stage: str
    results: tuple[RuleResult, ...]
    evaluated_at: datetime
    actor: str
    break_glass: bool = False
    champion: int | None = None  # the production version the evidence compared against

    @property
    def passed(self) -> bool:
        return not self.blocking

    @property
    def blocking(self) -> list[RuleResult]:
        return [r for r in self.results if r.blocking]

    @property
    def warnings(self) -> list[RuleResult]:
        return [r for r in self.results if r.outcome is Outcome.WARNED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "stage": self.stage,
            "passed": self.passed,
            "break_glass": self.break_glass,
            "champion": self.champion,
            "actor": self.actor,
            "evaluated_at": self.evaluated_at.isoformat(),
            "results": [r.to_dict() for r in self.results],
        }

    def summary(self) -> str:
        lines = [
            f"{r.name}: observed {r.observed}, expected {r.expected}" + (f" ({r.message})" if r.message else "")
            for r in self.blocking
        ]
        return "; ".join(lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval:
    model: str
    version: int
    stage: str
    actor: str
    roles: tuple[str, ...]
    decision: str  # approve | reject
    comment: str
    at: datetime
    evidence_sha256: str | None = None  # the evidence the sign-off was given on
    revoked: str | None = None  # why it no longer counts (e.g. the version was rolled back)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "stage": self.stage,
            "actor": self.actor,
            "roles": list(self.roles),
            "decision": self.decision,
            "comment": self.comment,
            "at": self.at.isoformat(),
            "evidence_sha256": self.evidence_sha256,
            "revoked": self.revoked,
        }
