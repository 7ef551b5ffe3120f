"""Rollouts: progressive delivery state, one active rollout per model.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(200), sa.ForeignKey("models.name"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("champion_version", sa.Integer, nullable=True),
        sa.Column("strategy", sa.String(20), nullable=False),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("interval_seconds", sa.Float, nullable=False),
        sa.Column("checks", sa.JSON, nullable=False),
        sa.Column("failure_limit", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("history", sa.JSON, nullable=False),
        sa.Column("started_by", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_rollouts_model_name", "rollouts", ["model_name"])
    op.create_index(
        "uq_rollouts_one_active",
        "rollouts",
        ["model_name"],
        unique=True,
        sqlite_where=sa.text("state IN ('running', 'paused')"),
        postgresql_where=sa.text("state IN ('running', 'paused')"),
    )


def downgrade() -> None:
    op.drop_index("uq_rollouts_one_active", table_name="rollouts")
    op.drop_index("ix_rollouts_model_name", table_name="rollouts")
    op.drop_table("rollouts")
