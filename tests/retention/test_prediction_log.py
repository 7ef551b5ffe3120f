"""Retention of the prediction log: plan, apply, idempotence, and a pass killed at every step then run again."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import PRINCIPALS, declare_principals
from factories import register
from retention.synthetic import LOG_RULES, set_retention, snapshot, write_log
from shipyard.predlog import FEATURE_PREFIX, read_log
from shipyard.retention.journal import Journal
from shipyard.service import Shipyard
from shipyard.store.repository import Store

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def open_project(project: Path) -> Shipyard:
    return Shipyard.open(project, actor="rui", env={})


def test_plan_names_every_action_and_apply_carries_it_out_once(project: Path) -> None:
    set_retention(project, LOG_RULES)
    log_root = project / ".shipyard" / "predictions"
    ids = write_log(log_root, end=NOW, days=100)  # a bit over three months
    before = snapshot(log_root)
    with open_project(project) as service:
        plan = service.retention_plan(now=NOW)
        assert snapshot(log_root) == before  # planning changes nothing
        kinds: dict[str, list[str]] = {}
        for action in plan.actions:
            kinds.setdefault(action.kind, []).append(action.day or "")
        # Days that ended 90+ days ago are deleted, 30-90 lose their inputs (compacted with it), 1-30 are compacted;
        # yesterday, which ended twelve hours ago, is left alone.
        assert len(kinds["delete_partition"]) == 10 and len(kinds["drop_inputs"]) == 60 and len(kinds["compact"]) == 29
        assert max(kinds["delete_partition"]) < min(kinds["drop_inputs"]) and max(kinds["drop_inputs"]) < min(kinds["compact"])
        assert all(a.bytes_freed > 0 for a in plan.actions) and plan.bytes_freed == sum(a.bytes_freed for a in plan.actions)

        size_before = sum(p.stat().st_size for p in log_root.rglob("*") if p.is_file())
        outcome = service.retention_apply(now=NOW)
        assert not outcome.failed and [a.subject for a in outcome.done] == [a.subject for a in plan.actions]
        size_after = sum(p.stat().st_size for p in log_root.rglob("*") if p.is_file())
        assert size_after < size_before

        after = snapshot(log_root)["partitions"]
        deleted = {f"model=churn/date={day}" for day in kinds["delete_partition"]}
        assert set(after) == set(before["partitions"]) - deleted
        for name, (files, columns, kept_ids) in after.items():
            assert kept_ids == before["partitions"][name][2]  # nothing lost that the plan did not name
            parts = [f for f in files if f.startswith("part-")]
            assert len(parts) == (6 if name.endswith((NOW - timedelta(days=1)).date().isoformat()) else 1)
            dropped = name.removeprefix("model=churn/date=") in kinds["drop_inputs"]
            assert any(c.startswith(FEATURE_PREFIX) for c in columns) is not dropped
            assert ("profile-v1.json.gz" in files and "profile-v2.json.gz" in files) is dropped

        events = [e for e in service.audit_log() if e.action.startswith("retention.")]
        assert sorted((e.action, e.subject) for e in events) == sorted((f"retention.{a.kind}", a.subject) for a in plan.actions)
        assert service.audit_verify().ok

        # Run again: nothing left to do, nothing recorded.
        assert service.retention_plan(now=NOW).actions == ()
        again = service.retention_apply(now=NOW)
        assert again.done == () and len(service.audit_log()) == len(service.audit_log())
        assert [e for e in service.audit_log() if e.action.startswith("retention.")] == events

        # Trace still reaches the version of a prediction whose inputs were dropped; the rows still read.
        register(service.store, 1)
        register(service.store, 2)
        old = next(i for i in ids if i.startswith("d60-"))
        traced = service.trace(old)
        assert traced["answers"][0]["version"]["version"] in (1, 2)
        assert traced["answers"][0]["prediction"]["inputs"] == {}
        kept_rows = sum(len(v[2]) for v in after.values())
        assert read_log(log_root, model="churn").num_rows == kept_rows


def test_the_daily_profile_keeps_the_day_s_distribution(project: Path) -> None:
    from shipyard.monitoring.profile import load_profile

    set_retention(project, LOG_RULES)
    log_root = project / ".shipyard" / "predictions"
    write_log(log_root, end=NOW, days=40)
    day = (NOW - timedelta(days=35)).date().isoformat()
    frame = read_log(log_root, model="churn").to_pandas()
    raw = frame[(frame["received_at"].dt.date.astype(str) == day) & (frame["version"] == 2)]
    with open_project(project) as service:
        service.retention_apply(now=NOW)
    profile = load_profile(log_root / "model=churn" / f"date={day}" / "profile-v2.json.gz")
    tenure = profile.features["tenure"]
    assert profile.rows == len(raw) and tenure.count == len(raw)
    assert tenure.mean == pytest.approx(raw["f_tenure"].mean())
    assert profile.score is not None and profile.score.mean == pytest.approx(raw["score"].mean())


class Killed(BaseException):
    """Stands in for SIGKILL at one exact step (a kill of a real process is tested below)."""


def _counting(target: Callable[..., Any], calls: list[int], kill_at: int | None) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if kill_at is not None and len(calls) == kill_at:
            raise Killed
        return target(*args, **kwargs)

    return wrapper


def _steps(monkeypatch: pytest.MonkeyPatch, kill_at: int | None) -> list[int]:
    """Every rename, folder removal, audit write and journal entry closed counts as a step; the ``kill_at``-th dies."""
    calls: list[int] = []
    monkeypatch.setattr(os, "replace", _counting(os.replace, calls, kill_at))
    monkeypatch.setattr(shutil, "rmtree", _counting(shutil.rmtree, calls, kill_at))
    monkeypatch.setattr(Store, "record_retention", _counting(Store.record_retention, calls, kill_at))
    monkeypatch.setattr(Journal, "done", _counting(Journal.done, calls, kill_at))  # audited, not yet marked done
    return calls


def test_a_pass_killed_at_any_step_and_run_again_ends_the_same(project: Path, tmp_path: Path) -> None:
    set_retention(project, LOG_RULES)
    pristine = tmp_path / "pristine"
    write_log(pristine, end=NOW, days=95, files_per_day=2, rows=3)
    # Only the days around each threshold: one day of each action is enough to meet every step.
    for folder in pristine.glob("model=*/date=*"):
        age = (NOW.date() - datetime.fromisoformat(folder.name.removeprefix("date=")).date()).days
        if age not in (2, 3, 32, 33, 92, 93):
            shutil.rmtree(folder)
    log_root = project / ".shipyard" / "predictions"
    shutil.copytree(pristine, log_root)
    with open_project(project) as service:
        planned = service.retention_plan(now=NOW)
        with pytest.MonkeyPatch.context() as patch:
            calls = _steps(patch, None)
            service.retention_apply(now=NOW)
            steps = len(calls)
        expected = snapshot(log_root)
        reference_events = sorted((e.action, e.subject) for e in service.audit_log() if e.action.startswith("retention."))
    assert len(planned.actions) == 6 and steps > 12

    for kill_at in range(1, steps + 1):
        shutil.rmtree(project / ".shipyard" / "predictions")
        shutil.copytree(pristine, log_root)
        (project / ".shipyard" / "retention" / "journal.jsonl").unlink(missing_ok=True)
        with open_project(project) as service:
            seen = len(service.audit_log())
            with pytest.MonkeyPatch.context() as patch:
                _steps(patch, kill_at)
                with pytest.raises(Killed):
                    service.retention_apply(now=NOW)
            service.retention_apply(now=NOW)
            assert snapshot(log_root) == expected, f"killed at step {kill_at}"
            events = sorted((e.action, e.subject) for e in service.audit_log()[seen:] if e.action.startswith("retention."))
            assert events == reference_events, f"killed at step {kill_at}: each action audited exactly once"


def test_a_real_process_killed_mid_apply_then_run_again_ends_as_an_uninterrupted_pass(project: Path, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    set_retention(project, LOG_RULES)
    now = datetime.now(UTC)
    log_root = project / ".shipyard" / "predictions"
    write_log(log_root, end=now, days=100, files_per_day=2, rows=4)
    reference = tmp_path / "reference"
    shutil.copytree(project, reference)
    with Shipyard.open(reference, actor="rui", env={}) as service:
        service.retention_apply()
        expected = snapshot(reference / ".shipyard" / "predictions")
        expected_events = sorted((e.action, e.subject) for e in service.audit_log() if e.action.startswith("retention."))

    journal = project / ".shipyard" / "retention" / "journal.jsonl"
    command = [sys.executable, "-m", "shipyard", "--project", str(project), "--actor", "rui", "retention", "apply"]
    child = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if journal.is_file() and journal.read_text().count("\n") >= 40:  # twenty-odd actions in
            break
        time.sleep(0.01)
    assert child.poll() is None, "the pass ended before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert snapshot(log_root) != expected  # it really stopped half way

    with Shipyard.open(project, actor="rui", env={}) as service:
        service.retention_apply()
        assert snapshot(log_root) == expected
        events = sorted((e.action, e.subject) for e in service.audit_log() if e.action.startswith("retention."))
        assert events == expected_events
        assert service.audit_verify().ok


def test_the_worker_applies_retention_every_interval_as_its_principal(project: Path) -> None:
    from shipyard.worker import Worker

    declare_principals(project, {**PRINCIPALS, "shipyard.monitor": ["scientist", "deployer"]})
    set_retention(project, {**LOG_RULES, "interval": "1h"})
    log_root = project / ".shipyard" / "predictions"
    write_log(log_root, end=datetime.now(UTC), days=5, files_per_day=2, rows=2)
    clock = [0.0]
    with Shipyard.open(project, actor="rui", env={}) as service:
        worker = Worker(service, holder="w", clock=lambda: clock[0])
        assert "retention" in worker.tick().done
        compacted = [e for e in service.audit_log() if e.action == "retention.compact"]
        # Days two to five ago; yesterday ended less than a day ago.
        assert len(compacted) == 4 and {e.actor for e in compacted} == {service.settings.spec.worker.actor}
        clock[0] = 1800.0
        assert "retention" not in worker.tick().done  # not due for another half hour
        clock[0] = 3601.0
        assert "retention" in worker.tick().done
        worker.release()
