"""`shipyard rollout status` shows the times behind each latency factor."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from shipyard.cli.render import print_rollout
from shipyard.domain.rollouts import Analysis, Check, Rollout

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def rollout(**checks: Any) -> Rollout:
    return Rollout(
        id=4,
        model="churn",
        version=3,
        champion=2,
        strategy="canary",
        steps=(25.0, 100.0),
        step_index=0,
        interval_seconds=30.0,
        checks={"max_latency_factor": 3.0, **checks},
        failure_limit=2,
        failures=1,
        state="running",
        history=({"at": NOW.isoformat(), "event": "started", "weight": 25.0},),
        started_by="rui",
        started_at=NOW,
        step_started_at=NOW,
    )


def shown(rollout: Rollout, analysis: Analysis) -> str:
    console = Console(record=True, width=200, color_system=None)
    print_rollout(console, rollout, analysis)
    return console.export_text()


def test_status_shows_both_versions_p95_beside_the_factor() -> None:
    analysis = Analysis(
        passed=False,
        checks=(
            Check(name="error rate increase", passed=True, observed=0.0, threshold="≤ 0.02"),
            Check(
                name="p95 model time factor",
                passed=False,
                observed=43.333,
                threshold="≤ 3.0× or under 1 ms slower",
                challenger_p95_ms=15.6,
                champion_p95_ms=0.36,
            ),
        ),
        challenger_requests=120,
        champion_requests=400,
    )
    out = shown(rollout(), analysis)
    assert "p95 challenger / champion" in out
    [row] = [line for line in out.splitlines() if "p95 model time factor" in line]
    assert "43.333" in row and "15.6 / 0.36 ms" in row
    [other] = [line for line in out.splitlines() if "error rate increase" in line]
    assert " ms" not in other  # checks without times leave those columns empty
    assert "absolute limit" not in out


def test_status_says_when_an_absolute_limit_judges_latency() -> None:
    analysis = Analysis(
        passed=True,
        checks=(
            Check(
                name="p95 latency",
                passed=True,
                observed=9.0,
                threshold="challenger p95 ≤ 25 ms (max_latency_ms)",
                challenger_p95_ms=18.0,
                champion_p95_ms=2.0,
            ),
        ),
        challenger_requests=120,
        champion_requests=400,
    )
    out = shown(rollout(max_latency_ms=25.0), analysis)
    assert "challenger p95 ≤ 25 ms" in out and "18 / 2 ms" in out


def test_a_waiting_step_has_no_times_column() -> None:
    waiting = Analysis(
        passed=None,
        checks=(Check(name="challenger requests", passed=False, observed=3, threshold="≥ 50"),),
        challenger_requests=3,
        champion_requests=10,
    )
    out = shown(rollout(), waiting)
    assert "waiting for traffic" in out and "p95" not in out
