"""Replaying the audit log against the state tables finds rows written around Shipyard, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from factories import forge, register
from shipyard.domain.governance import Approval
from shipyard.domain.stages import Stage
from shipyard.store.repository import Store


def sql(store: Store, statement: str, **params: object) -> None:
    forge(store, statement, **params)


def approval(version: int, actor: str = "vera", decision: str = "approve") -> Approval:
    return Approval(
        model="churn",
        version=version,
        stage="production",
        actor=actor,
        roles=("approver",),
        decision=decision,
        comment="reviewed",
        at=datetime.now(UTC),
        evidence_sha256="ee" * 32,
    )


def start(store: Store, version: int, strategy: str = "canary") -> int:
    rollout = store.start_rollout(
        actor="rui",
        model="churn",
        version=version,
        strategy=strategy,
        steps=[5.0, 25.0, 100.0],
        interval_seconds=30.0,
        checks={},
        failure_limit=2,
        gate=None,
    )
    return rollout.id


@pytest.fixture
def busy(store: Store) -> Store:
    """Every writer the replay reads after: stages, approvals and a revocation, deployments, rollouts, tokens, keys."""
    for version in (1, 2, 3, 4):
        register(store, version)
    store.transition(actor="bob", model="churn", version=1, to=Stage.STAGING, reason="ok")
    store.record_approval(approval(1))
    store.record_approval(approval(1, actor="walt", decision="reject"))
    store.transition(actor="rui", model="churn", version=1, to=Stage.PRODUCTION, reason="ok")
    store.revoke_approvals(actor="rui", model="churn", version=1, stage="production", reason="rolled back once")
    for version in (2, 3):
        store.transition(actor="bob", model="churn", version=version, to=Stage.STAGING, reason="ok")
    start(store, 2)
    store.advance_rollout(actor="shipyard.monitor", model="churn", action="next")
    store.advance_rollout(actor="rui", model="churn", action="pause")
    store.advance_rollout(actor="rui", model="churn", action="resume")
    store.advance_rollout(actor="shipyard.monitor", model="churn", action="wait")
    store.advance_rollout(actor="shipyard.monitor", model="churn", action="promote")
    start(store, 3, strategy="bluegreen")
    store.advance_rollout(actor="shipyard.monitor", model="churn", action="fail")
    store.advance_rollout(actor="shipyard.monitor", model="churn", action="fail")  # the limit: rolled back
    store.set_deployment(actor="rui", model="churn", challenger=3, mode="shadow", weight=0.0, routing_key="customer_id")
    store.add_token(actor="ada", name="gateway", token_sha256="11" * 32)
    first = store.add_audit_key(actor="ada", key_id="a" * 16, public_key="0a" * 32)
    store.add_audit_key(actor="ada", key_id="b" * 16, public_key="0b" * 32, retire=first.key_id)
    return store


def test_what_shipyard_wrote_is_all_explained(busy: Store) -> None:
    assert busy.verify_audit().ok
    assert busy.unexplained_state() == []
    assert [r.state for r in busy.rollouts("churn")] == ["promoted", "rolled_back"]


def test_an_approval_inserted_with_sql_is_named(busy: Store) -> None:
    sql(
        busy,
        "INSERT INTO approvals (model_name, version, stage, actor, roles, decision, comment, at, evidence_sha256) "
        "VALUES ('churn', 3, 'production', 'mallory', '[\"approver\"]', 'approve', 'lgtm', :at, :digest)",
        at=datetime.now(UTC),
        digest="ee" * 32,
    )
    row = max(a for a in _approval_ids(busy))
    assert busy.verify_audit().ok  # no event was touched: the chain cannot see it
    assert busy.unexplained_state() == [f"approval of churn/3 for production by mallory (row {row}) has no audit event"]


def test_no_gate_counts_an_approval_without_its_event(busy: Store) -> None:
    busy.record_approval(approval(3, actor="walt"))
    sql(
        busy,
        "INSERT INTO approvals (model_name, version, stage, actor, roles, decision, comment, at, evidence_sha256) "
        "VALUES ('churn', 3, 'production', 'mallory', '[\"approver\"]', 'approve', 'lgtm', :at, :digest)",
        at=datetime.now(UTC),
        digest="ee" * 32,
    )
    walt, mallory = busy.approvals("churn", 3, "production")
    assert walt.actor == "walt" and walt.revoked is None
    assert mallory.actor == "mallory" and mallory.revoked is not None
    assert "no audit event records it" in mallory.revoked


def test_an_edited_approval_no_longer_matches_its_event(busy: Store) -> None:
    busy.record_approval(approval(3, actor="walt"))
    sql(busy, "UPDATE approvals SET roles = '[\"approver\", \"admin\"]' WHERE actor = 'walt' AND version = 3")
    [found] = busy.unexplained_state()
    assert found.startswith("approval of churn/3 for production by walt") and found.endswith("has no audit event")
    [walt] = busy.approvals("churn", 3)
    assert walt.revoked is not None


def test_a_revocation_cleared_with_sql_is_named_and_still_holds(busy: Store) -> None:
    sql(busy, "UPDATE approvals SET revoked_at = NULL, revoked_reason = NULL, revoked_by = NULL WHERE actor = 'vera'")
    [found] = busy.unexplained_state()
    assert "approval of churn/1 for production by vera" in found and "was revoked by event" in found
    assert "no longer says so" in found
    [vera] = [a for a in busy.approvals("churn", 1) if a.actor == "vera"]
    assert vera.revoked is not None and vera.revoked.startswith("rolled back once (event ")


def test_a_stage_set_with_sql_is_named(busy: Store) -> None:
    sql(busy, "UPDATE model_versions SET stage = 'staging' WHERE version = 4")
    [found] = busy.unexplained_state()
    assert found.startswith("version churn/4 (row ") and "is staging but the audit log last put it in candidate" in found


def test_a_version_inserted_with_sql_is_named(busy: Store) -> None:
    sql(
        busy,
        "INSERT INTO model_versions (model_name, version, stage, source, metrics, registered_by, registered_at, updated_at) "
        "VALUES ('churn', 9, 'staging', 's', '{}', 'mallory', :at, :at)",
        at=datetime.now(UTC),
    )
    [found] = busy.unexplained_state()
    assert found.startswith("version churn/9 (row ") and found.endswith("is staging but has no version.registered event")


def test_a_deployment_changed_with_sql_is_named(busy: Store) -> None:
    sql(busy, "UPDATE deployments SET mode = 'canary', challenger_weight = 0.5 WHERE model_name = 'churn'")
    [found] = busy.unexplained_state()
    assert found.startswith("the deployment of churn routes version 3 as canary at 50%")
    assert "the audit log last set version 3 as shadow at 0%" in found


def test_a_rollout_moved_with_sql_is_named(busy: Store) -> None:
    sql(busy, "UPDATE rollouts SET state = 'running', finished_at = NULL WHERE version = 3")
    [found] = busy.unexplained_state()
    assert "rollout" in found and "of churn/3 is running" in found and "leaves it rolled_back" in found


def test_a_token_no_event_created_is_named(busy: Store) -> None:
    sql(busy, "UPDATE api_tokens SET name = 'backdoor', created_by = 'mallory' WHERE name = 'gateway'")
    assert busy.unexplained_state() == ["token 'backdoor' (created by mallory) has no token.created event"]


def test_an_audit_key_listed_with_sql_is_named(busy: Store) -> None:
    sql(
        busy,
        "INSERT INTO audit_keys (key_id, public_key, created_at, created_by) VALUES ('cccccccccccccccc', :key, :at, 'mallory')",
        key="0c" * 32,
        at=datetime.now(UTC),
    )
    sql(busy, "UPDATE audit_keys SET retired_at = NULL WHERE key_id = :key", key="a" * 16)
    assert busy.unexplained_state() == [
        f"audit key {'a' * 16} was retired by event {_event_seq(busy, 'audit.key_rotated')}, but the store lists it as current",
        "audit key cccccccccccccccc is listed in the store but no audit.key_created or audit.key_rotated event added it",
    ]


def _approval_ids(store: Store) -> list[int]:
    with store.engine.connect() as conn:
        return list(conn.execute(text("SELECT id FROM approvals")).scalars())


def _event_seq(store: Store, action: str) -> int:
    return next(e.seq for e in store.audit_events() if e.action == action)
