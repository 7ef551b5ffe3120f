"""User text is data: reasons, comments, names and messages print as typed, never as Rich markup."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.cli.render import print_monitor, print_rollout, print_trace
from shipyard.domain.monitoring import Alert, MonitorRun
from shipyard.domain.rollouts import Analysis, Check, Rollout
from shipyard.service import MonitorOutcome

# A closing tag with nothing open makes Rich raise; the styled part would silently lose its brackets.
MARKUP = "[/b] and [bold red]x[/]"
WIDE = {"COLUMNS": "250"}  # wide enough that no table wraps the text under test


def cli(root: Path, actor: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["--project", str(root), "--actor", actor, *args], env=WIDE)


def test_a_promotion_reason_with_markup_is_printed_as_typed(trained_project: Path) -> None:
    reason = f"{MARKUP} :warning:"  # an emoji code stays text too
    promoted = cli(trained_project, "alice", "promote", "churn", "1", "--to", "staging", "--reason", reason)
    assert promoted.exit_code == 0, promoted.output
    assert "candidate → staging" in promoted.stdout
    log = cli(trained_project, "alice", "audit", "log")
    assert log.exit_code == 0, log.output
    assert f"candidate → staging: {reason}" in log.stdout
    shown = cli(trained_project, "alice", "models", "show", "churn", "1")
    assert shown.exit_code == 0, shown.output
    assert reason in shown.stdout


def test_an_approval_comment_with_markup_is_printed_as_typed(trained_project: Path) -> None:
    assert cli(trained_project, "alice", "promote", "churn", "1", "--to", "staging", "--reason", "ready").exit_code == 0
    approved = cli(trained_project, "vera", "approve", "churn", "1", "--to", "production", "--comment", MARKUP)
    assert approved.exit_code == 0, approved.output
    assert "vera (approver) approved churn/1 for production" in approved.stdout
    log = cli(trained_project, "alice", "audit", "log")
    assert log.exit_code == 0, log.output
    assert f"comment={MARKUP}" in log.stdout


@pytest.mark.parametrize(
    ("actor", "args", "code", "expected"),
    [
        ("alice", ["models", "show", MARKUP], 3, f"unknown model '{MARKUP}'"),
        ("alice", ["trace", MARKUP], 3, MARKUP),
        (MARKUP, ["promote", "churn", "1", "--to", "staging", "--reason", "r"], 5, MARKUP),
    ],
)
def test_error_messages_print_user_text_as_typed(
    trained_project: Path, actor: str, args: list[str], code: int, expected: str
) -> None:
    result = cli(trained_project, actor, *args)
    assert result.exit_code == code, result.output
    assert expected in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


def test_policy_names_and_messages_with_markup_are_printed_as_typed(trained_project: Path) -> None:
    policy = trained_project / "policies" / "churn.yaml"
    text = policy.read_text()
    text = text.replace("not worth a staging slot.", f"not worth a staging slot {MARKUP}")
    text = text.replace("name: trained from committed code", "name: '[b]committed[/b] code'")
    policy.write_text(text)
    staging = cli(trained_project, "alice", "gate", "check", "churn", "1", "--to", "staging")
    assert staging.exit_code == 0, staging.output
    assert f"not worth a staging slot {MARKUP}" in staging.stdout
    production = cli(trained_project, "alice", "gate", "check", "churn", "1", "--to", "production")
    assert production.exit_code == 1, production.output
    assert "[b]committed[/b] code" in production.stdout


def recorded(render: Any, *args: Any) -> str:
    console = Console(record=True, width=250, color_system=None)
    render(console, *args)
    return console.export_text()


NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_rollout_rendering_prints_user_text_as_typed() -> None:
    rollout = Rollout(
        id=1,
        model="[b]churn",
        version=2,
        champion=1,
        strategy="canary",
        steps=(50.0, 100.0),
        step_index=0,
        interval_seconds=2.0,
        checks={},
        failure_limit=1,
        failures=0,
        state="running",
        history=({"at": NOW.isoformat(), "event": f"started {MARKUP}", "weight": 50},),
        started_by="[i]rui",
        started_at=NOW,
        step_started_at=NOW,
    )
    analysis = Analysis(
        passed=False,
        checks=(Check(name="[red]latency", passed=False, observed="[/]12", threshold="[u]10"),),
        challenger_requests=5,
        champion_requests=5,
    )
    out = recorded(print_rollout, rollout, analysis)
    for text in ("[b]churn/2", f"started {MARKUP}", "[red]latency", "[/]12", "[u]10"):
        assert text in out


def test_monitor_rendering_prints_user_text_as_typed() -> None:
    report = {
        "rows": 10,
        "error_rate": 0.0,
        "drift": {"features": {"[b]plan": {"method": "psi", "observed": 0.3, "thresholds": 0.2, "drifted": True}}},
        "notes": [f"note {MARKUP}"],
    }
    run = MonitorRun(
        id=1,
        model="[b]churn",
        version=1,
        at=NOW,
        window_start=None,
        window_end=None,
        rows=10,
        dataset_drift=True,
        report=report,
        actor="m",
    )
    alert = Alert(
        id=3,
        model="[b]churn",
        version=1,
        signal="feature_drift_share",
        state="open",
        observed=0.5,
        threshold=0.3,
        action="webhook",
        action_state="failed",
        action_result={},
        opened_at=NOW,
        last_seen_at=NOW,
        resolved_at=None,
        monitor_run=1,
        seen=1,
    )
    actions = [{"alert": 3, "action": "webhook", "state": "failed", "error": f"refused {MARKUP}"}]
    outcome = MonitorOutcome(model="[b]churn", version=1, run=run, opened=(alert,), ongoing=(), resolved=(), actions=actions)
    out = recorded(print_monitor, outcome)
    for text in ("[b]churn/1", "[b]plan", f"note {MARKUP}", f"error=refused {MARKUP}"):
        assert text in out


def test_trace_rendering_prints_user_text_as_typed() -> None:
    found = {
        "answers": [
            {
                "prediction": {
                    "request_id": "[b]r1",
                    "received_at": NOW.isoformat(),
                    "routing": "champion",
                    "status": 200,
                    "prediction": 1,
                    "score": 0.9,
                    "latency_ms": 3.0,
                },
                "version": {
                    "model": "[b]churn",
                    "version": 1,
                    "stage": "production",
                    "registered_by": "[i]alice",
                    "registered_at": NOW.isoformat(),
                },
                "training_run": "abc",
                "data": {"sources": ["file:///[b]data.parquet"], "fingerprint": "f" * 64},
                "code": {"git_commit": "c" * 40, "clean": True},
                "gates": [{"stage": "production", "passed": True, "break_glass": False, "at": NOW.isoformat()}],
                "approvals": [{"decision": "approve", "stage": "production", "actor": "[u]vera", "at": NOW.isoformat()}],
                "promotions": [{"actor": "[i]rui", "at": NOW.isoformat(), "reason": MARKUP}],
                "rollouts": [{"id": 1, "strategy": "canary", "state": "promoted", "started_by": "[i]rui"}],
            }
        ]
    }
    out = recorded(print_trace, found)
    for text in ("request [b]r1", "[b]churn/1", "[i]alice", "file:///[b]data.parquet", "[u]vera", MARKUP, "started by [i]rui"):
        assert text in out
