"""Promotion through the service: the store decides, MLflow mirrors it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.domain.errors import Conflict, InvalidSpec, NotFound
from shipyard.domain.stages import Stage
from shipyard.registry import Registry
from shipyard.service import Shipyard


def open_service(root: Path, actor: str = "rui", **env: str) -> Shipyard:
    return Shipyard.open(root, actor=actor, env=dict(env))


def approve(root: Path, version: int, actor: str = "vera") -> None:
    with open_service(root, actor=actor) as approver:
        approver.approve("churn", version, "production", comment="reviewed")


def test_promotions_are_mirrored_to_aliases_and_tags(trained_project: Path) -> None:
    with open_service(trained_project) as service:
        service.promote("churn", 1, "staging", reason="looks good")
        assert service.registry.aliases("churn") == {"staging": 1}
        approve(trained_project, 1)
        service.promote("churn", 1, Stage.PRODUCTION, reason="ship it")
        assert service.registry.aliases("churn") == {"production": 1, "champion": 1}
        service.promote("churn", 2, "staging", reason="retrained")
        approve(trained_project, 2)
        outcome = service.promote("churn", 2, "production", reason="better")
        assert outcome.mirrored and [v.version for v in outcome.promotion.archived] == [1]
        assert service.registry.aliases("churn") == {"production": 2, "champion": 2}
        assert service.registry.version_tags("churn", 1)["shipyard.stage"] == "archived"
        assert service.registry.version_tags("churn", 2)["shipyard.stage"] == "production"
        detail = service.describe("churn", 2, with_run=True)
        assert detail.aliases == ["champion", "production"]
        assert [h.to_stage for h in detail.history] == [Stage.CANDIDATE, Stage.STAGING, Stage.PRODUCTION]
        assert [g["stage"] for g in detail.gate_reports] == ["staging", "production"]
        assert all(g["passed"] for g in detail.gate_reports)
        assert [a.actor for a in detail.approvals] == ["vera"]
        assert detail.evidence is not None and detail.evidence["comparison"]["champion_version"] == 1
        assert detail.run is not None and detail.run["status"] == "FINISHED"


def test_plain_mlflow_client_loads_the_champion_by_alias(trained_project: Path) -> None:
    import mlflow

    with open_service(trained_project) as service:
        service.promote("churn", 2, "staging", reason="ok")
        approve(trained_project, 2)
        service.promote("churn", 2, "production", reason="ok")
        uri = service.settings.tracking_uri
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        champion = mlflow.pyfunc.load_model("models:/churn@production")
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
    assert champion.metadata.run_id == service.store.get_version("churn", 2).run_id


def test_reason_is_required(trained_project: Path) -> None:
    with open_service(trained_project) as service, pytest.raises(InvalidSpec, match="needs a reason"):
        service.promote("churn", 1, "staging", reason="  ")


def test_illegal_and_unknown_moves(trained_project: Path) -> None:
    with open_service(trained_project) as service:
        with pytest.raises(Conflict, match="cannot move from candidate to production"):
            service.promote("churn", 1, "production", reason="skip")
        with pytest.raises(NotFound, match="has no version 9"):
            service.promote("churn", 9, "staging", reason="x")
        with pytest.raises(InvalidSpec, match="unknown stage 'live'"):
            service.promote("churn", 1, "live", reason="x")


def test_mirror_failure_is_reported_and_reconcile_repairs_it(trained_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A registry that really cannot be reached: nothing listens on port 1.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with open_service(trained_project) as service:
        down = Registry("http://127.0.0.1:1", "http://127.0.0.1:1")
        broken = Shipyard(service.settings, store=service.store, registry=down)
        outcome = broken.promote("churn", 1, "staging", reason="while MLflow is down")
        assert not outcome.mirrored and "127.0.0.1:1" in (outcome.mirror_error or "")
        assert service.store.get_version("churn", 1).stage is Stage.STAGING  # the store is the truth
        assert service.registry.aliases("churn") == {}
        # Nothing needs MLflow to know the mirror is behind: the store says so, and `models list` warns.
        (behind,) = service.mirror_backlog("churn")
        assert behind.kind == "stages"
        listed = CliRunner().invoke(app, ["--project", str(trained_project), "models", "list"])
        assert "MLflow's aliases and stage tags of churn may be behind the store" in listed.stderr
        assert "shipyard models reconcile" in listed.stderr
        assert [r.model for r in service.reconcile()] == ["churn"]
        assert service.registry.aliases("churn") == {"staging": 1}
        assert service.registry.version_tags("churn", 1)["shipyard.stage"] == "staging"
        assert service.mirror_backlog("churn") == []
    listed = CliRunner().invoke(app, ["--project", str(trained_project), "models", "list"])
    assert "warning" not in listed.stderr


def test_reconcile_finds_the_orphan_a_crashed_registration_left(trained_project: Path) -> None:
    """MLflow registered the version, then the process died before the store recorded it."""
    with open_service(trained_project, actor="alice") as service:
        v1 = service.store.get_version("churn", 1)
        assert v1.run_id is not None
        service.store.begin_registration(actor="alice", model="churn", run_id=v1.run_id)
        number = service.registry.register_version("churn", source=v1.source, run_id=v1.run_id, description="", tags={})
        service.registry.client.set_registered_model_alias("churn", "production", str(number))  # a plain client's doing
        (pending,) = service.mirror_backlog("churn")
        assert pending.kind == "registration" and pending.run_id == v1.run_id
        listed = CliRunner().invoke(app, ["--project", str(trained_project), "models", "list"])
        assert f"a registration of run {v1.run_id} as a version of churn" in listed.stderr
    with open_service(trained_project, actor="rui") as service:
        (done,) = service.reconcile("churn", grace_seconds=0)
        assert done.orphans == (number,) and done.registrations_closed == (v1.run_id,)
        assert service.registry.version_tags("churn", number)["shipyard.stage"] == "orphaned"
        assert "production" not in service.registry.aliases("churn")  # no store version is in production
        assert service.mirror_backlog("churn") == []
        (marked,) = [e for e in service.audit_log("churn") if e.action == "mirror.orphan_marked"]
        assert marked.subject == f"churn/{number}" and marked.details["aliases_removed"] == ["production"]
        assert service.reconcile("churn")[0].orphans == ()  # found once, reported once
        with pytest.raises(NotFound):
            service.store.get_version("churn", number)  # reported, never adopted into the store


def test_actor_is_recorded_on_every_event(trained_project: Path) -> None:
    with open_service(trained_project, actor="zoe") as service:
        service.promote("churn", 1, "staging", reason="ok")
        events = service.audit_log("churn")
    assert [(e.action, e.actor) for e in events[-2:]] == [("gate.evaluated", "zoe"), ("version.stage_changed", "zoe")]
    assert {e.actor for e in events[:-2]} == {"alice"}


def test_unknown_model_in_project(trained_project: Path) -> None:
    with open_service(trained_project) as service:
        with pytest.raises(NotFound, match="model 'fraud' is not declared"):
            service.run_pipeline("fraud")
        with pytest.raises(NotFound, match="unknown model 'fraud'"):
            service.audit_log("fraud")
