"""Rollouts: the progressive move of traffic from the champion to a challenger."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from shipyard.domain.errors import Conflict
from shipyard.domain.stages import Stage

ACTIVE = ("running", "paused")
STRATEGIES = ("canary", "shadow", "bluegreen")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rollout:
    id: int
    model: str
    version: int
    champion: int | None
    strategy: str
    steps: tuple[float, ...]  # challenger traffic share per step, in percent
    step_index: int
    interval_seconds: float
    checks: dict[str, Any]
    failure_limit: int
    failures: int
    state: str  # running | paused | promoted | rolled_back | aborted
    history: tuple[dict[str, Any], ...]
    started_by: str
    started_at: datetime
    step_started_at: datetime
    finished_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def weight(self) -> float:
        return self.steps[self.step_index] / 100.0

    @property
    def last_step(self) -> bool:
        return self.step_index >= len(self.steps) - 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started_at", "step_started_at", "finished_at"):
            data[key] = data[key].isoformat() if data[key] else None
        data["steps"] = list(self.steps)
        data["history"] = list(self.history)
        data["weight"] = self.weight
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    name: str
    passed: bool
    observed: Any
    threshold: Any
    # Latency checks: each version's p95 in milliseconds, so a factor comes with the times behind it.
    challenger_p95_ms: float | None = None
    champion_p95_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Analysis:
    """One judgement of a step: passed, failed, or not enough traffic yet (``passed`` is None)."""

    passed: bool | None
    checks: tuple[Check, ...]
    challenger_requests: int
    champion_requests: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "challenger_requests": self.challenger_requests,
            "champion_requests": self.champion_requests,
        }


def check_rollout_start(model: str, version: int, stage: Stage, *, active: tuple[str, int] | None, champion: int | None) -> None:
    """Refuse a rollout the state does not allow: another one active (its state and version), no champion to
    roll out from, the champion itself, or a version outside staging and archived. The store applies it when it
    starts one; ``allowed_actions`` asks it beforehand, so both say the same."""
    if active is not None:
        state, running = active
        raise Conflict(
            f"{model} already has a {state} rollout of version {running}",
            hint=f"Finish it first: `shipyard rollout abort {model}` or wait for it to end.",
        )
    if champion is None:
        raise Conflict(
            f"{model} has no champion to roll out from",
            hint=f"The first version goes straight to production: `shipyard promote {model} {version} --to production`.",
        )
    if champion == version:
        raise Conflict(f"{model}/{version} is already the champion")
    if stage not in (Stage.STAGING, Stage.ARCHIVED):
        raise Conflict(
            f"{model}/{version} is {stage.value}; a rollout starts from staging",
            hint=f"Promote it to staging first: `shipyard promote {model} {version} --to staging`.",
        )
