"""Retention of versions and runs: legal holds and champions untouched, archived files cold and back on demand,
stray runs deleted for real only in Shipyard's own experiments, and the refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factories import register
from retention.synthetic import LOG_RULES, set_retention, snapshot, write_log
from shipyard.cli import app
from shipyard.domain.errors import BackendUnavailable, InvalidSpec, PermissionDenied
from shipyard.domain.stages import Stage
from shipyard.registry.cleanup import run_exists
from shipyard.registry.tracking import local_path
from shipyard.retention.passes import protected
from shipyard.service import Shipyard
from shipyard.store.repository import Store

LATER = datetime.now(UTC) + timedelta(days=40)
RULES = {
    "artifacts": [{"name": "old-candidates", "stages": ["candidate"], "after": "30d"}],
    "runs": {"delete_unregistered_after": "30d"},
}


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_held_version_is_untouched_others_go_cold_and_come_back(trained_project: Path) -> None:
    set_retention(trained_project, RULES)
    with Shipyard.open(trained_project, actor="ada", env={}) as admin:
        admin.add_hold("churn", 1, reason="litigation 2026-114")
        registry = admin.registry
        ours = registry.experiment_id(admin.settings.experiment)
        stray = registry.start_run(ours, run_name="abandoned", tags={})
        registry.log_text(stray, "x" * 5000, "notes.txt")
        elsewhere = (trained_project / "elsewhere").as_uri()
        foreign_experiment = str(registry.client.create_experiment("someone-else", artifact_location=elsewhere))
        foreign = registry.start_run(foreign_experiment, run_name="theirs", tags={})
        registry.log_text(foreign, "y" * 5000, "notes.txt")
        stray_files = local_path(registry.client.get_run(stray).info.artifact_uri)
        assert stray_files is not None and stray_files.is_dir()
        v1, v2 = admin.version("churn", 1), admin.version("churn", 2)
        held_folder, cold_folder = local_path(registry.located(v1.source)), local_path(registry.located(v2.source))
        assert held_folder is not None and cold_folder is not None
        held_before = files_of(held_folder)
        cold_before = files_of(cold_folder)

        plan = admin.retention_plan(now=LATER)
        planned = {(a.kind, a.subject) for a in plan.actions}
        assert planned == {("cold_artifacts", "churn/2"), ("delete_run", f"run:{stray}")}  # registered runs stay
        assert [(k["subject"], k["why"]) for k in plan.kept] == [("churn/1", "under legal hold (litigation 2026-114)")]
        assert all(a.bytes_freed > 0 for a in plan.actions)

        outcome = admin.retention_apply(now=LATER)
        assert {(a.kind, a.subject) for a in outcome.done} == planned and not outcome.failed
        assert files_of(held_folder) == held_before  # the held version: untouched
        assert not cold_folder.exists()
        archive = registry.cold_archive(v2.source)
        assert archive is not None and archive.is_file() and archive.is_relative_to(trained_project / ".shipyard" / "cold")
        assert not run_exists(registry, stray) and not stray_files.exists()
        assert run_exists(registry, foreign)  # an experiment Shipyard did not create: never touched
        assert admin.retention_plan(now=LATER).actions == ()  # idempotent
        audited = {(e.action, e.subject) for e in admin.audit_log() if e.action.startswith("retention.")}
        assert audited == {("retention.cold_artifacts", "churn/2"), ("retention.delete_run", f"run:{stray}")}

        # On demand: loading the version brings its files back, and they are the ones registered.
        loaded = registry.load_version(v2)
        assert loaded.model is not None and files_of(cold_folder) == cold_before


def test_holds_are_for_admins_and_a_refusal_is_audited(trained_project: Path) -> None:
    with Shipyard.open(trained_project, actor="rui", env={}) as deployer:
        with pytest.raises(PermissionDenied, match="admin"):
            deployer.add_hold("churn", 1, reason="mine")
        denied = deployer.audit_log()[-1]
        assert (denied.action, denied.actor, denied.subject) == ("hold.denied", "rui", "churn/1")
        assert deployer.holds() == []


def test_champion_previous_champion_rollout_and_holds_are_protected(store: Store) -> None:
    for number in (1, 2, 3, 4):
        register(store, number)
    for number in (1, 2):
        store.transition(actor="rui", model="churn", version=number, to=Stage.STAGING, reason="t")
        store.transition(actor="rui", model="churn", version=number, to=Stage.PRODUCTION, reason="t")
    store.add_hold(actor="ada", model="churn", version=4, reason="audit")
    assert protected(store) == {
        ("churn", 2): "the champion",
        ("churn", 1): "the previous champion (the rollback target)",
        ("churn", 4): "under legal hold (audit)",
    }


def run_cli(project: Path, *args: str) -> object:
    return CliRunner().invoke(app, ["--project", str(project), "--actor", "ada", *args], catch_exceptions=False)


def test_a_rule_on_serving_versions_is_refused_at_load_naming_it(project: Path) -> None:
    set_retention(project, {"artifacts": [{"name": "shrink-everything", "stages": ["archived", "production"], "after": "1d"}]})
    result = run_cli(project, "retention", "plan")
    assert result.exit_code != 0 and "Traceback" not in result.output  # type: ignore[attr-defined]
    assert "shrink-everything" in result.stderr and "production" in result.stderr  # type: ignore[attr-defined]


def test_a_rule_naming_a_held_version_is_refused_naming_it(project: Path) -> None:
    set_retention(project, {"artifacts": [{"name": "case-files", "stages": ["archived"], "after": "1d",
                                           "model": "churn", "versions": [1, 2]}]})  # fmt: skip
    with Shipyard.open(project, actor="ada", env={}) as admin:
        register(admin.store, 1)
        register(admin.store, 2)
        admin.add_hold("churn", 2, reason="court order")
        with pytest.raises(InvalidSpec, match=r"rule 'case-files' would move the files of churn/2, which is under legal hold"):
            admin.retention_plan()
        with pytest.raises(InvalidSpec, match="case-files"):
            admin.retention_apply()


def test_an_unwritable_cold_location_fails_apply_before_anything_is_deleted(trained_project: Path) -> None:
    (trained_project / "not-a-folder").write_text("a file where the cold location's parent should be")
    set_retention(trained_project, {**RULES, **LOG_RULES, "cold_location": "not-a-folder/cold"})
    log_root = trained_project / ".shipyard" / "predictions"
    write_log(log_root, end=LATER, days=100, files_per_day=1, rows=2)
    before = snapshot(log_root)
    with Shipyard.open(trained_project, actor="ada", env={}) as admin:
        folder = local_path(admin.registry.located(admin.version("churn", 2).source))
        assert admin.retention_plan(now=LATER).actions  # plenty to do
        with pytest.raises(BackendUnavailable, match=r"cannot be written.*nothing was changed"):
            admin.retention_apply(now=LATER)
        assert snapshot(log_root) == before and folder is not None and folder.is_dir()
        assert not [e for e in admin.audit_log() if e.action.startswith("retention.")]


def test_a_drift_view_reads_the_daily_profiles_once_raw_inputs_are_dropped(trained_project: Path) -> None:
    import numpy as np

    from shipyard.monitoring.profile import CategoricalProfile, NumericProfile
    from shipyard.predlog import PredictionLog

    set_retention(trained_project, LOG_RULES)
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with Shipyard.open(trained_project, actor="ada", env={}) as admin:
        reference = admin.reference_profile(admin.version("churn", 1))
        numeric = next(n for n, f in reference.features.items() if isinstance(f, NumericProfile))
        category = next(n for n, f in reference.features.items() if isinstance(f, CategoricalProfile))
        choices = list(reference.features[category].categories)  # type: ignore[union-attr]
        rng = np.random.default_rng(1)
        with PredictionLog(trained_project / ".shipyard" / "predictions") as log:
            for days_ago in range(60, 34, -1):
                at = (midnight - timedelta(days=days_ago, hours=-6)).timestamp()
                n = 30
                log.append(model="churn", version=1, request_ids=[f"r{days_ago}-{i}" for i in range(n)],
                           received_at=[at] * n, routing=["champion"] * n,
                           features={numeric: rng.integers(0, 40, n).astype(float), category: rng.choice(choices, n)},
                           predictions=[0] * n, scores=rng.random(n), latency_ms=[1.0] * n, status=[200] * n)  # fmt: skip
        window = (midnight - timedelta(days=55), midnight - timedelta(days=40, seconds=1))
        admin.store.record_monitor_run(actor="ada", model="churn", version=1, window=window, rows=450,
                                       dataset_drift=False, report={}, readings=[])  # fmt: skip
        before = [admin.drift_view("churn", name) for name in (numeric, category, None)]
        assert all(v.live_rows == 15 * 30 for v in before)
        admin.retention_apply(now=now)
        after = [admin.drift_view("churn", name) for name in (numeric, category, None)]
    for raw, kept in zip(before, after, strict=True):
        assert kept.live_rows == raw.live_rows
        assert [(b.label, b.live_count) for b in kept.bins] == [(b.label, b.live_count) for b in raw.bins]


def test_moving_files_to_cold_killed_at_any_step_ends_moved_and_audited_once(trained_project: Path) -> None:
    import shutil

    from retention.test_prediction_log import Killed, _steps

    set_retention(trained_project, {"artifacts": [{"name": "old-candidates", "stages": ["candidate"], "after": "30d"}]})
    with Shipyard.open(trained_project, actor="ada", env={}) as admin:
        admin.add_hold("churn", 1, reason="keep one")
        source = admin.version("churn", 2).source
        folder = local_path(admin.registry.located(source))
        archive = admin.registry.cold_archive(source)
        assert folder is not None and archive is not None
        original = files_of(folder)
        saved = trained_project / "saved-model"
        shutil.copytree(folder, saved)
        with pytest.MonkeyPatch.context() as patch:
            calls = _steps(patch, None)
            admin.retention_apply(now=LATER)
            steps = len(calls)
        assert steps >= 4
        for kill_at in range(1, steps + 1):
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(saved, folder)
            shutil.rmtree(trained_project / ".shipyard" / "cold")
            (trained_project / ".shipyard" / "retention" / "journal.jsonl").unlink(missing_ok=True)
            seen = len(admin.audit_log())
            with pytest.MonkeyPatch.context() as patch:
                _steps(patch, kill_at)
                with pytest.raises(Killed):
                    admin.retention_apply(now=LATER)
            admin.retention_apply(now=LATER)
            assert not folder.exists() and archive.is_file(), f"killed at step {kill_at}"
            assert not list(folder.parent.glob(f".{folder.name}.*")), f"killed at step {kill_at}: leftovers"
            moved = [e for e in admin.audit_log()[seen:] if e.action == "retention.cold_artifacts"]
            assert [e.subject for e in moved] == ["churn/2"], f"killed at step {kill_at}"
        admin.registry.load_version(admin.version("churn", 2))  # and back, intact
        assert files_of(folder) == original


def test_a_delete_rule_removes_a_rejected_version_s_files_for_good(trained_project: Path) -> None:
    set_retention(trained_project, {"artifacts": [{"name": "purge-rejected", "stages": ["rejected"], "after": "30d",
                                                   "action": "delete"}]})  # fmt: skip
    with Shipyard.open(trained_project, actor="ada", env={}) as admin:
        admin.store.transition(actor="ada", model="churn", version=2, to=Stage.REJECTED, reason="worse")
        v1, v2 = admin.version("churn", 1), admin.version("churn", 2)
        kept, gone = local_path(admin.registry.located(v1.source)), local_path(admin.registry.located(v2.source))
        assert kept is not None and gone is not None
        plan = admin.retention_plan(now=LATER)
        assert [(a.kind, a.subject, a.rule) for a in plan.actions] == [
            ("delete_artifacts", "churn/2", "retention.artifacts.purge-rejected")
        ]
        admin.retention_apply(now=LATER)
        assert not gone.exists() and kept.is_dir()
        with pytest.raises(Exception, match="no model at"):
            admin.registry.load_version(v2)
