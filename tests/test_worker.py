"""The worker: automated actions, one worker at a time on a shared store, figures for /metrics."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import yaml

from conftest import PRINCIPALS
from shipyard.scaffold import commit_all
from shipyard.service import Shipyard
from shipyard.worker import Worker

ROBOT = "shipyard.monitor"


def on_store(project: Path, store_url: str, *, lease_seconds: float = 30.0) -> dict[str, str]:
    """The project pointed at ``store_url`` (migrated), with the worker's principal declared."""
    config = project / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["principals"] = {**PRINCIPALS, ROBOT: ["scientist", "deployer"]}
    data["worker"] = {"actor": ROBOT, "lease_seconds": lease_seconds}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    commit_all(project, "Declare the worker")
    env = {"SHIPYARD_STORE_URL": store_url}
    with Shipyard.open(project, actor="ada", env=env) as admin:
        admin.upgrade_store()
    return env


def test_one_worker_acts_at_a_time_and_another_takes_over(project: Path, store_url: str) -> None:
    env = on_store(project, store_url, lease_seconds=3.0)
    now = [0.0]  # the workers' own clock, which paces their lease attempts (one a second here)

    def after(seconds: float) -> None:
        now[0] += seconds

    with Shipyard.open(project, actor="ada", env=env) as a, Shipyard.open(project, actor="ada", env=env) as b:
        first = Worker(a, holder="first", clock=lambda: now[0])
        second = Worker(b, holder="second", clock=lambda: now[0])
        assert first.tick().held and not second.tick().held
        after(1.5)
        assert first.tick().held and not second.tick().held  # renewing is not losing it
        first.release()
        assert not second.tick().held  # between attempts, a waiting worker writes nothing
        after(1.5)
        assert second.tick().held and not first.tick().held  # released: the next attempt takes it
        time.sleep(3.5)  # the holder goes silent (a crash): its lease lapses in the store's time
        after(1.5)
        assert first.tick().held and not second.tick().held
        holders = [(e.action, e.details.get("holder")) for e in a.audit_log() if e.action.startswith("lease.")]
    assert holders[0] == ("lease.acquired", "first") and ("lease.acquired", "second") in holders
    assert [h for h in holders if h == ("lease.acquired", "first")] == [("lease.acquired", "first")] * 2


def test_the_worker_acts_as_its_principal_and_a_refusal_is_audited(project: Path, tmp_path: Path) -> None:
    """The rollout controller is an automated action: it needs its principal's roles like a person would."""
    env = on_store(project, f"sqlite:///{tmp_path / 'store.db'}")
    config = project / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["principals"][ROBOT] = ["viewer"]
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    with Shipyard.open(project, actor="ada", env=env) as service:
        worker = Worker(service, controller_seconds=0.0)
        done = worker.tick()
        assert done.held and done.failed == ["rollout controller pass"]
        assert worker.tick().failed == []  # not tried again, so not audited again every tick
        (denied,) = [e for e in service.audit_log() if e.action.endswith(".denied")]
    assert (denied.action, denied.actor, denied.details["asked"]) == ("promote.denied", ROBOT, "drive rollouts")


@pytest.fixture
def deployed(trained_project: Path) -> Path:
    """churn/1 in production, with the worker's principal declared."""
    on_store(trained_project, f"sqlite:///{trained_project / '.shipyard' / 'shipyard.db'}")
    with Shipyard.open(trained_project, actor="alice", env={}) as service:
        service.promote("churn", 1, "staging", reason="ready")
    with Shipyard.open(trained_project, actor="vera", env={}) as service:
        service.approve("churn", 1, "production", comment="ok")
    with Shipyard.open(trained_project, actor="rui", env={}) as service:
        service.promote("churn", 1, "production", reason="ship")
    return trained_project


