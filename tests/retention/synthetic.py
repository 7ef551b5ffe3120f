"""A prediction log of many days, written by the real log writer, and a snapshot of what it holds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from shipyard.predlog import PredictionLog


def churn_features(rng: np.random.Generator, rows: int) -> dict[str, Any]:
    return {"tenure": rng.integers(0, 60, rows), "plan": rng.choice(["basic", "pro"], rows)}


def write_log(
    root: Path,
    *,
    end: datetime,
    days: int,
    files_per_day: int = 3,
    rows: int = 8,
    model: str = "churn",
    features: Callable[[np.random.Generator, int], dict[str, Any]] = churn_features,
) -> list[str]:
    """``days`` days of two versions' traffic up to the day before ``end``; each day is files_per_day flushes
    of one file per version, each a model call of ``rows`` rows that took 1 ms."""
    rng = np.random.default_rng(7)
    ids: list[str] = []
    log = PredictionLog(root)
    for day in range(days, 0, -1):
        start = end - timedelta(days=day)
        for part in range(files_per_day):
            for version in (1, 2):
                at = start.replace(hour=1 + part, minute=version)
                request_ids = [f"d{day}-p{part}-v{version}-{i}" for i in range(rows)]
                ids += request_ids
                log.append(
                    model=model,
                    version=version,
                    request_ids=request_ids,
                    received_at=[at.timestamp()] * rows,
                    routing=["champion"] * rows,
                    features=features(rng, rows),
                    predictions=rng.integers(0, 2, rows),
                    scores=rng.random(rows),
                    latency_ms=[2.0] * rows,
                    status=[200] * rows,
                    model_ms=[1.0] * rows,
                )
            log.flush()
    log.close()
    return ids


def snapshot(root: Path) -> dict[str, Any]:
    """Per partition: its file names, columns and request ids (what "the same end state" compares)."""
    import pyarrow.parquet as pq

    state: dict[str, Any] = {}
    for folder in sorted(root.glob("model=*/date=*")):
        files = sorted(p.name for p in folder.iterdir())
        tables = [pq.read_table(p) for p in sorted(folder.glob("part-*.parquet"))]
        columns = sorted({c for t in tables for c in t.column_names})
        ids = sorted(i for t in tables for i in t.column("request_id").to_pylist())
        state[folder.relative_to(root).as_posix()] = (files, columns, ids)
    hidden = sorted(p.name for p in root.glob("model=*/.*"))
    return {"partitions": state, "leftovers": hidden}


def set_retention(project: Path, retention: dict[str, Any]) -> None:
    config = project / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["retention"] = retention
    config.write_text(yaml.safe_dump(data, sort_keys=False))


LOG_RULES = {"predictions": {"compact_after": "1d", "drop_inputs_after": "30d", "delete_after": "90d"}}
