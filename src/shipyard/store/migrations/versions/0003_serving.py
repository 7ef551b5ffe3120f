"""Serving: deployment state with a generation counter, model file digests, API tokens.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("model_name", sa.String(200), sa.ForeignKey("models.name"), primary_key=True),
        sa.Column("challenger_version", sa.Integer, nullable=True),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("challenger_weight", sa.Float, nullable=False),
        sa.Column("routing_key", sa.String(200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )
    serving = op.create_table(
        "serving_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("generation", sa.Integer, nullable=False),
    )
    op.bulk_insert(serving, [{"id": 1, "generation": 1}])
    op.create_table(
        "api_tokens",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("files_sha256", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("files_sha256")
    op.drop_table("api_tokens")
    op.drop_table("serving_state")
    op.drop_table("deployments")
