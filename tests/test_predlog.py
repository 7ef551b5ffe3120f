"""The prediction log against real Parquet files in a temp folder."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from shipyard.predlog import PredictionLog, base_schema, find_request, read_log

# Two minutes before midnight UTC, so a batch can straddle two days.
LATE = datetime(2024, 3, 9, 23, 58, tzinfo=UTC)
NEXT_DAY = LATE + timedelta(minutes=5)


def append(
    log: PredictionLog,
    request_ids: Sequence[str],
    *,
    model: str = "churn",
    version: int = 1,
    at: datetime = LATE,
    routing: str = "champion",
    features: dict[str, Sequence[Any]] | None = None,
    scores: Sequence[float] | None = None,
) -> None:
    n = len(request_ids)
    log.append(
        model=model,
        version=version,
        request_ids=request_ids,
        received_at=[at.timestamp()] * n,
        routing=[routing] * n,
        features=features if features is not None else {"tenure": list(range(n))},
        predictions=[i % 2 for i in range(n)],
        scores=scores,
        latency_ms=[1.5] * n,
        status=[200] * n,
    )


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def parquet_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


def test_round_trip_across_models_and_days(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    log.append(
        model="churn",
        version=3,
        request_ids=["r1", "r1", "r2"],
        received_at=[LATE.timestamp(), LATE.timestamp(), NEXT_DAY.timestamp()],
        routing=["champion", "champion", "challenger"],
        features={
            "tenure": np.array([12, 30, 7]),
            "plan": np.array(["basic", None, "pro"], dtype=object),
            "churned_before": [True, False, None],
        },
        predictions=np.array([1, 0, 1]),
        scores=np.array([0.9, 0.2, 0.75]),
        latency_ms=[1.25, 1.25, 2.5],
        status=[200, 200, 200],
        model_ms=[0.5, 0.5, 0.75],
    )
    append(log, ["r3"], model="fraud", version=7, at=NEXT_DAY, features={"amount": [99.5]})

    assert log.flush() == 4
    assert (log.written_rows, log.pending_rows, log.dropped_rows, log.files_written) == (4, 0, 0, 3)
    folders = {path.parent.relative_to(tmp_path).as_posix() for path in parquet_files(tmp_path)}
    assert folders == {"model=churn/date=2024-03-09", "model=churn/date=2024-03-10", "model=fraud/date=2024-03-10"}
    assert all(path.name.startswith("part-") for path in parquet_files(tmp_path))

    churn = read_log(tmp_path, model="churn").sort_by([("received_at", "ascending"), ("f_tenure", "ascending")])
    assert churn.schema.names[: len(base_schema())] == base_schema().names
    for field in base_schema():
        assert churn.schema.field(field.name).type == field.type
    assert churn.schema.field("f_tenure").type == pa.int64()
    assert churn.schema.field("f_plan").type == pa.string()
    assert churn.schema.field("f_churned_before").type == pa.bool_()
    assert churn.to_pylist()[0] == {
        "request_id": "r1",
        "received_at": LATE,
        "model": "churn",
        "version": 3,
        "routing": "champion",
        "prediction": 1.0,
        "score": 0.9,
        "latency_ms": 1.25,
        "status": 200,
        "model_ms": 0.5,
        "batch_rows": 3,  # the batch of three rows that model_ms timed
        "sample_rate": 1.0,
        "f_tenure": 12,
        "f_plan": "basic",
        "f_churned_before": True,
    }
    assert churn.column("f_plan").to_pylist() == ["basic", None, "pro"]
    assert churn.column("routing").to_pylist() == ["champion", "champion", "challenger"]

    fraud = read_log(tmp_path, model="fraud")
    assert fraud.column("model_ms").to_pylist() == [None]  # not measured: null, as in logs that predate the column
    assert fraud.column("request_id").to_pylist() == ["r3"]
    assert fraud.column("score").to_pylist() == [None]
    assert fraud.column("f_amount").to_pylist() == [99.5]
    assert read_log(tmp_path).num_rows == 4


def test_model_names_that_need_escaping_round_trip(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    for model in ("team/churn", "2024"):
        append(log, [f"{model}-r"], model=model)
    log.flush()
    assert read_log(tmp_path, model="team/churn").column("model").to_pylist() == ["team/churn"]
    assert read_log(tmp_path, model="2024").column("request_id").to_pylist() == ["2024-r"]


def test_writer_flushes_when_the_row_bound_is_reached(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, flush_rows=10, flush_seconds=3600)
    log.start()
    try:
        append(log, [f"r{i}" for i in range(5)])
        append(log, [f"r{i}" for i in range(5, 10)])
        assert wait_for(lambda: log.written_rows == 10)
        assert read_log(tmp_path).num_rows == 10
    finally:
        log.close()


def test_writer_flushes_on_the_time_bound(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, flush_rows=1_000_000, flush_seconds=0.1)
    log.start()
    log.start()  # idempotent
    try:
        append(log, ["only"])
        assert wait_for(lambda: bool(parquet_files(tmp_path)))
        assert read_log(tmp_path).column("request_id").to_pylist() == ["only"]
        assert not list(tmp_path.rglob(".*.tmp"))
    finally:
        log.close()


def test_close_writes_everything_appended_by_concurrent_threads(tmp_path: Path) -> None:
    # A small row bound keeps the writer flushing while the threads append.
    log = PredictionLog(tmp_path, flush_rows=50, flush_seconds=0.05)
    log.start()
    threads, batches, rows = 4, 200, 8

    def produce(thread: int) -> None:
        for batch in range(batches):
            append(log, [f"t{thread}-b{batch}-{row}" for row in range(rows)])
            if thread == 0 and batch % 50 == 0:
                log.flush()  # an explicit flush racing the writer thread

    workers = [threading.Thread(target=produce, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    log.close()
    log.close()  # idempotent

    ids = read_log(tmp_path, columns=["request_id"]).column("request_id").to_pylist()
    assert len(ids) == threads * batches * rows
    assert len(set(ids)) == len(ids)
    assert (log.written_rows, log.pending_rows, log.dropped_rows) == (len(ids), 0, 0)
    with pytest.raises(RuntimeError, match="closed"):
        append(log, ["late"])


def test_close_without_start_writes_pending_rows(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, flush_seconds=3600) as log:
        append(log, ["a", "b"])
    assert log.written_rows == 2
    assert read_log(tmp_path).num_rows == 2


def test_sampling_keeps_whole_requests_and_the_configured_share(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, sample_rate=0.3, seed=7)
    requests = [f"req-{i}" for i in range(5000)]
    for start in range(0, len(requests), 50):
        chunk = requests[start : start + 50]
        append(log, [request for request in chunk for _ in range(3)])  # three rows per request
        append(log, chunk, routing="shadow")  # the same requests, answered again by a shadow
    log.flush()

    table = read_log(tmp_path, columns=["request_id", "routing"])
    per_request: dict[str, list[str]] = {}
    for request_id, routing in zip(table.column("request_id").to_pylist(), table.column("routing").to_pylist(), strict=True):
        per_request.setdefault(request_id, []).append(routing)
    assert all(sorted(kinds) == ["champion", "champion", "champion", "shadow"] for kinds in per_request.values())
    assert 0.27 < len(per_request) / len(requests) < 0.33

    again = PredictionLog(tmp_path / "again", sample_rate=0.3, seed=7)
    append(again, requests)
    again.flush()
    assert set(read_log(tmp_path / "again").column("request_id").to_pylist()) == set(per_request)


def test_sampling_at_zero_keeps_nothing(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, sample_rate=0.0)
    append(log, ["a", "b"])
    assert log.pending_rows == 0
    assert log.flush() == 0
    assert not tmp_path.joinpath("model=churn").exists()


def test_since_and_until_select_a_half_open_window(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    start = datetime(2024, 3, 9, 22, 0, tzinfo=UTC)
    for hour in range(5):  # 22:00 on the 9th to 02:00 on the 10th
        append(log, [f"h{hour}"], at=start + timedelta(hours=hour))
    log.flush()

    def ids(**window: Any) -> list[str]:
        return sorted(read_log(tmp_path, **window).column("request_id").to_pylist())

    assert ids(since=start + timedelta(hours=1)) == ["h1", "h2", "h3", "h4"]
    assert ids(until=start + timedelta(hours=2)) == ["h0", "h1"]
    assert ids(since=start + timedelta(hours=1), until=start + timedelta(hours=3)) == ["h1", "h2"]
    assert ids(since=datetime(2024, 3, 10, 1, 0)) == ["h3", "h4"]  # naive means UTC
    assert ids(since=start + timedelta(days=1)) == []
    assert ids(model="other") == []


def test_read_log_of_a_missing_folder_is_empty_with_the_base_schema(tmp_path: Path) -> None:
    table = read_log(tmp_path / "nothing")
    assert table.num_rows == 0
    assert table.schema == base_schema()
    assert read_log(tmp_path / "nothing", columns=["request_id", "f_x"]).column_names == ["request_id", "f_x"]
    assert find_request(tmp_path / "nothing", "r1") == []


def test_find_request_returns_champion_and_shadow_rows(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    append(log, ["r1", "r2"], version=1, scores=[0.8, 0.4])
    log.flush()
    append(log, ["r1"], version=2, routing="shadow", at=LATE + timedelta(seconds=1), scores=[0.6])
    append(log, ["r3"], model="fraud")
    log.flush()

    rows = find_request(tmp_path, "r1")
    assert [(row["routing"], row["version"], row["score"]) for row in rows] == [("champion", 1, 0.8), ("shadow", 2, 0.6)]
    assert rows[0]["received_at"] == LATE
    assert find_request(tmp_path, "missing") == []


def test_overflow_drops_the_oldest_batches_and_counts_them(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, max_pending_rows=10)
    for batch in range(4):
        append(log, [f"b{batch}-{row}" for row in range(4)])
    assert (log.pending_rows, log.dropped_rows) == (8, 8)
    assert log.flush() == 8
    ids = read_log(tmp_path).column("request_id").to_pylist()
    assert sorted({request_id.split("-")[0] for request_id in ids}) == ["b2", "b3"]


def test_batches_with_different_features_fill_nulls(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    append(log, ["a"], features={"tenure": [3], "plan": ["pro"]})
    append(log, ["b"], features={"tenure": [5], "region": ["eu"]})
    log.flush()
    append(log, ["c"], features={"tenure": [2.5], "device": ["ios"]})  # a later file with another feature set
    log.flush()

    table = read_log(tmp_path).sort_by("request_id")
    assert table.column_names[len(base_schema()) :] == ["f_tenure", "f_plan", "f_region", "f_device"]
    assert table.column("f_plan").to_pylist() == ["pro", None, None]
    assert table.column("f_region").to_pylist() == [None, "eu", None]
    assert table.column("f_device").to_pylist() == [None, None, "ios"]
    assert table.column("f_tenure").to_pylist() == [3.0, 5.0, 2.5]


COLUMNS = ["received_at", "routing", "predictions", "scores", "latency_ms", "status", "features"]


@pytest.mark.parametrize("short", COLUMNS)
def test_append_with_mismatched_lengths_raises(tmp_path: Path, short: str) -> None:
    log = PredictionLog(tmp_path)
    arguments: dict[str, Any] = {
        "received_at": [LATE.timestamp()] * 2,
        "routing": ["champion"] * 2,
        "predictions": [1, 0],
        "scores": [0.7, 0.1],
        "latency_ms": [1.0, 1.0],
        "status": [200, 200],
        "features": {"tenure": [1, 2]},
    }
    arguments[short] = {"tenure": [1]} if short == "features" else arguments[short][:1]
    with pytest.raises(ValueError, match="one value per request id"):
        log.append(model="churn", version=1, request_ids=["a", "b"], **arguments)
    assert log.pending_rows == 0


def test_a_failed_write_keeps_rows_for_the_next_flush(tmp_path: Path) -> None:
    root = tmp_path / "log"
    root.write_text("a file where the log folder should be")
    log = PredictionLog(root)
    append(log, ["a", "b"])
    with pytest.raises(OSError):
        log.flush()
    assert (log.pending_rows, log.written_rows, log.dropped_rows) == (2, 0, 0)
    root.unlink()
    assert log.flush() == 2
    assert read_log(root).num_rows == 2


def test_rows_that_cannot_be_converted_are_dropped_and_counted(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    append(log, ["a", "b"], features={"tenure": [1, "one"]})
    append(log, ["c"], model="fraud")
    assert log.flush() == 1
    assert (log.dropped_rows, log.pending_rows) == (2, 0)


def test_importing_the_log_does_not_load_pyarrow() -> None:
    code = "import sys, json; import shipyard.predlog; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout))
    assert loaded.isdisjoint({"pyarrow", "numpy", "pandas"})


def test_a_log_file_written_before_model_times_reads_them_as_null(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    with PredictionLog(tmp_path) as log:
        append(log, ["old"], features={"tenure": [3]})
    (path,) = parquet_files(tmp_path)
    pq.write_table(pq.read_table(path).drop_columns(["model_ms"]), path)  # as an earlier gateway wrote it
    table = read_log(tmp_path, columns=["request_id", "model_ms"])
    assert table.to_pylist() == [{"request_id": "old", "model_ms": None}]
