"""`shipyard demo` end to end, in a real process, on the embedded default."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

SHIPYARD = str(Path(sys.executable).with_name("shipyard"))


@pytest.mark.parametrize("mode", ["embedded", "team"])
def test_demo_runs_the_loop_and_leaves_an_explorable_project(tmp_path: Path, mode: str) -> None:
    """The same story both ways; in team mode every person acts through a real `shipyard server` with a token."""
    root = tmp_path / "demo"
    team = ["--team"] if mode == "team" else []
    done = subprocess.run([SHIPYARD, "demo", "--dir", str(root), *team], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    out = " ".join(done.stdout.split())
    assert "churn v1 candidate → staging" in out
    assert "churn v1 staging → production" in out
    assert "refused: churn/2 cannot move from candidate to production" in out
    assert "Gate staging for churn/1: passed" in out
    assert "blocked: ops.deployer → production: churn/1 may not enter production: 1 blocking rule failed" in out
    assert "approvals (approver): observed 0; expected ≥ 1 approval by approver" in out
    assert "refused: dana.scientist may not approve churn/1 for production" in out
    assert "rui.reviewer (approver) approved churn v1 for production" in out
    assert "canary v3" in out and "next → 100% of traffic" in out
    assert "rollout of v3: promoted" in out and "rollout of v4: rolled back" in out
    # The closed loop: drift in live traffic, one alert, a governed retrain, its rollout, trace and KPIs.
    assert "alert 1 opened: feature_drift_share" in out and "→ retrain" in out
    assert "retrain by shipyard.monitor on" in out and "churn v5, staging gate passed" in out
    assert "still open, seen 2×: no second retrain" in out
    assert "rollout of v5: promoted" in out
    assert re.search(r"shipyard trace \w+: churn v5 ← run", out)
    assert "KPIs (`shipyard kpis`): 3 deployments" in out
    assert "@production → v5" in out
    assert re.search(r"Shipped churn v5 rests on: \w+ \d+%, \w+ \d+%", out)  # the top features of the shipped version
    assert "Shipped churn v5 costs: " in out and "ms at 1 / 64 / 1024 rows" in out
    assert "audit verify: chain intact" in out
    answered = re.search(r"Clients: (\d+)/(\d+) requests answered 200 through every rollout", out)
    assert answered is not None and answered.group(1) == answered.group(2) and int(answered.group(1)) > 100
    assert "not answered 200" not in out and "stopped early" not in out
    assert "Traceback" not in done.stderr
    assert "Downloading artifacts" not in done.stdout + done.stderr  # MLflow's progress bar stays out of the story
    if mode == "team":
        assert "Team mode: `shipyard server` on http://127.0.0.1:" in out and "gave 4 principals their own tokens" in out
        assert "register (on the server)" in out  # the client trains; the server adopts and measures
        assert re.search(r"\d+ signed checkpoints, the last vouching for events 1–\d+", out)

    listing = subprocess.run([SHIPYARD, "-C", str(root), "models", "list", "--json"], capture_output=True, text=True, check=True)
    stages = {v["version"]: v["stage"] for v in json.loads(listing.stdout)["models"][0]["versions"]}
    assert stages == {1: "archived", 2: "rejected", 3: "archived", 4: "staging", 5: "production"}
    fingerprints = {v["data_fingerprint"] for v in json.loads(listing.stdout)["models"][0]["versions"]}
    assert len(fingerprints) == 3  # new data arrived before v3, and v5 learned from labelled traffic

    if mode == "team":
        return
    again = subprocess.run([SHIPYARD, "demo", "--dir", str(root)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 4 and "--force" in again.stderr
