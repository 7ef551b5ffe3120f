"""The cost side on the arrests example (the churn example's is tested beside it): `costs` reads its prediction log,
retention compacts, thins and deletes that log by age, and later sends a stale candidate's files cold, leaving the
champion and a version under legal hold alone. The example's explanations and footprint are judged by its staging
gate (tests/test_governance.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import make_project
from retention.synthetic import LOG_RULES, set_retention, snapshot, write_log
from shipyard.domain.stages import Stage
from shipyard.registry.tracking import local_path
from shipyard.service import Shipyard

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # the log's last day is the day before
LATER = datetime.now(UTC) + timedelta(days=40)  # the stale candidate was registered more than 30 days before
RULES = {**LOG_RULES, "artifacts": [{"name": "old-candidates", "stages": ["candidate"], "after": "30d"}]}
DAYS, FILES, ROWS = 100, 3, 8  # two versions' traffic each day: 4,800 rows in 600 model calls of 1 ms


def arrests_rows(rng: np.random.Generator, rows: int) -> dict[str, Any]:
    return {
        "colour": rng.choice(["Black", "White"], rows),
        "age": rng.integers(12, 66, rows),
        "sex": rng.choice(["Male", "Female"], rows),
        "employed": rng.choice(["Yes", "No"], rows),
        "citizen": rng.choice(["Yes", "No"], rows),
        "checks": rng.integers(0, 7, rows),
    }


def test_the_arrests_log_is_costed_and_retained_and_a_stale_candidate_goes_cold(tmp_path: Path) -> None:
    root = make_project(tmp_path / "arrests", example="arrests")
    set_retention(root, RULES)
    with Shipyard.open(root, actor="alice", env={}) as service:
        assert [service.run_pipeline("arrests").version.version for _ in range(3)] == [1, 2, 3]
    log_root = root / ".shipyard" / "predictions"
    write_log(log_root, end=NOW, days=DAYS, files_per_day=FILES, rows=ROWS, model="arrests", features=arrests_rows)

    with Shipyard.open(root, actor="ada", env={}) as admin:
        for stage in (Stage.STAGING, Stage.PRODUCTION):  # the champion (its gates are tested elsewhere)
            admin.store.transition(actor="ada", model="arrests", version=1, to=stage, reason="champion")
        admin.add_hold("arrests", 2, reason="appeal 2026-7")
        folders = {v: local_path(admin.registry.located(admin.version("arrests", v).source)) for v in (1, 2, 3)}
        assert all(folder is not None and folder.is_dir() for folder in folders.values())
        contents = {v: sorted(p.read_bytes() for p in folder.rglob("*") if p.is_file()) for v, folder in folders.items()}

        (costs,) = admin.costs("400d").models
        assert costs.model == "arrests" and costs.predictions == DAYS * FILES * 2 * ROWS
        assert costs.cpu_seconds == pytest.approx(DAYS * FILES * 2 * 0.001)  # once per call, not once per row
        assert costs.log_bytes > 0 and costs.artifact_bytes > 0

        # The log, by age: 10 days deleted, 60 thinned to their profiles, 29 compacted; the versions are too young.
        plan = admin.retention_plan(now=NOW)
        kinds: dict[str, int] = {}
        for action in plan.actions:
            kinds[action.kind] = kinds.get(action.kind, 0) + 1
            assert action.model == "arrests" and action.subject.startswith("arrests/date=") and action.bytes_freed > 0
        assert kinds == {"delete_partition": 10, "drop_inputs": 60, "compact": 29}
        done = admin.retention_apply(now=NOW)
        assert not done.failed and len(done.done) == len(plan.actions)
        kept = snapshot(log_root)["partitions"]
        parts = {name.rsplit("=", 1)[1]: len([f for f in files if f.startswith("part-")]) for name, (files, _, _) in kept.items()}
        yesterday = (NOW - timedelta(days=1)).date().isoformat()  # ended twelve hours before: not compacted yet
        assert len(parts) == DAYS - 10 and parts.pop(yesterday) == FILES * 2 and set(parts.values()) == {1}
        assert admin.costs("400d").models[0].predictions == (DAYS - 10) * FILES * 2 * ROWS  # what the log still holds

        # Forty days on, the candidate nobody shipped goes cold; the champion and the held version stay as they are.
        later = admin.retention_plan(now=LATER)
        cold = [a for a in later.actions if a.kind == "cold_artifacts"]
        assert [a.subject for a in cold] == ["arrests/3"]
        assert ("arrests/2", "under legal hold (appeal 2026-7)") in [(k["subject"], k["why"]) for k in later.kept]
        assert not [a for a in later.actions if a.subject in ("arrests/1", "arrests/2")]
        assert not admin.retention_apply(now=LATER).failed
        for version in (1, 2):
            folder = folders[version]
            assert folder is not None
            assert sorted(p.read_bytes() for p in folder.rglob("*") if p.is_file()) == contents[version]
        assert folders[3] is not None and not folders[3].exists()
        assert admin.retention_plan(now=LATER).actions == ()  # idempotent
        assert admin.registry.load_version(admin.version("arrests", 3)).model is not None  # back on demand
        assert sorted(p.read_bytes() for p in folders[3].rglob("*") if p.is_file()) == contents[3]
        assert [a.subject for a in admin.retention_plan(now=LATER).actions] == ["arrests/3"]  # and cold again next pass
        assert admin.audit_verify().ok
