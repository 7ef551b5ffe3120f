"""Engines, schema migrations and transactions for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, SQLAlchemyError

from shipyard.domain.errors import BackendUnavailable, Conflict, InvalidSpec

MIGRATIONS = Path(__file__).parent / "migrations"


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str) -> Engine:
    """An engine with SQLite set up for concurrent use (WAL, busy timeout, IMMEDIATE writes)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidSpec(
            f"store URL {url!r} is not a database URL",
            hint="Expected e.g. sqlite:///path/to/shipyard.db or postgresql+psycopg://user@host:5432/db.",
        ) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 60}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise InvalidSpec(
            f"store URL {redact(url)!r} names a database driver that is not installed ({exc})",
            hint="Use sqlite:///… or postgresql+psycopg://….",
        ) from exc
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below decide how transactions start.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front, so two writers queue instead of
        # failing halfway with "database is locked".
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn driver and SQLAlchemy errors into BackendUnavailable naming the store."""
    try:
        yield
    except IntegrityError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise Conflict(f"the change conflicts with what store {redact(url)} holds: {reason}") from exc
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise BackendUnavailable(
            f"store {redact(url)} failed: {reason}",
            hint="Check that the database is running and reachable, and the URL "
            "(SHIPYARD_STORE_URL or store.url in shipyard.yaml).",
        ) from exc
    except SQLAlchemyError as exc:
        raise BackendUnavailable(f"store {redact(url)} failed: {exc}") from exc


def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise BackendUnavailable("Shipyard's migration scripts are missing from the installation")
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), revision)


def shipped_head() -> str:
    """The newest revision this installation ships, from the revision files' names (``0009_leases.py`` → ``0009``).

    Every command opens the store: reading one table and one folder spares it importing Alembic
    (and Mako, which parses every revision script) when the schema is already current.
    tests/store/test_migrations.py holds it equal to Alembic's own head.
    """
    names = [p.name.partition("_")[0] for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")]
    return max(names, default="")


def _recorded_revision(engine: Engine) -> str | None:
    from sqlalchemy import text

    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
    except DBAPIError:
        return None  # no alembic_version table yet: Alembic's own path decides what to do


def ensure_schema(engine: Engine, url: str, *, auto_migrate: bool) -> None:
    """Migrate the embedded default; refuse an out-of-date shared database."""
    if _recorded_revision(engine) == shipped_head():
        return
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if auto_migrate:
        upgrade(engine)
        return
    has_tables = bool(inspect(engine).get_table_names())
    state = "has no Shipyard schema" if current is None and not has_tables else f"is at schema revision {current}"
    raise BackendUnavailable(
        f"store {redact(url)} {state}; this Shipyard needs revision {head}",
        hint="Run `shipyard db upgrade` (against the same store URL) to migrate it, then retry.",
    )
