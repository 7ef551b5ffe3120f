"""A Feast repository as a training source: the point-in-time training frame and the facts recorded about it."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.data import read_frame, sha256_file
from shipyard.domain.errors import BackendUnavailable, InvalidSpec, NotFound

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureService, FeatureStore

    from shipyard.config import FeastSpec

STORE_FILE = "feature_store.yaml"
_ROW = "__shipyard_row"  # the entity file's row order, which Feast's join does not keep


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureSource:
    """Where a model's features live: a Feast repository (absolute here, relative in the config) and a feature service."""

    repo: Path
    feature_service: str

    @classmethod
    def of(cls, root: Path, spec: FeastSpec) -> FeatureSource:
        repo = Path(spec.repo)
        return cls(repo=repo if repo.is_absolute() else root / repo, feature_service=spec.feature_service)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingFrame:
    frame: pd.DataFrame
    features: list[str]  # the feature service's features, in its order
    join_keys: list[str]
    facts: dict[str, Any]  # the `feature_store` evidence: service, views with versions and hashes, stores, entity file
    fingerprint: str  # of the entity file, the views' definitions and their local source files
    entity_path: Path = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Materialized:
    """A materialization into the online store: which views, over which times, into which store."""

    model: str
    project: str
    feature_service: str
    online_store: str
    end: str
    feature_views: list[dict[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "project": self.project,
            "feature_service": self.feature_service,
            "online_store": self.online_store,
            "end": self.end,
            "feature_views": self.feature_views,
        }


def open_store(source: FeatureSource) -> FeatureStore:
    """The repository's FeatureStore; a folder without feature_store.yaml is one clear error."""
    if not (source.repo / STORE_FILE).is_file():
        raise NotFound(
            f"no Feast repository at {source.repo}: {STORE_FILE} is missing",
            hint="Point models.*.data.feast.repo in shipyard.yaml at the folder that holds feature_store.yaml.",
        )
    # Importing Feast sets PROMETHEUS_MULTIPROC_DIR for this process (feast.metrics), which tells prometheus_client
    # that a gateway's own in-memory metrics are multi-process ones: it then warns at every label removal. The
    # variable is taken back unless it was set before.
    preset = "PROMETHEUS_MULTIPROC_DIR" in os.environ
    from feast import FeatureStore

    if not preset:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    try:
        return FeatureStore(repo_path=str(source.repo))
    except Exception as exc:  # Feast raises pydantic, YAML and its own errors for a bad feature_store.yaml
        raise InvalidSpec(f"{source.repo / STORE_FILE} is not a usable Feast configuration: {exc}") from exc


def service(store: FeatureStore, source: FeatureSource) -> FeatureService:
    from feast.errors import FeastObjectNotFoundException

    try:
        return store.get_feature_service(source.feature_service)
    except FeastObjectNotFoundException as exc:
        known = ", ".join(sorted(s.name for s in store.list_feature_services())) or "none"
        raise NotFound(
            f"feature service {source.feature_service!r} is not in the Feast registry of {source.repo}",
            hint=f"Registered feature services: {known}. Run `feast -c {source.repo} apply` after changing its definitions.",
        ) from exc


def apply(repo: Path) -> str:
    """`feast apply` in the repository (Feast imports its definition files, so it runs in a child process)."""
    done = subprocess.run(
        [sys.executable, "-m", "feast.cli.cli", "--chdir", str(repo), "apply"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise InvalidSpec(f"`feast apply` in {repo} failed: {(done.stderr or done.stdout).strip()[-2000:]}")
    return done.stdout


def unreachable(exc: BaseException) -> bool:
    """A store that cannot be reached (a socket error, or a Redis client's connection or timeout error)."""
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    return type(exc).__module__.startswith("redis") and bool(names & {"ConnectionError", "TimeoutError"})


def _view_hash(view: Any) -> str:
    return hashlib.sha256(view.to_proto().spec.SerializeToString(deterministic=True)).hexdigest()


def describe(store: FeatureStore, source: FeatureSource) -> dict[str, Any]:
    """The feature service, each feature view with its version and definition hash, and the stores they live in."""
    found = service(store, source)
    views = []
    for projection in found.feature_view_projections:
        view = store.get_feature_view(projection.name)
        batch = view.batch_source
        path = getattr(batch, "path", None)
        views.append(
            {
                "name": view.name,
                "version": view.current_version_number,
                "hash": _view_hash(view),
                "features": [f.name for f in projection.features] or [f.name for f in view.features],
                "entities": list(view.entities),
                "join_keys": [store.get_entity(name).join_key for name in view.entities],
                "ttl_seconds": view.ttl.total_seconds() if view.ttl else None,
                "source": {"type": type(batch).__name__, "path": path} if batch is not None else None,
            }
        )
    return {
        "project": store.project,
        "feature_service": found.name,
        "feature_views": views,
        "offline_store": store.config.offline_store.type,
        "online_store": store.config.online_store.type,
    }


def service_features(facts: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The service's feature names (in order) and the entity join keys it needs."""
    features: list[str] = []
    keys: list[str] = []
    for view in facts["feature_views"]:
        features += [f for f in view["features"] if f not in features]
        keys += [k for k in view["join_keys"] if k not in keys]
    return features, keys


def _sources_digest(repo: Path, facts: dict[str, Any]) -> dict[str, str]:
    digests = {}
    for view in facts["feature_views"]:
        path = (view.get("source") or {}).get("path")
        if path and "://" not in path:
            local = Path(path) if Path(path).is_absolute() else repo / path
            if local.is_file():
                digests[view["name"]] = sha256_file(local)
    return digests


def training_frame(root: Path, spec: FeastSpec, *, entities: Path | None = None) -> TrainingFrame:
    """Each entity row with the service's feature values as of its event time, never later (Feast's point-in-time join)."""
    import pandas as pd

    source = FeatureSource.of(root, spec)
    entity_path = entities or (Path(spec.entities) if Path(spec.entities).is_absolute() else root / spec.entities)
    hint = "Check models.*.data.feast.entities in shipyard.yaml."
    rows = read_frame(entity_path, what="entity file", hint=hint)
    store = open_store(source)
    found = service(store, source)
    facts = describe(store, source)
    features, keys = service_features(facts)
    wanted = [*keys, spec.event_timestamp]
    missing = [c for c in wanted if c not in rows.columns]
    if missing:
        raise InvalidSpec(
            f"entity file {entity_path} has no column {', '.join(map(repr, missing))}",
            hint=f"Feature service {spec.feature_service!r} joins on {', '.join(keys)} as of `{spec.event_timestamp}`. "
            f"Columns present: {', '.join(map(str, rows.columns))}.",
        )
    entity_df = rows.copy()
    entity_df[_ROW] = range(len(entity_df))
    try:
        stamps = pd.to_datetime(entity_df[spec.event_timestamp], utc=True)
    except (ValueError, TypeError) as exc:
        raise InvalidSpec(f"column {spec.event_timestamp!r} of {entity_path} is not a time: {exc}", hint=hint) from exc
    entity_df = entity_df.drop(columns=[spec.event_timestamp]).assign(event_timestamp=stamps)
    try:
        joined = store.get_historical_features(entity_df=entity_df, features=found).to_df()
    except Exception as exc:  # Feast's own errors for bad sources, columns or types
        if unreachable(exc):
            raise BackendUnavailable(f"the offline store of {source.repo} could not be read: {exc}") from exc
        raise InvalidSpec(f"Feast could not build the training frame from {source.repo}: {exc}") from exc
    # Feast 0.67's file offline store drops an entity row whose entity has feature rows, all of them later than
    # the row's time (it keeps rows of entities it has never seen). Join its values back onto every entity row:
    # a row with nothing known yet keeps missing values, as the point-in-time join means.
    values = joined[[_ROW, *[name for name in features if name in joined.columns]]]
    frame = entity_df.merge(values, on=_ROW, how="left", validate="one_to_one")
    frame = frame.sort_values(_ROW, kind="mergesort").drop(columns=[_ROW]).reset_index(drop=True)
    frame = frame.rename(columns={"event_timestamp": spec.event_timestamp})
    entity_sha = sha256_file(entity_path)
    sources = _sources_digest(source.repo, facts)
    facts = {
        **facts,
        "repo": spec.repo,
        "entities": {"path": _relative(entity_path, root), "sha256": entity_sha, "rows": len(rows)},
        "rows_without_features": int(frame[features].isna().all(axis=1).sum()),
        "event_timestamp": spec.event_timestamp,
        "source_sha256": sources,
        "built_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    digest = hashlib.sha256(
        json.dumps(
            {"entities": entity_sha, "views": {v["name"]: v["hash"] for v in facts["feature_views"]}, "sources": sources},
            sort_keys=True,
        ).encode()
    ).hexdigest()
    return TrainingFrame(frame=frame, features=features, join_keys=keys, facts=facts, fingerprint=digest, entity_path=entity_path)


def _relative(path: Path, root: Path) -> str:
    """A path as stored: relative to the project when inside it, so nothing recorded depends on its folder."""
    resolved, base = path.resolve(), root.resolve()
    return resolved.relative_to(base).as_posix() if resolved.is_relative_to(base) else str(path)


def materialize(source: FeatureSource, *, end: datetime) -> dict[str, Any]:
    """Load the service's views into the online store, each from where its last materialization ended (or from the
    start of its offline data) up to ``end``."""
    from datetime import UTC

    store = open_store(source)
    facts = describe(store, source)
    done = []
    try:
        for name in (v["name"] for v in facts["feature_views"]):
            view = store.get_feature_view(name)
            start = view.most_recent_end_time or datetime(1970, 1, 1, tzinfo=UTC)
            with contextlib.redirect_stdout(io.StringIO()):  # Feast prints its progress; the caller reports
                store.materialize(start_date=start, end_date=end, feature_views=[name])
            done.append({"feature_view": name, "start": start.isoformat(), "end": end.isoformat()})
    except Exception as exc:
        if unreachable(exc):
            raise BackendUnavailable(
                f"the {facts['online_store']} online store of {source.repo} could not be written: {exc}",
                hint="Start the online store, or fix online_store in feature_store.yaml.",
            ) from exc
        raise
    return {
        "project": facts["project"],
        "feature_service": facts["feature_service"],
        "online_store": facts["online_store"],
        "end": end.isoformat(),
        "feature_views": done,
    }
