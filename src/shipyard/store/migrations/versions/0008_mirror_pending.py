"""The MLflow mirror's backlog: models whose stages may be behind, registrations begun.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mirror_pending",
        sa.Column("model_name", sa.String(200), sa.ForeignKey("models.name"), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
    )
    op.create_table(
        "registrations_pending",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_registrations_pending_model_name", "registrations_pending", ["model_name"])


def downgrade() -> None:
    op.drop_index("ix_registrations_pending_model_name", table_name="registrations_pending")
    op.drop_table("registrations_pending")
    op.drop_table("mirror_pending")
