"""What each model costs: CPU time predicting, predictions served, and the storage it holds.

CPU time comes from the prediction log: each row carries the model time of the call it was in
(``model_ms``) and that call's row count (``batch_rows``), so a row's share is their quotient and a
batch is counted once, whatever its size. A sampled log keeps a share of the rows: each kept row
stands for ``1 / sample_rate`` of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shipyard.location import Location


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCost:
    model: str
    cpu_seconds: float  # predicting, shadow calls included (they cost CPU too)
    predictions: float  # answered, non-shadow rows, scaled by the sampling rate
    logged_rows: int  # rows the log holds in the window
    unattributed_rows: int  # rows written before batch sizes were logged: counted as one-row calls
    artifact_bytes: int  # model files of every version, cold archives included
    log_bytes: int
    lineage_bytes: int

    @property
    def cpu_seconds_per_1000(self) -> float | None:
        return self.cpu_seconds / self.predictions * 1000.0 if self.predictions else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "cpu_seconds": round(self.cpu_seconds, 6),
            "predictions": round(self.predictions, 3),
            "cpu_seconds_per_1000": None if self.cpu_seconds_per_1000 is None else round(self.cpu_seconds_per_1000, 6),
            "logged_rows": self.logged_rows,
            "unattributed_rows": self.unattributed_rows,
            "storage_bytes": {"artifacts": self.artifact_bytes, "prediction_log": self.log_bytes, "lineage": self.lineage_bytes},
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Costs:
    since: datetime
    until: datetime
    models: tuple[ModelCost, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(), "models": [m.to_dict() for m in self.models]}


def usage(log_root: Location | Path, model: str, since: datetime, until: datetime) -> tuple[float, float, int, int]:
    """CPU seconds, predictions served, rows logged and rows without a batch size, for one model."""
    import numpy as np

    from shipyard.predlog import read_log

    columns = ["model_ms", "batch_rows", "sample_rate", "status", "routing"]
    table = read_log(log_root, model=model, since=since, until=until, columns=columns)
    if table.num_rows == 0:
        return 0.0, 0.0, 0, 0

    def numbers(name: str, missing: float) -> Any:
        values = np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=float)
        return np.where(np.isnan(values), missing, values)

    model_ms = numbers("model_ms", 0.0)
    batch = np.asarray(table.column("batch_rows").to_numpy(zero_copy_only=False), dtype=float)
    unattributed = int(np.isnan(batch).sum())
    batch = np.where(np.isnan(batch) | (batch < 1), 1.0, batch)
    weight = 1.0 / numbers("sample_rate", 1.0)
    cpu = float(np.sum(model_ms / batch * weight)) / 1000.0
    status = np.asarray(table.column("status").to_numpy(zero_copy_only=False))
    routing = np.asarray(table.column("routing").to_numpy(zero_copy_only=False), dtype=object)
    served = (status == 200) & (routing != "shadow")
    return cpu, float(np.sum(weight[served])), table.num_rows, unattributed


def folder_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def lineage_bytes(lineage_dir: Location | Path, models: Iterable[str]) -> dict[str, int]:
    """Bytes of the recorded OpenLineage events per model (a job is named ``<model>.<step>``)."""
    from shipyard.lineage import event_lines

    wanted = set(models)
    sizes = dict.fromkeys(wanted, 0)
    for line in event_lines(lineage_dir):
        try:
            job = json.loads(line).get("job", {}).get("name", "")
        except ValueError:
            continue
        owner = str(job).rpartition(".")[0]
        if owner in wanted:
            sizes[owner] += len(line) + 1  # with its newline, as the JSONL file holds it
    return sizes


def log_bytes(log_root: Location | Path, model: str) -> int:
    return (Location.of(log_root) / f"model={quote(model, safe='')}").size()
