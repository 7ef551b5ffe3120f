"""A project's embedded MLflow store, repaired when the project folder is copied or moved.

MLflow keeps every local artifact location as an absolute path: an experiment's
``artifact_location`` (a relative one is resolved against the working folder of the
process that creates the experiment), a run's ``artifact_uri`` (derived from it), a model
version's ``source`` and ``storage_location``, a logged model's ``artifact_location``. A
copied project would read, check and write the original's files. So when the registry
opens a project's embedded store (``<root>/.shipyard/mlflow.db`` with its artifacts in
``<root>/.shipyard/artifacts``) at a root other than the one its locations were written at,
every location under that old root is rewritten to the same place under the new root, in
one SQLite transaction, and the root is recorded (a tag of MLflow's experiment 0) so the
next open has nothing to do. The locations stay plain ``file:`` URIs that any MLflow
client reads without Shipyard.

Provenance is not rewritten: a dataset's source and a run's tags say where data was when
the run happened, as the run's immutable artifacts (evidence, lineage) do.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlparse

STATE_DIR = ".shipyard"  # as shipyard.config lays a project out
ROOT_TAG = "shipyard.project_root"  # where the locations were last written: a tag of experiment 0
PREVIOUS_TAG = "shipyard.previous_roots"  # every root they were written at before (a JSON list)
# (table, column, extra condition): every place MLflow 3 keeps a location it reads files from.
LOCATIONS: tuple[tuple[str, str, str], ...] = (
    ("experiments", "artifact_location", ""),
    ("runs", "artifact_uri", ""),
    ("model_versions", "source", ""),
    ("model_versions", "storage_location", ""),
    ("logged_models", "artifact_location", ""),
    ("trace_tags", "value", "key = 'mlflow.artifactLocation'"),
    ("workspaces", "default_artifact_root", ""),
    ("workspaces", "trace_archival_location", ""),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Relocation:
    """What opening a moved project repaired."""

    root: Path
    moved_from: tuple[Path, ...]
    rewritten: int


def relocate(uri: str, old_root: Path | str, new_root: Path | str) -> str:
    """``uri`` moved from under ``old_root`` to the same place under ``new_root``; anything else unchanged.

    Handles ``file:`` URIs (percent-encoded, as ``Path.as_uri`` writes them) and plain
    absolute paths, and keeps the form it was given. Pure: the store applies the same rule
    to the sources it records.
    """
    old, new = PurePosixPath(old_root), PurePosixPath(new_root)
    parsed = urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        path = PurePosixPath(unquote(parsed.path))
        if not path.is_relative_to(old):
            return uri
        moved = new / path.relative_to(old)
        tail = "/" if parsed.path.endswith("/") and moved != PurePosixPath("/") else ""
        return "file://" + quote(str(moved)) + tail + (f"?{parsed.query}" if parsed.query else "")
    if parsed.scheme == "" and uri.startswith("/"):
        path = PurePosixPath(uri)
        if not path.is_relative_to(old):
            return uri
        return str(new / path.relative_to(old)) + ("/" if uri.endswith("/") and len(uri) > 1 else "")
    return uri


def is_under(uri: str, root: Path | str) -> bool:
    """Whether ``uri`` is a local location inside ``root``."""
    path = _local_path(uri)
    return path is not None and path.is_relative_to(PurePosixPath(root))


def embedded_root(tracking_uri: str, registry_uri: str, artifact_root: Path | None) -> Path | None:
    """The project root when the store is a project's embedded default, else None (never rewritten)."""
    database = sqlite_file(tracking_uri)
    if database is None or registry_uri != tracking_uri or artifact_root is None:
        return None
    state = database.parent.resolve()
    if state.name != STATE_DIR or artifact_root.resolve() != state / "artifacts":
        return None
    return state.parent


def sqlite_file(uri: str) -> Path | None:
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or ":memory:" in uri:
        return None
    return Path(unquote(uri[len(prefix) :].partition("?")[0]))


def repair(database: Path, root: Path) -> tuple[Relocation | None, tuple[Path, ...]]:
    """Rewrite the locations of an embedded store opened at ``root``; returns what it did and every previous root.

    A read decides whether there is anything to do, so an unmoved project takes no write lock.
    """
    db = sqlite3.connect(database, timeout=60, isolation_level=None)
    try:
        if not _pending(db, root):
            return None, _previous(_default_tags(db))
        db.execute("BEGIN IMMEDIATE")  # one writer: two processes opening a moved project repair it once
        try:
            done = _repair(db, root)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return done
    finally:
        db.close()


