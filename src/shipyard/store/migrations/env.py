"""Alembic environment: Shipyard always hands in a live connection."""

from __future__ import annotations

from alembic import context

from shipyard.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Shipyard runs its migrations with a connection; use `shipyard db upgrade`.")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
