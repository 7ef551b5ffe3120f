"""Approvals: the evidence digest a sign-off was given on, and its revocation.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("evidence_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revoked_reason", sa.Text, nullable=True))
        batch.add_column(sa.Column("revoked_by", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("revoked_by")
        batch.drop_column("revoked_reason")
        batch.drop_column("revoked_at")
        batch.drop_column("evidence_sha256")