def _pending(db: sqlite3.Connection, root: Path) -> bool:
    tables = _tables(db)
    if "experiments" not in tables or "experiment_tags" not in tables:
        return False
    return _default_tags(db).get(ROOT_TAG) != str(root) or _default_experiment_homeless(db, root)


def _repair(db: sqlite3.Connection, root: Path) -> tuple[Relocation | None, tuple[Path, ...]]:
    tags = _default_tags(db)
    previous = _previous(tags)
    recorded = {Path(tags[ROOT_TAG])} if ROOT_TAG in tags else _roots_of_experiments(db)
    # Deepest first, should one old root lie inside another.
    old = tuple(sorted((r for r in recorded if r != root), key=lambda p: len(p.parts), reverse=True))
    tables = _tables(db)
    rewritten = sum(_rewrite(db, tables, before, root) for before in old)
    if _default_experiment_homeless(db, root):
        db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", (_default_home(root),))
    known = tuple(sorted({*previous, *old} - {root}))
    _set_tag(db, ROOT_TAG, str(root))
    _set_tag(db, PREVIOUS_TAG, json.dumps([str(p) for p in known]))
    return (Relocation(root=root, moved_from=old, rewritten=rewritten) if old else None), known


def _tables(db: sqlite3.Connection) -> set[str]:
    return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _previous(tags: dict[str, str]) -> tuple[Path, ...]:
    return tuple(Path(p) for p in json.loads(tags.get(PREVIOUS_TAG) or "[]"))


def _default_tags(db: sqlite3.Connection) -> dict[str, str]:
    rows = db.execute(
        "SELECT key, value FROM experiment_tags WHERE experiment_id = 0 AND key IN (?, ?)", (ROOT_TAG, PREVIOUS_TAG)
    )
    return {key: value for key, value in rows}


def _set_tag(db: sqlite3.Connection, key: str, value: str) -> None:
    if db.execute("SELECT 1 FROM experiments WHERE experiment_id = 0").fetchone() is None:
        return  # no experiment 0 to hold the record: the next open infers the root again
    db.execute("DELETE FROM experiment_tags WHERE experiment_id = 0 AND key = ?", (key,))
    db.execute("INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?, ?, 0)", (key, value))


def _roots_of_experiments(db: sqlite3.Connection) -> set[Path]:
    """Roots a store written before roots were recorded was at: Shipyard creates experiments in ``<root>/.shipyard/artifacts``."""
    roots = set()
    for (location,) in db.execute("SELECT artifact_location FROM experiments WHERE artifact_location IS NOT NULL"):
        path = _local_path(location)
        if path is not None and path.parts[-2:] == (STATE_DIR, "artifacts"):
            roots.add(Path(path.parent.parent))
    return roots


def _local_path(location: str) -> PurePosixPath | None:
    parsed = urlparse(location)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return PurePosixPath(unquote(parsed.path))
    if parsed.scheme == "" and location.startswith("/"):
        return PurePosixPath(location)
    return None


def _rewrite(db: sqlite3.Connection, tables: Iterable[str], old: Path, new: Path) -> int:
    count = 0
    present = set(tables)
    for table, column, condition in LOCATIONS:
        if table not in present or column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
            continue  # an older MLflow schema
        where = f"{column} IS NOT NULL" + (f" AND {condition}" if condition else "")
        for rowid, value in db.execute(f"SELECT rowid, {column} FROM {table} WHERE {where}").fetchall():
            moved = value if is_under(value, new) else relocate(value, old, new)
            if moved != value:
                db.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (moved, rowid))
                count += 1
    return count


def _default_home(root: Path) -> str:
    return (root / STATE_DIR / "artifacts" / "0").as_uri()


def _default_experiment_homeless(db: sqlite3.Connection, root: Path) -> bool:
    """Experiment 0 outside the project while it holds no runs: MLflow put it under a process's working folder."""
    found = db.execute("SELECT artifact_location FROM experiments WHERE experiment_id = 0").fetchone()
    if found is None or found[0] == _default_home(root):
        return False
    return db.execute("SELECT 1 FROM runs WHERE experiment_id = 0 LIMIT 1").fetchone() is None
