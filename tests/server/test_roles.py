"""The role matrix: every changing endpoint × every role, against a real server on PostgreSQL.

Allowed means the server did not refuse for a role (the call may still meet a gate or a state
conflict); denied means 403 naming the role needed, and a `*.denied` event naming the principal.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import make_project
from server.conftest import BY_ROLE, Team, start_team
from shipyard.server.endpoints import API, ENDPOINTS
from shipyard.service import Shipyard

ROLES = tuple(BY_ROLE)
# endpoint, method, path, body, the roles allowed (as the README's role table says)
MATRIX: list[tuple[str, str, str, dict[str, object] | None, set[str]]] = [
    ("register", "POST", "/models/churn/versions", {"run_id": "0" * 32}, {"scientist", "admin"}),
    ("collect_evidence", "POST", "/models/churn/versions/1/evidence", {}, {"scientist", "admin"}),
    ("promote", "POST", "/models/churn/versions/1/promote", {"to": "staging", "reason": "matrix"},
     {"scientist", "deployer", "admin"}),
    ("promote", "POST", "/models/churn/versions/1/promote", {"to": "production", "reason": "matrix"}, {"deployer", "admin"}),
    ("approve", "POST", "/models/churn/versions/1/approvals", {"stage": "production", "comment": "ok"},
     {"approver", "admin"}),
    ("start_rollout", "POST", "/models/churn/versions/1/rollout", {}, {"deployer", "admin"}),
    ("rollout_action", "POST", "/models/churn/rollout/pause", {}, {"deployer", "admin"}),
    ("reconcile_rollouts", "POST", "/rollouts/reconcile", {}, {"deployer", "admin"}),
    ("reconcile", "POST", "/mirror/reconcile", {"model": "churn"}, {"deployer", "admin"}),
    ("monitor", "POST", "/monitor", {"model": "churn", "act": False}, {"scientist", "deployer", "admin"}),
    ("ingest_labels", "POST", "/models/churn/labels?filename=labels.csv", None, {"scientist", "deployer", "admin"}),
    ("rotate_audit_key", "POST", "/audit/rotate-key", {}, {"admin"}),
    ("create_token", "POST", "/tokens", {"name": "for-walt-{role}", "principal": "walt"}, {"admin"}),
    ("revoke_token", "DELETE", "/tokens/walt-victim", None, {"admin"}),
    ("set_principal", "PUT", "/principals/newcomer", {"roles": ["viewer"]}, {"admin"}),
    ("remove_principal", "DELETE", "/principals/newcomer", None, {"admin"}),
    ("promote", "POST", "/models/churn/versions/2/promote", {"to": "rejected", "reason": "matrix"},
     {"scientist", "approver", "deployer", "admin"}),
    ("add_hold", "POST", "/models/churn/versions/1/hold", {"reason": "matrix"}, {"admin"}),
    ("remove_hold", "DELETE", "/models/churn/versions/1/hold?reason=matrix", None, {"admin"}),
    ("retention_apply", "POST", "/retention/apply", {}, {"deployer", "admin"}),
    # churn is not Feast-backed: who may operate gets the 400 that says so, the others are refused first
    ("materialize_features", "POST", "/models/churn/features/materialize", {}, {"deployer", "admin"}),
]  # fmt: skip


@pytest.fixture
def pg_team(tmp_path: Path, postgres_url: str) -> Iterator[Team]:
    root = make_project(tmp_path / "project")
    env = {"SHIPYARD_STORE_URL": postgres_url}
    with Shipyard.open(root, actor="alice", env=env) as trainer:  # embedded: before the project declares its server
        trainer.upgrade_store()
        trainer.run_pipeline("churn")
        trainer.run_pipeline("churn")
    running = start_team(root, env=env)
    yield running
    running.server.stop()
    running.service.close()


def test_every_changing_endpoint_is_in_the_matrix() -> None:
    assert {e.name for e in ENDPOINTS if e.mutating} == {row[0] for row in MATRIX}


def test_role_matrix_on_postgresql(pg_team: Team) -> None:
    pg_team.service.as_actor("ada").create_token("walt-victim", principal="walt")
    labels = b"customer_id,churned\n1,0\n"
    outcomes: dict[tuple[str, str, str], int] = {}
    for name, method, path, body, allowed in MATRIX:
        for role, who in BY_ROLE.items():
            payload = {k: (v.format(role=role) if isinstance(v, str) else v) for k, v in (body or {}).items()}
            before = pg_team.service.audit_log()[-1].seq
            with pg_team.client(who) as client:
                if name == "ingest_labels":
                    response = client.request(method, f"{API}{path}", content=labels)
                elif method in ("POST", "PUT"):
                    response = client.request(method, f"{API}{path}", json=payload)
                else:
                    response = client.request(method, f"{API}{path}")
            outcomes[(name, path, role)] = response.status_code
            cell = f"{name} {path} as {who} ({role}): {response.status_code} {response.text[:300]}"
            assert response.status_code != 500, cell
            if role in allowed:
                assert response.status_code != 403, cell
                continue
            assert response.status_code == 403 and response.json()["error"] == "permission_denied", cell
            assert role in response.json()["message"] or "roles" in response.json()["message"], cell
            denials = [e for e in pg_team.service.audit_log() if e.seq > before and e.action.endswith(".denied")]
            assert [e.actor for e in denials] == [who], cell
    assert any(code == 200 for code in outcomes.values())
