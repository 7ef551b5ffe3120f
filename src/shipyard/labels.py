"""Ground truth: labels joined to the prediction log by request id or entity key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import InvalidSpec
from shipyard.location import Location

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


@dataclass(frozen=True, slots=True, kw_only=True)
class Ingested:
    model: str
    file: str
    sha256: str
    rows: int
    matched: int
    unmatched: int
    key: str
    path: str | None
    stored: int = 0  # request labels written by this ingest
    unchanged: int = 0  # requests already labelled the same way (an ingest is idempotent per request id)
    changed: int = 0  # requests whose label this ingest corrected (the latest label counts)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def ingest(
    path: Path,
    *,
    model: str,
    log_root: Location | Path,
    labels_root: Location | Path,
    label_column: str,
    entity_key: str | None = None,
    positive_label: str | int | bool | None = None,
    task: str = "binary",
    classes: list[str] | None = None,
) -> Ingested:
    """Match each label to logged predictions and append the new ones under ``labels_root/model=<name>/``.

    A row is matched by ``request_id`` when the file has that column, else by the entity key
    (a feature the gateway logged, e.g. ``customer_id``): every logged request of that entity
    then carries the label. Unmatched labels are counted, not stored, so a later ingest of the
    same file after the predictions are logged still counts them once. A request already
    labelled the same way is not stored again, so ingesting a file twice changes nothing.
    ``label_column`` holds the outcome as the training data does. Its type follows the ``task``: a
    binary outcome is 0/1 (or, with ``positive_label``, class names: the positive one becomes 1, any
    other 0), stored as int8; a regression's is a number, stored as float64; a multiclass one is a
    class name, stored as text (checked against ``classes``, the model's label set, when known).
    """
    import pandas as pd
    import pyarrow as pa

    from shipyard.data import read_frame, sha256_file
    from shipyard.predlog import FEATURE_PREFIX, read_log

    frame = read_frame(path, what="label file", hint="Pass a CSV or Parquet file with request_id (or an entity key) and label.")
    column = label_column
    if column not in frame.columns:
        raise InvalidSpec(
            f"{path} has no label column {column!r} (columns: {', '.join(map(str, frame.columns))})",
            hint="The label column defaults to the model's target (data.target in shipyard.yaml); "
            "name another with --label-column.",
        )
    labels = _labels_for(frame[column], path=path, column=column, task=task, positive_label=positive_label, classes=classes)
    if "request_id" in frame.columns:
        key = "request_id"
    elif entity_key and entity_key in frame.columns:
        key = entity_key
    else:
        raise InvalidSpec(
            f"{path} has neither a request_id column nor the entity key {entity_key!r} "
            f"(columns: {', '.join(map(str, frame.columns))})",
            hint="Give each label the x-request-id of its prediction, or the model's id column.",
        )
    wanted = ["request_id"] if key == "request_id" else ["request_id", FEATURE_PREFIX + key]
    log = read_log(log_root, model=model, columns=wanted).to_pandas()
    if key == "request_id":
        joined = pd.DataFrame({"request_id": frame["request_id"].astype(str), "label": labels})
        joined = joined[joined["request_id"].isin(set(log["request_id"].astype(str)))]
        matched_labels = len(joined)
    else:
        keys = pd.DataFrame({"key": frame[key].astype(str), "label": labels}).drop_duplicates("key", keep="last")
        logged = pd.DataFrame({"request_id": log["request_id"].astype(str), "key": log[FEATURE_PREFIX + key].astype(str)})
        joined = logged.merge(keys, on="key", how="inner")[["request_id", "label"]]
        matched_labels = int(keys["key"].isin(set(logged["key"])).sum())
    joined = joined.drop_duplicates("request_id", keep="last")
    known = read_labels(labels_root, model).to_pandas()
    previous = dict(zip(known["request_id"], _as_stored(known["label"], task), strict=True))
    before = joined["request_id"].map(previous)
    unchanged = int((before == joined["label"]).sum())
    changed = int((before.notna() & (before != joined["label"])).sum())
    joined = joined[before.isna() | (before != joined["label"])]
    digest = sha256_file(path)
    written: str | None = None
    if len(joined):
        folder = Location.of(labels_root) / f"model={model}"
        now = datetime.now(UTC)
        table = pa.table(
            {
                "request_id": pa.array(joined["request_id"].to_numpy(dtype=object), pa.string()),
                "label": pa.array(joined["label"].to_numpy(), label_type(task)),
                "ingested_at": pa.array([now] * len(joined), pa.timestamp("us", tz="UTC")),
                "source_sha256": pa.array([digest] * len(joined), pa.string()),
            }
        )
        target = folder / f"part-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
        target.write_parquet(table)  # readers never see a half-written file
        written = str(target)
    return Ingested(
        model=model,
        file=str(path),
        sha256=digest,
        rows=len(frame),
        matched=matched_labels,
        unmatched=len(frame) - matched_labels,
        key=key,
        path=written,
        stored=len(joined),
        unchanged=unchanged,
        changed=changed,
    )


def label_type(task: str) -> pa.DataType:
    """How a task's label is stored: binary as 0/1 (int8, as every label file written before tasks), regression
    as the true value (float64), multiclass as the class name (text, integer-coded classes too, as the evidence
    names them)."""
    import pyarrow as pa

    return {"regression": pa.float64(), "multiclass": pa.string()}.get(task, pa.int8())


def _shown(values: Any, limit: int = 5) -> str:
    seen = list(dict.fromkeys(map(repr, values)))
    return ", ".join(seen[:limit]) + (f", … ({len(seen)} distinct)" if len(seen) > limit else "")


def _labels_for(
    raw: pd.Series,
    *,
    path: Path,
    column: str,
    task: str,
    positive_label: str | int | bool | None,
    classes: list[str] | None,
) -> pd.Series:
    """The label column as the task stores it, or a clear error naming the values that do not fit."""
    import numpy as np
    import pandas as pd

    hint = "Labels are the outcome the model predicts, as the training data's target holds it."
    numeric = pd.to_numeric(raw, errors="coerce")
    if task == "regression":
        bad = ~np.isfinite(numeric.to_numpy(dtype=float))
        if bad.any():
            raise InvalidSpec(
                f"{path}: {int(bad.sum())} labels in {column!r} are not numbers, and a regression's label is the true "
                f"value (values seen: {_shown(raw[bad])})",
                hint=hint,
            )
        return numeric.astype("float64")
    if task == "multiclass":
        if raw.isna().any():
            raise InvalidSpec(
                f"{path}: {int(raw.isna().sum())} labels in {column!r} are missing; a multiclass label is one of the "
                f"model's classes" + (f" ({', '.join(classes)})" if classes else ""),
                hint=hint,
            )
        whole = numeric.notna().all() and bool((numeric == numeric.round()).all())
        names = numeric.astype("int64").astype(str) if whole and raw.dtype.kind in "if" else raw.astype(str)
        if classes:
            unknown = ~names.isin(classes)
            if unknown.any():
                raise InvalidSpec(
                    f"{path}: {int(unknown.sum())} labels in {column!r} are not classes of the model "
                    f"(values seen: {_shown(names[unknown])}; expected one of {', '.join(classes)})",
                    hint=hint,
                )
        return names.astype(object)
    # Outcomes already written as 0/1 are taken as they are; class names go through positive_label.
    already_binary = bool(numeric.notna().all() and numeric.isin([0, 1]).all()) and positive_label not in (0, 1)
    if positive_label is not None and not already_binary:
        labels = (raw == positive_label).astype("int64").where(raw.notna())
    else:
        labels = numeric
    bad = labels.isna() | ~labels.isin([0, 1])
    if bad.any():
        first = raw[bad].iloc[0]
        expected = "0 or 1" if positive_label is None else f"a class of the target (positive: {positive_label!r})"
        raise InvalidSpec(
            f"{path}: {int(bad.sum())} labels in {column!r} are not {expected} (first: {first!r}; values seen: "
            f"{_shown(raw[bad])})",
            hint=hint,
        )
    return labels.astype("int8")


def _as_stored(labels: pd.Series, task: str) -> pd.Series:
    """Stored labels in the type this ingest compares with (files written before a task change still compare)."""
    if task == "regression":
        return labels.astype("float64")
    if task == "multiclass":
        return labels.astype(str)
    return labels.astype("int64")


def read_labels(labels_root: Location | Path, model: str) -> pa.Table:
    """request_id → label; the latest ingest wins for a request labelled twice.

    The label's type is the files': int8 (binary), float64 (regression) or text (multiclass); files of
    different types read as the widest (text over numbers, float over int8).
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as ds

    folder = Location.of(labels_root) / f"model={model}"
    files = [(folder / name).path for name in folder.entries(kind="file", prefix="part-", suffix=".parquet")]
    filesystem = folder.filesystem()
    label: pa.DataType = pa.int8()
    if files:
        fragments = ds.dataset(files, format="parquet", filesystem=filesystem).get_fragments()
        kinds = [fragment.physical_schema.field("label").type for fragment in fragments]
        if any(pa.types.is_string(t) or pa.types.is_large_string(t) for t in kinds):
            label = pa.string()
        elif any(pa.types.is_floating(t) for t in kinds):
            label = pa.float64()
    schema = pa.schema([("request_id", pa.string()), ("label", label), ("ingested_at", pa.timestamp("us", tz="UTC"))])
    if not files:
        return schema.empty_table()
    table = ds.dataset(files, format="parquet", schema=schema, filesystem=filesystem).to_table(columns=schema.names)
    order = pd.DataFrame(
        {
            "request_id": table.column("request_id").to_numpy(zero_copy_only=False),
            "at": table.column("ingested_at").cast(pa.int64()),
        }
    )
    keep = order.sort_values("at", kind="stable").drop_duplicates("request_id", keep="last").index.to_numpy()
    return table.take(pa.array(np.sort(keep)))
