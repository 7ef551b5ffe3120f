"""Narrow terminals: identifiers (who, what, which version) print whole on one line; free text wraps instead."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import PRINCIPALS, declare_principals
from shipyard.domain.entities import AuditEvent
from shipyard.service import Shipyard

SHIPYARD = str(Path(sys.executable).with_name("shipyard"))
WIDTHS = [80, 60]
SCIENTIST, REVIEWER, DEPLOYER = "dana.scientist", "rui.reviewer", "ops.deployer"
LONG_REASON = "holdout metrics reviewed with the retention team, who asked for a look at every contract type first"


@pytest.fixture(scope="module")
def project(trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Versions 1 and 2 by alice; version 3 by dana.scientist, approved by rui.reviewer, in production; two open alerts."""
    from shipyard.store.monitoring import SignalReading

    root = tmp_path_factory.mktemp("narrow") / "project"
    shutil.copytree(trained_template, root)
    declare_principals(root, {**PRINCIPALS, SCIENTIST: ["scientist"], REVIEWER: ["approver"], DEPLOYER: ["deployer"]})
    with Shipyard.open(root, actor=SCIENTIST, env={}) as scientist:
        version = scientist.run_pipeline("churn").version.version
        scientist.promote("churn", version, "staging", reason=LONG_REASON)
    with Shipyard.open(root, actor=REVIEWER, env={}) as reviewer:
        reviewer.approve("churn", version, "production", comment="evidence, model card and fairness by senior_citizen reviewed")
    with Shipyard.open(root, actor=DEPLOYER, env={}) as deployer:
        deployer.promote("churn", version, "production", reason="first churn model for the retention team")
        deployer.store.record_monitor_run(
            actor="shipyard.monitor",
            model="churn",
            version=version,
            window=(None, None),
            rows=800,
            dataset_drift=True,
            report={"rows": 800},
            readings=[
                SignalReading(signal="feature_drift_share", observed=0.4567, threshold=0.25, fired=True, action="retrain"),
                SignalReading(signal="prediction_drift", observed=0.3141, threshold=0.2, fired=True, action="webhook"),
            ],
        )
    yield root


def shipyard(root: Path, width: int, *args: str, code: int = 0) -> list[str]:
    env = {**os.environ, "COLUMNS": str(width), "LINES": "50"}
    done = subprocess.run(
        [SHIPYARD, "--project", str(root), "--actor", "alice", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout.splitlines()


def row_with(lines: list[str], *identifiers: str) -> str:
    """The one line that holds every identifier whole, or a failure showing the output."""
    found = [line for line in lines if all(identifier in line.split() for identifier in identifiers)]
    assert found, f"no line holds {identifiers} whole:\n" + "\n".join(lines)
    return found[0]


def events(root: Path) -> list[AuditEvent]:
    with Shipyard.open(root, actor="alice", env={}) as service:
        return service.audit_log()


@pytest.mark.parametrize("width", WIDTHS)
def test_models_list_keeps_names_stages_and_people_whole(project: Path, width: int) -> None:
    lines = shipyard(project, width, "models", "list")
    row_with(lines, "churn", "1", "candidate", "alice")
    row_with(lines, "churn", "2", "candidate", "alice")
    row_with(lines, "churn", "3", "production", SCIENTIST)


@pytest.mark.parametrize("width", WIDTHS)
def test_audit_log_keeps_who_did_what_to_which_version_whole(project: Path, width: int) -> None:
    lines = shipyard(project, width, "audit", "log")
    logged = events(project)
    assert {e.actor for e in logged} >= {"alice", SCIENTIST, REVIEWER, DEPLOYER, "shipyard.monitor"}
    for event in logged:
        row_with(lines, str(event.seq), event.action, event.subject, event.actor)
    # The reason is free text: it wraps, and every word of it is still there.
    assert {word.strip(",") for word in LONG_REASON.split()} <= {word.strip(",:") for line in lines for word in line.split()}


@pytest.mark.parametrize("width", WIDTHS)
def test_models_show_keeps_the_version_its_people_and_stages_whole(project: Path, width: int) -> None:
    lines = shipyard(project, width, "models", "show", "churn", "3")
    row_with(lines, "churn", "version", "3:", "production")
    row_with(lines, "by", SCIENTIST)
    row_with(lines, "-", "candidate", SCIENTIST)
    row_with(lines, "candidate", "staging", SCIENTIST)
    row_with(lines, "staging", "production", DEPLOYER)


@pytest.mark.parametrize("width", WIDTHS)
def test_gate_check_keeps_the_version_and_each_rule_name_whole(project: Path, width: int) -> None:
    lines = shipyard(project, width, "gate", "check", "churn", "2", "--to", "production", code=1)
    assert any("churn/2:" in line.split() for line in lines), "\n".join(lines)
    words = {word for line in lines for word in line.split()}
    for rule_word in ("compare_champion", "demographic_parity_difference", "senior_citizen", "equalized_odds_difference"):
        assert rule_word in words, "\n".join(lines)
    row_with(lines, "approvals", "failed")


@pytest.mark.parametrize("width", WIDTHS)
def test_monitor_alerts_keep_model_signal_state_and_action_whole(project: Path, width: int) -> None:
    lines = shipyard(project, width, "monitor", "alerts")
    row_with(lines, "churn/3", "feature_drift_share", "open", "retrain")
    row_with(lines, "churn/3", "prediction_drift", "open", "webhook")


def test_tables_fit_80_columns_when_they_can(project: Path) -> None:
    """Wrapping free text is what keeps a table inside a usual terminal; it does not spill for nothing."""
    for args, code in (
        (["models", "list"], 0),
        (["audit", "log"], 0),
        (["gate", "check", "churn", "2", "--to", "production"], 1),
    ):
        lines = shipyard(project, 80, *args, code=code)
        assert max(len(line.rstrip()) for line in lines) <= 80, "\n".join(lines)
