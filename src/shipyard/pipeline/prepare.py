"""The configured data, labelled and split: what training and every check see."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.config import FeastSpec, ModelSpec, Settings
from shipyard.data import Dataset, load_dataset
from shipyard.domain.errors import InvalidSpec

if TYPE_CHECKING:
    import pandas as pd

HASH_SPACE = 2**64  # a row hashes to a 64-bit number; it is held out below holdout_fraction of this range


@dataclass(frozen=True, slots=True, kw_only=True)
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame
    method: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    """The configured data, labelled and split: what training and every check see."""

    dataset: Dataset
    features: list[str]
    parts: Split
    path: Path
    feature_store: dict[str, Any] | None = None  # a Feast-backed model's facts (features.repo.describe + the entity file)

    @property
    def sources(self) -> list[str]:
        """The lineage's data sources: the file, or the feature service, its feature views and the entity file."""
        facts = self.feature_store
        if not facts:
            return [self.dataset.uri]
        project = facts["project"]
        return [
            f"feast:{project}/feature_services/{facts['feature_service']}",
            *(f"feast:{project}/feature_views/{view['name']}" for view in facts["feature_views"]),
            facts["entities"]["path"],
        ]

    task: str = "binary"
    task_declared: bool = True
    target: str = ""


def feature_columns(spec: ModelSpec, frame: pd.DataFrame, source: str) -> list[str]:
    data = spec.data
    named = [data.target, data.time_column, data.id_column, *(data.features or [])]
    missing = [c for c in named if c is not None and c not in frame.columns]
    if missing:
        raise InvalidSpec(
            f"dataset {source} has no column {', '.join(map(repr, missing))}",
            hint=f"Columns present: {', '.join(map(str, frame.columns))}. Fix models.*.data in shipyard.yaml.",
        )
    if data.features:
        return list(data.features)
    excluded = {data.target, data.time_column, data.id_column}
    return [c for c in frame.columns if c not in excluded]


def split(spec: ModelSpec, frame: pd.DataFrame) -> Split:
    """Deterministic: by time when configured (the holdout is the newest rows), else by a seeded hash of each row.

    A row's side follows from the row alone (its id when the spec names an id column, else all its values), so
    rows appended later (a retrain on labelled traffic) never move an earlier row across: a retrained version's
    holdout holds none of the rows its champion trained on, and the champion comparison is not tilted its way.
    The hashed holdout is about ``holdout_fraction`` of the rows, not exactly.
    """
    import numpy as np
    import pandas as pd

    data = spec.data
    n_holdout = max(1, round(len(frame) * data.holdout_fraction))
    if n_holdout >= len(frame):
        raise InvalidSpec(f"dataset has {len(frame)} rows; too few to hold out {data.holdout_fraction:.0%} and train")
    if data.time_column:
        keys = [data.time_column] + ([data.id_column] if data.id_column else [])
        ordered = frame.sort_values(keys, kind="mergesort").reset_index(drop=True)
        cut = len(ordered) - n_holdout
        return Split(train=ordered.iloc[:cut], holdout=ordered.iloc[cut:], method=f"time:{data.time_column}")
    identity = frame[[data.id_column]] if data.id_column else frame
    hashes = pd.util.hash_pandas_object(identity, index=False, hash_key=f"{data.seed & (2**64 - 1):016x}")
    held = hashes.to_numpy() < np.uint64(int(HASH_SPACE * data.holdout_fraction))
    holdout, train = frame[held].reset_index(drop=True), frame[~held].reset_index(drop=True)
    if holdout.empty or train.empty:
        raise InvalidSpec(
            f"dataset has {len(frame)} rows; the seeded split put {len(holdout)} in the holdout and {len(train)} in training",
            hint="Add rows, or change data.seed or data.holdout_fraction in shipyard.yaml.",
        )
    return Split(train=train, holdout=holdout, method=f"hash:seed={data.seed}")


def check_binary_target(spec: ModelSpec, parts: Split) -> None:
    target = spec.data.target
    for name, part in (("training", parts.train), ("holdout", parts.holdout)):
        values = set(part[target].dropna().unique().tolist())
        if not values <= {0, 1} or len(values) < 2:
            raise InvalidSpec(
                f"target {target!r} in the {name} rows has values {sorted(map(str, values))[:5]}; "
                "expected both classes of a binary 0/1 label",
            )


