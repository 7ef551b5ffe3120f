from __future__ import annotations

import pytest
from sqlalchemy import inspect

from shipyard.domain.errors import BackendUnavailable
from shipyard.store import database
from shipyard.store.repository import Store
from shipyard.store.tables import Base


def test_migrations_match_the_tables(store_url: str) -> None:
    """What Alembic builds is exactly what the ORM expects (no drift between the two)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = database.make_engine(store_url)
    database.upgrade(engine)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diffs == []


def test_upgrade_downgrade_upgrade(store_url: str) -> None:
    engine = database.make_engine(store_url)
    database.upgrade(engine)
    assert database.current_revision(engine) == database.head_revision()
    database.downgrade(engine, "base")
    assert database.current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    database.upgrade(engine)
    assert {"models", "model_versions", "stage_changes", "audit_events", "audit_head"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_embedded_sqlite_is_migrated_on_open(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/fresh/shipyard.db"
    store = Store.open(url)
    assert database.current_revision(store.engine) == database.head_revision()
    assert store.verify_audit().ok
    store.close()


def test_shared_store_out_of_date_is_refused_with_the_command(postgres_url: str) -> None:
    with pytest.raises(BackendUnavailable) as caught:
        Store.open(postgres_url)
    assert "has no Shipyard schema" in caught.value.message
    assert "shipyard db upgrade" in (caught.value.hint or "")
    Store.open(postgres_url, auto_migrate=True).close()
    Store.open(postgres_url).close()  # now current: opens without migrating


def test_unreachable_store_names_url_and_reason() -> None:
    with pytest.raises(BackendUnavailable) as caught:
        Store.open("postgresql+psycopg://nobody:secret@127.0.0.1:1/shipyard")
    message = caught.value.message
    assert "127.0.0.1:1" in message and "secret" not in message
    assert "failed:" in message


def test_bad_store_url_is_a_spec_error() -> None:
    from shipyard.domain.errors import InvalidSpec

    with pytest.raises(InvalidSpec, match="not a database URL"):
        Store.open("not a url")


def test_approvals_recorded_before_revocation_existed_survive_the_upgrade(store_url: str) -> None:
    from sqlalchemy import text

    engine = database.make_engine(store_url)
    database.upgrade(engine, "0005")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO approvals (model_name, version, stage, actor, roles, decision, comment, at) "
                "VALUES ('churn', 1, 'production', 'vera', '[\"approver\"]', 'approve', 'ok', '2026-01-01 00:00:00+00:00')"
            )
        )
    database.upgrade(engine, "0006")
    engine.dispose()
    store = Store.open(store_url, auto_migrate=True)
    [approval] = store.approvals("churn", 1)
    assert (approval.actor, approval.roles, approval.evidence_sha256) == ("vera", ("approver",), None)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT revoked_at, revoked_reason FROM approvals")).one() == (None, None)
    # Inserted here without its audit event, so no gate counts it (store/replay.py).
    assert approval.revoked is not None and "no audit event" in approval.revoked
    store.close()
    engine = database.make_engine(store_url)
    database.downgrade(engine, "0005")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT actor FROM approvals")).scalars().all() == ["vera"]
    engine.dispose()


def test_alerts_resolved_before_0007_get_their_resolution_from_the_audit_log(store_url: str) -> None:
    """The monitor's alert.resolved event carries the reading, a person's a reason; an open alert has none."""
    import json

    from sqlalchemy import text

    engine = database.make_engine(store_url)
    database.upgrade(engine, "0006")
    alert = (
        "INSERT INTO alerts (id, model_name, version, signal, state, observed, threshold, action, action_state, "
        "action_result, opened_at, last_seen_at, resolved_at, monitor_run, seen) VALUES "
        "(:id, 'churn', 1, :signal, :state, 0.5, 0.25, 'none', 'skipped', '{}', :at, :at, :resolved, 1, 1)"
    )
    event = (
        "INSERT INTO audit_events (seq, at, actor, action, subject, details, prev_hash, hash) "
        "VALUES (:seq, :at, 'x', 'alert.resolved', 'churn/1', :details, 'p', 'h')"
    )
    at = "2026-01-01 00:00:00+00:00"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO models (name, owner, created_at, created_by) VALUES ('churn', 'o', :at, 'x')"), {"at": at})
        for id_, signal, resolved in ((1, "prediction_drift", at), (2, "error_rate", at), (3, "metric_decay", None)):
            state = "open" if resolved is None else "resolved"
            conn.execute(text(alert), {"id": id_, "signal": signal, "state": state, "at": at, "resolved": resolved})
        conn.execute(text(event), {"seq": 1, "at": at, "details": json.dumps({"alert": 1, "observed": 0.1, "threshold": 0.25})})
        conn.execute(text(event), {"seq": 2, "at": at, "details": json.dumps({"alert": 2, "reason": "false alarm"})})
    database.upgrade(engine, "0007")
    with engine.connect() as conn:
        found = conn.execute(text("SELECT id, resolution FROM alerts ORDER BY id")).all()
    assert [tuple(row) for row in found] == [(1, "cleared"), (2, "manual"), (3, None)]
    database.downgrade(engine, "0006")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alerts")).scalar_one() == 3
    engine.dispose()


def test_the_shipped_head_is_alembics_head() -> None:
    """Opening a current store compares with the head read from file names; it must be Alembic's."""
    assert database.shipped_head() == database.head_revision()


def test_opening_a_current_store_does_not_load_alembic(store_url: str) -> None:
    import json
    import subprocess
    import sys

    Store.open(store_url, auto_migrate=True).close()
    code = (
        "import sys, json; from shipyard.store.repository import Store; "
        f"Store.open({store_url!r}, auto_migrate=False).close(); "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert {"alembic", "mako"}.isdisjoint(json.loads(done.stdout))


def test_every_partial_unique_index_is_partial_in_the_database(store_url: str) -> None:
    """The ORM keeps each partial index's condition in `info`; the migrations must have created it with it."""
    from sqlalchemy import text

    partial = {
        index.name: index.info["where"]
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if "where" in index.info
    }
    assert len(partial) == 3
    engine = database.make_engine(store_url)
    database.upgrade(engine)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            found = dict(conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")).all())
        else:
            found = dict(conn.execute(text("SELECT indexname, indexdef FROM pg_indexes")).all())
    engine.dispose()
    for name, where in partial.items():
        definition = " ".join(str(found[name]).split()).replace('"', "")
        assert "UNIQUE" in definition.upper() and " WHERE " in definition.upper(), definition
        for word in where.replace("(", " ").replace(")", " ").replace(",", " ").split():
            assert word.strip("'") in definition, (name, where, definition)
