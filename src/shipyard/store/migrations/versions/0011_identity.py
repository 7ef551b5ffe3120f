"""Identity: principals and their roles in the store; tokens bound to a principal, with a scope, expiry and revocation.

Tokens made before this revision were gateway tokens: each becomes a ``predict`` token of whoever created it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("principal", sa.String(200), nullable=True))
        batch.add_column(sa.Column("scope", sa.String(20), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revoked_by", sa.String(200), nullable=True))
    op.execute("UPDATE api_tokens SET principal = created_by, scope = 'predict'")
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("principal", existing_type=sa.String(200), nullable=False)
        batch.alter_column("scope", existing_type=sa.String(20), nullable=False)
    op.create_index("ix_api_tokens_principal", "api_tokens", ["principal"])


def downgrade() -> None:
    op.drop_index("ix_api_tokens_principal", table_name="api_tokens")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("revoked_by")
        batch.drop_column("revoked_at")
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
        batch.drop_column("scope")
        batch.drop_column("principal")
    op.drop_table("principals")
