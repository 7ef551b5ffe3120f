"""Factories for store rows that tests need in bulk."""

from __future__ import annotations

from typing import Any

from shipyard.domain.entities import ModelVersion
from shipyard.store.repository import Store


def register(
    store: Store,
    version: int,
    *,
    model: str = "churn",
    actor: str = "alice",
    git_commit: str | None = "c0ffee",
    evidence: dict[str, Any] | None = None,
) -> ModelVersion:
    return store.register_version(
        actor=actor,
        model=model,
        owner="team@example.com",
        version=version,
        source=f"file:///artifacts/{model}/{version}/model",
        run_id=f"run{version}",
        data_uri="file:///data/churn.parquet",
        data_fingerprint="ab" * 32,
        git_commit=git_commit,
        metrics={"roc_auc": 0.8 + version / 100},
        evidence=evidence,
    )


def copy_versions(source: Store, target: Store, model: str = "churn") -> list[ModelVersion]:
    """Track the versions one store knows in another (e.g. a project's SQLite store in a shared PostgreSQL)."""
    copied = []
    for v in source.list_versions(model):
        copied.append(
            target.register_version(
                actor=v.registered_by,
                model=model,
                owner="team",
                version=v.version,
                source=v.source,
                run_id=v.run_id,
                data_uri=v.data_uri,
                data_fingerprint=v.data_fingerprint,
                git_commit=v.git_commit,
                metrics=v.metrics,
                evidence=source.evidence(model, v.version),
                schema=source.reference_schema(model),
                files_sha256=v.files_sha256,
            )
        )
    return copied


def forge(store: Store, statement: str, **params: object) -> None:
    """Change the store behind its back with raw SQL, as an attacker with database access would.

    Times are bound as ISO text, as the sqlite3 driver's own adapter binds them: importing Feast's SQLite
    online store replaces that adapter for the whole process (times become epoch integers), which would
    write rows no real store holds.
    """
    from datetime import datetime

    from sqlalchemy import text

    bound = {
        k: v.isoformat(" ") if isinstance(v, datetime) and store.engine.dialect.name == "sqlite" else v for k, v in params.items()
    }
    with store.engine.begin() as conn:
        conn.execute(text(statement), bound)
