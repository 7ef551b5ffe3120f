"""The store: every state change and its audit event, in one transaction.

``Store`` opens the connection and the transactions; what it records lives in one
module per concern (versions, governance, delivery, identity, monitoring, the
MLflow mirror's backlog, leases, notification cursors, audit checkpoints, legal holds, the audit log).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from shipyard.store import database
from shipyard.store.audit_log import AuditRecords
from shipyard.store.base import Tx
from shipyard.store.checkpoints import CheckpointRecords
from shipyard.store.delivery import DeliveryRecords
from shipyard.store.governance import GovernanceRecords
from shipyard.store.holds import HoldRecords
from shipyard.store.identity import IdentityRecords
from shipyard.store.leases import LeaseRecords
from shipyard.store.mirror import MirrorRecords
from shipyard.store.monitoring import MonitoringRecords
from shipyard.store.notify import NotifyRecords
from shipyard.store.tables import AuditHeadRow, utcnow
from shipyard.store.versions import ANY_CHAMPION, ChampionChanged, VersionRecords


class Store(
    VersionRecords,
    GovernanceRecords,
    DeliveryRecords,
    IdentityRecords,
    MonitoringRecords,
    MirrorRecords,
    LeaseRecords,
    NotifyRecords,
    CheckpointRecords,
    HoldRecords,
    AuditRecords,
):
    """Shipyard's source of truth on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url

    @classmethod
    def open(cls, url: str, *, auto_migrate: bool | None = None) -> Store:
        """Connect, and migrate the embedded default (or refuse an out-of-date shared store)."""
        engine = database.make_engine(url)
        migrate = database.is_sqlite(url) if auto_migrate is None else auto_migrate
        try:
            with database.translate_errors(url):
                database.ensure_schema(engine, url, auto_migrate=migrate)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, url)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def write(self, actor: str) -> Iterator[Tx]:
        """One writing transaction: lock the audit head, do the change, audit it, commit."""
        with (
            database.translate_errors(self.url),
            self.engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn,
            Session(bind=conn, expire_on_commit=False) as session,
            session.begin(),
        ):
            head = session.execute(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()).scalar_one()
            # The one clock of every change (tests that fix the time replace ``utcnow`` here).
            yield Tx(session, head, actor, utcnow())

    @contextmanager
    def read(self) -> Iterator[Session]:
        with database.translate_errors(self.url), Session(self.engine) as session:
            yield session


__all__ = ["ANY_CHAMPION", "ChampionChanged", "Store", "Tx"]
