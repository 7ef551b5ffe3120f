"""Alerts: how each was resolved (cleared, left_production, manual).

Alerts resolved before this revision get theirs from their ``alert.resolved``
audit event: the monitor's carries the reading that cleared it, a person's a reason.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

alerts = sa.table("alerts", sa.column("id", sa.Integer), sa.column("resolution", sa.String))
events = sa.table("audit_events", sa.column("action", sa.String), sa.column("details", sa.JSON))


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("resolution", sa.String(20), nullable=True))
    bind = op.get_bind()
    found: dict[int, str] = {}
    for (details,) in bind.execute(sa.select(events.c.details).where(events.c.action == "alert.resolved")):
        if isinstance(details, dict) and isinstance(details.get("alert"), int):
            found[details["alert"]] = "manual" if "reason" in details else "cleared"
    for alert_id, resolution in found.items():
        bind.execute(sa.update(alerts).where(alerts.c.id == alert_id).values(resolution=resolution))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("resolution")
