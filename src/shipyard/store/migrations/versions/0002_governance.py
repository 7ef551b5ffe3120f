"""Governance: evidence, reference data schemas, gate reports and approvals.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("collected_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("model_name", "version", name="uq_evidence_model_version"),
    )
    op.create_index("ix_evidence_model_name", "evidence", ["model_name"])
    op.create_table(
        "data_schemas",
        sa.Column("model_name", sa.String(200), sa.ForeignKey("models.name"), primary_key=True),
        sa.Column("schema", sa.JSON, nullable=False),
        sa.Column("source_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "gate_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("break_glass", sa.Boolean, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_gate_reports_model_name", "gate_reports", ["model_name"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("decision", sa.String(10), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_approvals_model_name", "approvals", ["model_name"])


def downgrade() -> None:
    op.drop_index("ix_approvals_model_name", table_name="approvals")
    op.drop_table("approvals")
    op.drop_index("ix_gate_reports_model_name", table_name="gate_reports")
    op.drop_table("gate_reports")
    op.drop_table("data_schemas")
    op.drop_index("ix_evidence_model_name", table_name="evidence")
    op.drop_table("evidence")