def test_figures_for_metrics_come_from_an_incrementally_verified_chain(deployed: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    with Shipyard.open(deployed, actor="ada", env={}) as service:
        worker = Worker(service)
        registry = CollectorRegistry()
        registry.register(worker.figures)
        worker.refresh_figures()
        first = generate_latest(registry).decode()
        events = len(service.audit_log())
        assert "shipyard_kpi_audit_chain_valid 1.0" in first and f"shipyard_kpi_audit_events_total {float(events)}" in first
        assert 'shipyard_kpi_deployments{model="churn"} 1.0' in first
        with Shipyard.open(deployed, actor="vera", env={}) as approver:
            approver.approve("churn", 2, "production", comment="one more event")
        worker.refresh_figures()
        second = generate_latest(registry).decode()
        assert f"shipyard_kpi_audit_events_total {float(len(service.audit_log()))}" in second
        assert "# TYPE shipyard_kpi_audit_events_total counter" in second and "quantile=" not in second
        # An edit among the events verified since the last refresh is caught by the next one.
        with service.store.engine.begin() as conn:
            from sqlalchemy import text

            conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = (SELECT max(seq) FROM audit_events)"))
        with Shipyard.open(deployed, actor="vera", env={}) as approver:
            approver.approve("churn", 2, "staging", comment="after the edit")
        worker.refresh_figures()
        assert "shipyard_kpi_audit_chain_valid 0.0" in generate_latest(registry).decode()


def test_each_rollout_decision_the_worker_applies_is_one_line_of_its_log(
    deployed: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No gateway runs, so the challenger gets no traffic: each step starves, fails, and the second failure rolls back."""
    with Shipyard.open(deployed, actor="alice", env={}) as service:
        service.promote("churn", 2, "staging", reason="ready")
    with Shipyard.open(deployed, actor="vera", env={}) as service:
        service.approve("churn", 2, "production", comment="ok")
    with Shipyard.open(deployed, actor="rui", env={}) as service:
        rollout = service.start_rollout("churn", 2, steps=[50, 100], interval=0.01, checks={"max_wait": 0.01})
    caplog.set_level(logging.INFO, logger="shipyard.worker")
    with Shipyard.open(deployed, actor="ada", env={}) as service:
        worker = Worker(service)
        for _ in range(2):
            time.sleep(0.05)
            assert [d.action for d in worker.drive_rollouts()] == ["fail"]
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "shipyard.worker" and "rollout" in r.getMessage()]
    assert [level for level, _ in lines] == [logging.INFO, logging.WARNING]
    first, second = (message for _, message in lines)
    assert all("\n" not in message for _, message in lines)
    assert first.startswith(f"rollout {rollout.id} of churn/2 (champion v1): fail → running at 50%; analysis failed ")
    assert "challenger requests (0 vs ≥ 100" in first and first.endswith("failed analyses 1/2")
    assert second.startswith(f"rollout {rollout.id} of churn/2 (champion v1): fail → rolled back;")


def test_a_retrain_from_the_gateways_worker_never_imports_training_code_into_the_gateway(trained_project: Path) -> None:
    """`shipyard serve` hosts the worker; a drift alert's retrain must still run `train.py` in another process."""
    import os

    from serving.harness import ServeProcess, wait_for
    from test_loop import configure, ship, traffic

    root = trained_project
    configure(root, [{"signal": "feature_drift_share", "threshold": 0.25, "action": "retrain"}])
    config = root / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["models"]["churn"]["monitoring"]["interval"] = 1
    data["worker"] = {"actor": ROBOT}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    marker = root / "imported-by.txt"
    train = root / "train.py"
    # The user's module says which process imported it.
    train.write_text(f"import os\nopen({str(marker)!r}, 'a').write(f'{{os.getpid()}}\\n')\n" + train.read_text())
    commit_all(root, "Monitor every second; train.py names its importer")
    ship(root, 1)
    traffic(root, 1, rows=400, shifted=True)
    with Shipyard.open(root, actor="alice", env={}) as service:
        service.ingest_labels(root / "labels-5.csv", model="churn")
    with ServeProcess(root) as server:
        assert server.process is not None
        gateway = server.process.pid

        def retrained() -> bool:
            with Shipyard.open(root, actor="val", env={}) as service:
                return len(service.versions("churn")) == 3

        wait_for(retrained, timeout=300, every=2.0)
    importers = {int(line) for line in marker.read_text().split()}
    assert importers and gateway not in importers and os.getpid() not in importers
    with Shipyard.open(root, actor="val", env={}) as service:
        third = service.version("churn", 3)
        (retrain,) = [e for e in service.audit_log("churn") if e.action == "alert.retrain"]
    assert third.registered_by == "shipyard.monitor" and retrain.details["state"] == "done"
