"""Prediction-log retention: compact a day's files, drop its raw inputs (keeping daily profiles), delete it.

A partition is ``root/model=<name>/date=<YYYY-MM-DD>/``. Compaction and dropping inputs rewrite the
partition through ``swap`` (write new, then rename), so readers and a killed pass only ever see the
old partition or the new one, and a row is never in both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from shipyard import swap
from shipyard.domain.retention import RetentionAction
from shipyard.predlog import FEATURE_PREFIX

if TYPE_CHECKING:
    from shipyard.config import PredictionRetention

COMPACTED = "part-00000000T000000000000Z-compacted.parquet"
PROFILE = "profile-v{version}.json.gz"  # the daily aggregate profile of one version's inputs and scores
RULE = "retention.predictions."
KINDS = ("compact", "drop_inputs", "delete_partition")


@dataclass(frozen=True, slots=True)
class Partition:
    model: str
    day: str
    folder: Path

    @property
    def subject(self) -> str:
        return f"{self.model}/date={self.day}"

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet"))


def partitions(root: Path) -> list[Partition]:
    found: list[Partition] = []
    if not root.is_dir():
        return found
    for model_folder in sorted(root.glob("model=*")):
        model = unquote(model_folder.name.removeprefix("model="))
        for day_folder in sorted(model_folder.glob("date=*")):
            if day_folder.is_dir():
                found.append(Partition(model, day_folder.name.removeprefix("date="), day_folder))
    return found


def recover(root: Path) -> list[str]:
    """Finish or discard partition rewrites a killed pass left half done."""
    touched: list[str] = []
    if root.is_dir():
        for model_folder in sorted(root.glob("model=*")):
            touched += [f"{model_folder.name}/{name}" for name in swap.recover(model_folder)]
    return touched


def _age_days(day: str, now: datetime) -> float:
    """How long ago the day ended, in seconds."""
    end = datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC) + timedelta(days=1)
    return (now - end).total_seconds()


def _input_bytes(files: list[Path]) -> tuple[bool, int]:
    """Whether any file still holds raw inputs, and the compressed bytes those columns take."""
    import pyarrow.parquet as pq

    present, total = False, 0
    for path in files:
        metadata = pq.ParquetFile(path).metadata
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for column in range(row_group.num_columns):
                chunk = row_group.column(column)
                if chunk.path_in_schema.startswith(FEATURE_PREFIX):
                    present = True
                    total += chunk.total_compressed_size
    return present, total


def plan(root: Path, spec: PredictionRetention, now: datetime) -> list[RetentionAction]:
    actions: list[RetentionAction] = []
    for part in partitions(root):
        try:
            age = _age_days(part.day, now)
        except ValueError:
            continue  # not a partition the log wrote
        files = part.files()
        common: dict[str, Any] = {"model": part.model, "day": part.day, "subject": part.subject}
        if spec.delete_after is not None and age >= spec.delete_after:
            reason = f"older than {spec.delete_after / 86400:g} days"
            actions.append(RetentionAction(kind="delete_partition", rule=RULE + "delete_after", reason=reason,
                                           bytes_freed=swap.size(part.folder), **common))  # fmt: skip
            continue
        if not files:
            continue
        if spec.drop_inputs_after is not None and age >= spec.drop_inputs_after:
            present, freed = _input_bytes(files)
            if present:
                reason = f"raw inputs older than {spec.drop_inputs_after / 86400:g} days; a daily profile per version is kept"
                actions.append(RetentionAction(kind="drop_inputs", rule=RULE + "drop_inputs_after", reason=reason,
                                               bytes_freed=freed, **common))  # fmt: skip
                continue
        if spec.compact_after is not None and age >= spec.compact_after and len(files) > 1:
            reason = f"{len(files)} files of a day older than {spec.compact_after / 86400:g} days become one"
            # Counted: every file's bytes beyond its compressed column data (footers, headers). Not counted: the
            # better compression of one larger file, so this is a lower bound.
            overhead = sum(p.stat().st_size for p in files) - _data_bytes(files)
            actions.append(RetentionAction(kind="compact", rule=RULE + "compact_after", reason=reason,
                                           bytes_freed=max(0, overhead), **common))  # fmt: skip
    return actions


def _data_bytes(files: list[Path]) -> int:
    import pyarrow.parquet as pq

    total = 0
    for path in files:
        metadata = pq.ParquetFile(path).metadata
        for i in range(metadata.num_row_groups):
            group = metadata.row_group(i)
            total += sum(group.column(c).total_compressed_size for c in range(group.num_columns))
    return total


def still_due(root: Path, action: RetentionAction) -> bool:
    """Whether the action's effect is not on disk yet (a re-run after a kill skips what is done)."""
    folder = _folder(root, action)
    if action.kind == "delete_partition":
        return folder.exists()
    files = sorted(folder.glob("part-*.parquet"))
    if action.kind == "drop_inputs":
        return bool(files) and _input_bytes(files)[0]
    return len(files) > 1


