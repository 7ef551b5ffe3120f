"""Shipyard's own store: tables, migrations, repositories and the audit chain."""
