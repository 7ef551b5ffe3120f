"""Governance in the store: evidence, the reference data schema, gate reports and approvals."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shipyard.domain.errors import InvalidSpec
from shipyard.domain.governance import Approval, GateReport
from shipyard.store.audit import canonical_sha256
from shipyard.store.base import StoreBase, Tx, version_row
from shipyard.store.replay import audited_approvals
from shipyard.store.tables import ApprovalRow, DataSchemaRow, EvidenceRow, GateReportRow


def put_evidence(tx: Tx, model: str, version: int, data: dict[str, Any]) -> None:
    row = tx.session.scalars(
        select(EvidenceRow).where(EvidenceRow.model_name == model, EvidenceRow.version == version)
    ).one_or_none()
    if row is None:
        tx.session.add(EvidenceRow(model_name=model, version=version, data=data, collected_at=tx.now, collected_by=tx.actor))
    else:
        row.data, row.collected_at, row.collected_by = data, tx.now, tx.actor
    # The audit chain pins the evidence by digest: an edited evidence row no longer matches it.
    tx.audit("evidence.collected", f"{model}/{version}", {"evidence_sha256": canonical_sha256(data), "keys": sorted(data)})


def put_gate(tx: Tx, report: GateReport) -> int:
    row = GateReportRow(
        model_name=report.model,
        version=report.version,
        stage=report.stage,
        passed=report.passed,
        break_glass=report.break_glass,
        report=report.to_dict(),
        actor=tx.actor,
        at=tx.now,
    )
    tx.session.add(row)
    tx.session.flush()
    tx.audit(
        "gate.evaluated",
        f"{report.model}/{report.version}",
        {
            "stage": report.stage,
            "passed": report.passed,
            "break_glass": report.break_glass,
            "blocking": [r.name for r in report.blocking],
            "warnings": [r.name for r in report.warnings],
            "report_id": row.id,
            "report_sha256": canonical_sha256(row.report),
        },
    )
    return row.id


class GovernanceRecords(StoreBase):
    """Mixed into ``Store``: what the gates judge and what they decided."""

    def save_evidence(self, *, actor: str, model: str, version: int, data: dict[str, Any]) -> None:
        with self.write(actor) as tx:
            version_row(tx.session, model, version)
            put_evidence(tx, model, version, data)

    def evidence(self, model: str, version: int) -> dict[str, Any] | None:
        with self.read() as session:
            row = session.scalars(
                select(EvidenceRow).where(EvidenceRow.model_name == model, EvidenceRow.version == version)
            ).one_or_none()
            return dict(row.data) if row is not None else None

    def reference_schema(self, model: str) -> dict[str, Any] | None:
        with self.read() as session:
            row = session.get(DataSchemaRow, model)
            return dict(row.schema) if row is not None else None

    def record_gate(self, report: GateReport) -> int:
        """Store and audit a gate report on its own (a refused promotion leaves this trace)."""
        with self.write(report.actor) as tx:
            return put_gate(tx, report)

    def gate_reports(self, model: str, version: int | None = None) -> list[dict[str, Any]]:
        with self.read() as session:
            query = select(GateReportRow).where(GateReportRow.model_name == model).order_by(GateReportRow.id)
            if version is not None:
                query = query.where(GateReportRow.version == version)
            return [{"id": row.id, **row.report} for row in session.scalars(query)]

    def record_approval(self, approval: Approval) -> Approval:
        with self.write(approval.actor) as tx:
            version_row(tx.session, approval.model, approval.version)
            tx.session.add(
                ApprovalRow(
                    model_name=approval.model,
                    version=approval.version,
                    stage=approval.stage,
                    actor=approval.actor,
                    roles=list(approval.roles),
                    decision=approval.decision,
                    comment=approval.comment,
                    at=tx.now,
                    evidence_sha256=approval.evidence_sha256,
                )
            )
            tx.audit(
                f"approval.{approval.decision}",
                f"{approval.model}/{approval.version}",
                {
                    "stage": approval.stage,
                    "roles": list(approval.roles),
                    "comment": approval.comment,
                    "evidence_sha256": approval.evidence_sha256,
                },
            )
        return approval

    def revoke_approvals(self, *, actor: str, model: str, version: int, stage: str, reason: str) -> list[Approval]:
        """Mark every standing sign-off of ``model``/``version`` for ``stage`` revoked; one audit event each.

        The rows stay (with who revoked them, when and why), so the history of decisions is kept.
        """
        if not reason.strip():
            raise InvalidSpec(
                f"revoking the {stage} approvals of {model}/{version} needs a reason; got an empty one",
                hint="Say why they no longer count, e.g. 'version 3 was rolled back'.",
            )
        with self.write(actor) as tx:
            version_row(tx.session, model, version)
            query = (
                select(ApprovalRow)
                .where(
                    ApprovalRow.model_name == model,
                    ApprovalRow.version == version,
                    ApprovalRow.stage == stage,
                    ApprovalRow.revoked_at.is_(None),
                )
                .order_by(ApprovalRow.id)
            )
            revoked = []
            for row in tx.session.scalars(query):
                row.revoked_at, row.revoked_reason, row.revoked_by = tx.now, reason, actor
                tx.audit(
                    "approval.revoked",
                    f"{model}/{version}",
                    {"approval": row.id, "stage": stage, "approver": row.actor, "decision": row.decision, "reason": reason},
                )
                revoked.append(row.to_entity())
            tx.session.flush()
            return revoked

    def approvals(self, model: str, version: int, stage: str | None = None) -> list[Approval]:
        with self.read() as session:
            query = (
                select(ApprovalRow)
                .where(ApprovalRow.model_name == model, ApprovalRow.version == version)
                .order_by(ApprovalRow.id)
            )
            if stage is not None:
                query = query.where(ApprovalRow.stage == stage)
            # A row no audit event records never counts, whoever wrote it (store/replay.py says why).
            return audited_approvals(session, f"{model}/{version}", session.scalars(query).all())


__all__ = ["GovernanceRecords", "put_evidence", "put_gate"]