def _from_feature_store(settings: Settings, spec: ModelSpec, feast: FeastSpec, entities: Path | None) -> Prepared:
    """The entity file joined point-in-time with the feature service; split by its event time unless told otherwise."""
    from shipyard.features import training_frame

    built = training_frame(settings.root, feast, entities=entities)
    frame = built.frame
    source = str(built.entity_path)
    feature_columns(spec, frame, source)  # the configured target and columns exist
    if spec.data.features:
        features = list(spec.data.features)
    else:  # the service's features, and any request-time columns the entity file carries besides keys, time and label
        excluded = {spec.data.target, spec.data.id_column, spec.data.time_column, feast.event_timestamp, *built.join_keys}
        extra = [c for c in frame.columns if c not in excluded and c not in built.features]
        features = [*built.features, *extra]
    if spec.data.positive_label is not None:
        frame[spec.data.target] = (frame[spec.data.target] == spec.data.positive_label).astype("int64")
    timed = (
        spec
        if spec.data.time_column
        else spec.model_copy(update={"data": spec.data.model_copy(update={"time_column": feast.event_timestamp})})
    )
    task, declared = resolve_task(spec, frame)
    parts = split(timed, frame)
    if task == "binary":
        check_binary_target(spec, parts)
    uri = f"feast:{built.facts['project']}/{built.facts['feature_service']}"
    return Prepared(
        dataset=Dataset(frame=frame, uri=uri, fingerprint=built.fingerprint),
        features=features,
        parts=parts,
        path=built.entity_path,
        feature_store=built.facts,
        task=task,
        task_declared=declared,
        target=spec.data.target,
    )


def resolve_task(spec: ModelSpec, frame: pd.DataFrame) -> tuple[str, bool]:
    """The model's task and whether it was declared; an inferred one is read from the target's values."""
    from shipyard.checks.targets import check_target, infer_task

    target = spec.data.target
    declared = spec.task is not None or spec.data.positive_label is not None
    task = spec.task or ("binary" if spec.data.positive_label is not None else infer_task(frame[target]))
    check_target(task, frame[target], column=target, declared=declared)
    if not declared and spec.primary_metric is not None:
        from shipyard.domain.tasks import metric_error

        problem = metric_error(task, spec.primary_metric)
        if problem is not None:
            raise InvalidSpec(
                f"primary_metric: {problem} (the task was inferred from target {target!r})",
                hint="Declare models.*.task in shipyard.yaml, or name a metric of that task.",
            )
    return task, declared


def prepare(settings: Settings, spec: ModelSpec, data_path: Path | None = None) -> Prepared:
    """``data_path`` replaces the configured file (for a Feast-backed model: the entity file)."""
    if spec.data.feast is not None:
        return _from_feature_store(settings, spec, spec.data.feast, data_path)
    data_path = data_path or settings.resolve(spec.data.source)
    dataset = load_dataset(data_path)
    features = feature_columns(spec, dataset.frame, str(data_path))
    frame = dataset.frame
    if spec.data.positive_label is not None:
        frame = frame.copy()
        frame[spec.data.target] = (frame[spec.data.target] == spec.data.positive_label).astype("int64")
    task, declared = resolve_task(spec, frame)
    parts = split(spec, frame)
    if task == "binary":
        check_binary_target(spec, parts)
    return Prepared(
        dataset=Dataset(frame=frame, uri=dataset.uri, fingerprint=dataset.fingerprint),
        features=features,
        parts=parts,
        path=data_path,
        task=task,
        task_declared=declared,
        target=spec.data.target,
    )


def with_model_features(prepared: Prepared, model: Any, source: str) -> Prepared:
    """A model trained elsewhere may use fewer columns than configured: score it on its own."""
    from dataclasses import replace

    wanted = getattr(model, "feature_names_in_", None)
    if wanted is None:
        return prepared
    names = [str(name) for name in wanted]
    missing = [name for name in names if name not in prepared.dataset.frame.columns]
    if missing:
        raise InvalidSpec(
            f"the model at {source} needs columns the configured data lacks: {', '.join(missing)}",
            hint="Point models.*.data.path in shipyard.yaml at data with those columns.",
        )
    return replace(prepared, features=names)
