"""deploy.shared_path: two gateway processes, each from its own copy of the project (as two pods are), record into
one shared location, and one rollout is judged on the traffic of both.

The location is a folder both processes see (as a shared volume is), or a prefix in an S3-compatible object store
(moto's server), reached through the standard AWS environment variables both processes inherit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from serving.harness import Load, ServeProcess, wait_for
from shipyard.location import Location
from shipyard.service import Shipyard

MIN_REQUESTS = 100


def configure(root: Path, shared: str) -> None:
    config = root / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["deploy"] = {"shared_path": shared}
    data["models"]["churn"]["rollout"] = {"interval": 1.0, "failure_limit": 2, "checks": {"min_requests": MIN_REQUESTS}}
    data["principals"]["shipyard.monitor"] = ["deployer"]  # the worker inside gateway A drives the rollout
    config.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("where", ["folder", "s3"])
def test_one_rollout_is_judged_on_the_traffic_of_two_replicas(
    trained_project: Path, tmp_path: Path, request: pytest.FixtureRequest, where: str
) -> None:
    shared = str(tmp_path / "shared") if where == "folder" else str(request.getfixturevalue("s3_shared"))
    first = trained_project
    configure(first, shared)
    second = tmp_path / "replica-b"
    shutil.copytree(first, second)  # its own folder, model files and MLflow store, as a second pod has
    env = {"SHIPYARD_STORE_URL": f"sqlite:///{first / '.shipyard' / 'shipyard.db'}"}  # the one shared store
    for version, to_production in ((1, True), (2, False)):  # v2 is approved once v1 is the champion it is compared with
        with Shipyard.open(first, actor="alice", env=env) as service:
            service.promote("churn", version, "staging", reason="ready")
        with Shipyard.open(first, actor="vera", env=env) as service:
            service.approve("churn", version, "production", comment="ok")
        if to_production:
            with Shipyard.open(first, actor="rui", env=env) as service:
                service.promote("churn", version, "production", reason="ship")

    # Gateway A runs the worker (the rollout controller) but gets too little traffic to judge a step by itself.
    with (
        ServeProcess(first, env=env) as a,
        ServeProcess(second, env=env, args=("--no-worker",)) as b,
        Load(a.url, clients=1, max_requests=MIN_REQUESTS // 4) as little,
        Load(b.url) as load,
    ):
        wait_for(lambda: len(load.statuses) > 20)
        with Shipyard.open(first, actor="rui", env=env) as service:
            service.start_rollout("churn", 2, steps=[50, 100])

        def state() -> str:
            with Shipyard.open(first, actor="rui", env=env) as service:
                rollout, _ = service.rollout_status("churn", judge=False)
            return rollout.state if rollout is not None else "none"

        wait_for(lambda: state() == "promoted", timeout=120, every=0.5)
    assert len(little.statuses) <= MIN_REQUESTS // 4 and set(load.statuses) == {200}
    # Both replicas recorded into the shared location, none into its own.
    with Shipyard.open(first, actor="rui", env=env) as service:
        recorded = service.settings.predictions_dir
        assert str(recorded) == f"{shared}/predictions"
        assert (recorded / "model=churn").size() > 0
        rollout, _ = service.rollout_status("churn", judge=False)
    if where == "folder":
        assert list(Path(shared, "predictions").rglob("part-*.parquet"))
    for root in (first, second):
        assert not Location.of(root / ".shipyard" / "predictions").size()
    assert rollout is not None
    judged = [e for e in rollout.history if e["event"] == "next"]
    assert judged and judged[0]["analysis"]["challenger_requests"] >= MIN_REQUESTS
    # A monitor run reads the shared location too: the new champion's rows from both replicas.
    with Shipyard.open(first, actor="rui", env=env) as service:
        (outcome,) = service.monitor("churn", act=False)
    assert outcome.version == 2 and outcome.run.rows >= MIN_REQUESTS > len(little.statuses)