def _folder(root: Path, action: RetentionAction) -> Path:
    if action.model is None or action.day is None:
        raise ValueError(f"a prediction-log action needs a model and a day: {describe(action)}")
    return _model_folder(root, action.model) / f"date={action.day}"


def _model_folder(root: Path, model: str) -> Path:
    # As the log names it: pyarrow's hive partitioning URI-decodes segments, so any model name round-trips.
    return root / f"model={quote(model, safe='')}"


def apply(root: Path, action: RetentionAction) -> dict[str, Any]:
    """Carry one planned action out; returns what it did, for the audit event."""
    folder = _folder(root, action)
    if action.kind == "delete_partition":
        files = len(list(folder.glob("part-*.parquet")))
        swap.remove(folder)
        return {"files": files}
    return _rewrite(folder, drop_inputs=action.kind == "drop_inputs")


def _rewrite(folder: Path, *, drop_inputs: bool) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(folder.glob("part-*.parquet"))
    tables = [pq.read_table(path) for path in files]
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    table = table.sort_by("received_at")
    new = swap.begin(folder)
    details: dict[str, Any] = {"files": len(files), "rows": table.num_rows}
    for kept in folder.glob(PROFILE.format(version="*")):  # profiles of rows whose inputs went earlier
        (new / kept.name).write_bytes(kept.read_bytes())
    if drop_inputs:
        dropped = [name for name in table.column_names if name.startswith(FEATURE_PREFIX)]
        details["profiles"] = _write_profiles(table, new)
        details["dropped_columns"] = len(dropped)
        table = table.drop_columns(dropped)
    target = new / COMPACTED
    pq.write_table(table, target, compression="zstd")
    for path in new.iterdir():
        swap.fsync(path)
    swap.commit(folder)
    return details


def _write_profiles(table: Any, folder: Path) -> list[int]:
    """One aggregate profile per version of the day's answered, non-shadow rows: what drift views read
    once the raw inputs are gone."""
    import numpy as np

    from shipyard.monitoring.profile import build_profile, save_profile

    frame = table.to_pandas()
    versions: list[int] = []
    for version, rows in frame.groupby("version"):
        answered = rows[(rows["status"] == 200) & (rows["routing"] != "shadow")]
        features = answered[[c for c in answered.columns if c.startswith(FEATURE_PREFIX)]]
        features = features.rename(columns=lambda c: c.removeprefix(FEATURE_PREFIX))
        scores = np.asarray(answered["score"], dtype=float)
        profile = build_profile(features, scores=scores)
        profile.extra.update({"day": str(rows["received_at"].iloc[0].date()), "source": "retention.drop_inputs"})
        save_profile(profile, folder / PROFILE.format(version=int(version)))
        versions.append(int(version))
    return versions


def daily_profiles(root: Path, model: str, version: int, since: datetime | None, until: datetime | None) -> list[Path]:
    """The daily profiles retention kept for ``model``/``version`` in the window (whole days that overlap it)."""
    folder = _model_folder(root, model)
    first = None if since is None else since.astimezone(UTC).date().isoformat()
    last = None if until is None else until.astimezone(UTC).date().isoformat()
    found = []
    for day_folder in sorted(folder.glob("date=*")):
        day = day_folder.name.removeprefix("date=")
        if (first is None or day >= first) and (last is None or day <= last):
            path = day_folder / PROFILE.format(version=version)
            if path.is_file():
                found.append(path)
    return found


def describe(action: RetentionAction) -> str:
    return json.dumps(action.to_dict())
