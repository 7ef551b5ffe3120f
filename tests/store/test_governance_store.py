"""Evidence, gate reports and approvals in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from factories import register
from shipyard.domain.errors import InvalidSpec, NotFound
from shipyard.domain.governance import Approval, GateReport, Outcome, RuleResult
from shipyard.domain.stages import Stage
from shipyard.store.audit import canonical_sha256
from shipyard.store.repository import ChampionChanged, Store


def report(passed: bool, version: int = 1) -> GateReport:
    outcome = Outcome.PASSED if passed else Outcome.FAILED
    result = RuleResult(
        index=0, kind="metric", name="metric roc_auc", severity="block", outcome=outcome, observed=0.8, expected=">= 0.9"
    )
    return GateReport(
        model="churn", version=version, stage="staging", results=(result,), evaluated_at=datetime.now(UTC), actor="rui"
    )


def test_evidence_round_trip_is_pinned_in_the_audit_chain(store: Store) -> None:
    evidence = {"metrics": {"holdout": {"roc_auc": 0.8312345678901234}}, "comparison": None, "artifacts": ["model_card.md"]}
    store.register_version(
        actor="alice",
        model="churn",
        owner="o",
        version=1,
        source="s",
        run_id="r",
        data_uri=None,
        data_fingerprint=None,
        git_commit=None,
        metrics={},
        evidence=evidence,
        schema={"columns": {"a": {"dtype": "int64"}}},
    )
    assert store.evidence("churn", 1) == evidence
    assert store.reference_schema("churn") == {"columns": {"a": {"dtype": "int64"}}}
    [pinned] = [e for e in store.audit_events() if e.action == "evidence.collected"]
    assert pinned.details["evidence_sha256"] == canonical_sha256(store.evidence("churn", 1))
    store.save_evidence(actor="bob", model="churn", version=1, data={**evidence, "comparison": {"champion_version": 2}})
    assert store.evidence("churn", 1)["comparison"] == {"champion_version": 2}  # type: ignore[index]
    assert store.verify_audit().ok


def test_schema_is_kept_from_the_first_version(store: Store) -> None:
    for version, dtype in ((1, "int64"), (2, "float64")):
        store.register_version(
            actor="alice",
            model="churn",
            owner="o",
            version=version,
            source="s",
            run_id=None,
            data_uri=None,
            data_fingerprint=None,
            git_commit=None,
            metrics={},
            schema={"columns": {"a": {"dtype": dtype}}},
        )
    assert store.reference_schema("churn") == {"columns": {"a": {"dtype": "int64"}}}


def test_gate_reports_and_approvals(store: Store) -> None:
    register(store, 1)
    report_id = store.record_gate(report(passed=False))
    store.record_approval(
        Approval(
            model="churn",
            version=1,
            stage="production",
            actor="vera",
            roles=("approver",),
            decision="approve",
            comment="ok",
            at=datetime.now(UTC),
        )
    )
    store.transition(actor="rui", model="churn", version=1, to=Stage.STAGING, reason="r", gate=report(passed=True))
    reports = store.gate_reports("churn", 1)
    assert [(r["id"] == report_id, r["passed"]) for r in reports] == [(True, False), (False, True)]
    assert reports[0]["results"][0]["observed"] == 0.8
    [approval] = store.approvals("churn", 1, "production")
    assert (approval.actor, approval.roles, approval.decision) == ("vera", ("approver",), "approve")
    actions = [e.action for e in store.audit_events()][-4:]
    assert actions == ["gate.evaluated", "approval.approve", "gate.evaluated", "version.stage_changed"]
    assert store.verify_audit().ok


def test_a_stale_champion_is_refused_and_nothing_is_written(store: Store) -> None:
    for version in (1, 2, 3):
        register(store, version)
        store.transition(actor="rui", model="churn", version=version, to=Stage.STAGING, reason="r")
    store.transition(actor="rui", model="churn", version=1, to=Stage.PRODUCTION, reason="r", champion_seen=None)
    before = len(store.audit_events())
    # The gate for v3 compared with "no champion", but v1 has become champion since.
    with pytest.raises(ChampionChanged, match="changed from none to 1"):
        store.transition(
            actor="zoe", model="churn", version=3, to=Stage.PRODUCTION, reason="r", gate=report(True, 3), champion_seen=None
        )
    assert len(store.audit_events()) == before and store.gate_reports("churn", 3) == []
    store.transition(actor="zoe", model="churn", version=3, to=Stage.PRODUCTION, reason="r", champion_seen=1)
    assert {v.version: v.stage for v in store.list_versions("churn")}[3] is Stage.PRODUCTION


def approval(actor: str, decision: str = "approve", *, stage: str = "production", evidence: str | None = "e" * 64) -> Approval:
    return Approval(
        model="churn",
        version=1,
        stage=stage,
        actor=actor,
        roles=("approver",),
        decision=decision,
        comment="ok",
        at=datetime.now(UTC),
        evidence_sha256=evidence,
    )


def test_an_approval_keeps_the_evidence_digest_it_was_given_on(store: Store) -> None:
    register(store, 1)
    store.record_approval(approval("vera", evidence="ab" * 32))
    store.record_approval(approval("walt", evidence=None))
    assert [(a.actor, a.evidence_sha256, a.revoked) for a in store.approvals("churn", 1)] == [
        ("vera", "ab" * 32, None),
        ("walt", None, None),
    ]
    assert store.audit_events()[-2].details["evidence_sha256"] == "ab" * 32


def test_revoking_marks_standing_approvals_of_one_stage_and_keeps_them(store: Store) -> None:
    register(store, 1)
    store.record_approval(approval("vera"))
    store.record_approval(approval("walt", "reject"))
    store.record_approval(approval("vera", stage="staging"))
    before = len(store.audit_events())

    revoked = store.revoke_approvals(actor="rui", model="churn", version=1, stage="production", reason="version 1 rolled back")

    assert [(a.actor, a.decision, a.revoked) for a in revoked] == [
        ("vera", "approve", "version 1 rolled back"),
        ("walt", "reject", "version 1 rolled back"),
    ]
    # Revoked approvals stay visible; the other stage's approval is untouched.
    assert [(a.stage, a.revoked) for a in store.approvals("churn", 1)] == [
        ("production", "version 1 rolled back"),
        ("production", "version 1 rolled back"),
        ("staging", None),
    ]
    events = store.audit_events()[before:]
    assert [(e.action, e.actor, e.details["approver"], e.details["reason"]) for e in events] == [
        ("approval.revoked", "rui", "vera", "version 1 rolled back"),
        ("approval.revoked", "rui", "walt", "version 1 rolled back"),
    ]
    # A second revocation finds nothing standing: no new events, earlier reasons kept.
    assert store.revoke_approvals(actor="rui", model="churn", version=1, stage="production", reason="again") == []
    assert len(store.audit_events()) == before + 2
    assert {a.revoked for a in store.approvals("churn", 1, "production")} == {"version 1 rolled back"}
    # A sign-off given after the revocation stands.
    store.record_approval(approval("walt"))
    assert [a.revoked for a in store.approvals("churn", 1, "production")][-1] is None
    assert store.verify_audit().ok


def test_revoking_needs_a_known_version_and_a_reason(store: Store) -> None:
    register(store, 1)
    with pytest.raises(NotFound, match="no version 7"):
        store.revoke_approvals(actor="rui", model="churn", version=7, stage="production", reason="r")
    with pytest.raises(InvalidSpec, match="needs a reason"):
        store.revoke_approvals(actor="rui", model="churn", version=1, stage="production", reason="  ")
