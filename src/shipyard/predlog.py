"""The prediction log: every answered batch, written to Parquet off the event loop.

`append` only keeps references; a writer thread converts pending batches
column-wise and writes one file per model, version and UTC day under
`root/model=<name>/date=<YYYY-MM-DD>/`. The root is a local folder or an
object-store prefix (`shipyard.location`); each file appears whole or not at all.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from shipyard.location import Location

if TYPE_CHECKING:
    import pyarrow as pa
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

FEATURE_PREFIX = "f_"
# A multiclass model's probability of each class, by the class's index in the model's label set: `p_0`, `p_1`, …
PROBABILITY_PREFIX = "p_"
_MICROS_PER_DAY = 86_400_000_000
_HASH_SPACE = 2**64


class _Batch(NamedTuple):
    model: str
    version: int
    request_ids: Sequence[str]
    received_at: Sequence[float]
    routing: Sequence[str]
    features: Mapping[str, Sequence[Any] | NDArray[Any]]
    predictions: Sequence[int | float] | NDArray[Any]
    scores: Sequence[float] | NDArray[Any] | None
    latency_ms: Sequence[float]
    status: Sequence[int]
    model_ms: Sequence[float] | None
    probabilities: NDArray[Any] | None  # rows × classes (multiclass), else None
    keep: list[int] | None  # rows that survived sampling; None keeps all
    rows: int  # rows kept


class PredictionLog:
    """Buffers predicted batches and writes them to Parquet from a background thread.

    The log keeps references to what `append` receives: callers must not mutate
    those sequences afterwards. Call `close()` on shutdown; it writes what is pending.
    """

    def __init__(
        self,
        root: Location | Path,
        *,
        flush_rows: int = 5000,
        flush_seconds: float = 1.0,
        sample_rate: float = 1.0,
        seed: int | None = None,
        max_pending_rows: int = 1_000_000,
    ) -> None:
        if flush_rows < 1 or max_pending_rows < 1:
            raise ValueError(f"flush_rows and max_pending_rows must be at least 1, got {flush_rows} and {max_pending_rows}")
        if not flush_seconds > 0:
            raise ValueError(f"flush_seconds must be positive, got {flush_seconds}")
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be between 0 and 1, got {sample_rate}")
        self.root = Location.of(root)
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.sample_rate = sample_rate
        self.max_pending_rows = max_pending_rows
        # Keyed hashing rather than a random stream: the decision depends only on the
        # request id, so a shadowed request's two batches are kept or dropped together.
        salt = os.urandom(16) if seed is None else seed.to_bytes(16, "little", signed=True)
        self._keyed = hashlib.blake2b(digest_size=8, key=salt)  # copied per id: cheaper than keying anew
        self._threshold = int(sample_rate * _HASH_SPACE)

        self._lock = threading.Lock()  # guards the queue and counters; held for O(1) work only
        self._queue: deque[_Batch] = deque()
        self._queued_rows = 0
        self._flush_lock = threading.Lock()  # one writer at a time, so flush() returns only when rows are on disk
        self._unwritten: list[tuple[str, str, pa.Table]] = []  # converted but failed to write; retried first
        self._unwritten_rows = 0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closed = False
        self._written_rows = 0
        self._dropped_rows = 0
        self._files_written = 0

    # -- counters -------------------------------------------------------------------

    @property
    def written_rows(self) -> int:
        return self._written_rows

    @property
    def dropped_rows(self) -> int:
        """Rows lost to overflow or to data that could not be converted (never sampled-out rows)."""
        return self._dropped_rows

    @property
    def files_written(self) -> int:
        return self._files_written

    @property
    def pending_rows(self) -> int:
        return self._queued_rows + self._unwritten_rows

    # -- the event loop's side ------------------------------------------------------

    def append(
        self,
        *,
        model: str,
        version: int,
        request_ids: Sequence[str],
        received_at: Sequence[float],
        routing: Sequence[str],
        features: Mapping[str, Sequence[Any] | NDArray[Any]],
        predictions: Sequence[int | float] | NDArray[Any],
        scores: Sequence[float] | NDArray[Any] | None,
        latency_ms: Sequence[float],
        status: Sequence[int],
        model_ms: Sequence[float] | None = None,
        probabilities: NDArray[Any] | None = None,
    ) -> None:
        """Record one predicted batch (`received_at` in epoch seconds); never blocks on I/O.

        `model_ms` is the model's own time for the batch each row was in (None: not measured);
        `probabilities` a multiclass model's rows × classes probabilities, logged as `p_<class index>`.
        """
        n = len(request_ids)
        if (
            len(received_at) != n
            or len(routing) != n
            or len(predictions) != n
            or (scores is not None and len(scores) != n)
            or len(latency_ms) != n
            or len(status) != n
            or (model_ms is not None and len(model_ms) != n)
            or (probabilities is not None and len(probabilities) != n)
            or any(len(values) != n for values in features.values())
        ):
            raise ValueError(f"every column of a batch needs one value per request id ({n}); got {_lengths_seen(locals())}")
        keep: list[int] | None = None
        if self._threshold < _HASH_SPACE:
            keep = self._sample(request_ids)
            if len(keep) == n:
                keep = None
        rows = n if keep is None else len(keep)
        batch = _Batch(
            model,
            version,
            request_ids,
            received_at,
            routing,
            features,
            predictions,
            scores,
            latency_ms,
            status,
            model_ms,
            probabilities,
            keep,
            rows,
        )
        with self._lock:
            # Checked under the lock: a batch accepted here is seen by close()'s final flush.
            if self._closed:
                raise RuntimeError(f"the prediction log at {self.root} is closed; append before close()")
            if rows == 0:
                return
            self._queue.append(batch)
            self._queued_rows += rows
            while self._queued_rows > self.max_pending_rows:
                # The writer is stalled: lose the oldest rows rather than memory or latency.
                dropped = self._queue.popleft()
                self._queued_rows -= dropped.rows
                self._dropped_rows += dropped.rows
            pending = self._queued_rows
        if pending >= self.flush_rows and not self._wake.is_set():
            self._wake.set()

    def _sample(self, request_ids: Sequence[str]) -> list[int]:
        keep: list[int] = []
        previous: str | None = None
        kept = False
        for i, request_id in enumerate(request_ids):
            if request_id != previous:  # a request's rows are usually adjacent: hash once
                hashed = self._keyed.copy()
                hashed.update(request_id.encode())
                kept = int.from_bytes(hashed.digest(), "little") < self._threshold
                previous = request_id
            if kept:
                keep.append(i)
        return keep

    # -- the writer's side ----------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (once)."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the prediction log at {self.root} is closed and cannot start again")
            if self._thread is not None:
                return
            # A daemon, so a log someone forgot to close cannot hang interpreter exit.
            self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            stopping = self._stopping
            try:
                self.flush()
            except Exception:
                logger.exception("writing the prediction log to %s failed; retrying in %.1f s", self.root, self.flush_seconds)
            if stopping:
                return

    def flush(self) -> int:
        """Write everything pending now; returns the rows written. Safe from any thread."""
        with self._flush_lock:
            with self._lock:
                batches, self._queue = self._queue, deque()
                taken = self._queued_rows
                self._queued_rows = 0
            # Count taken rows as unwritten while converting, so pending_rows never dips to zero early.
            self._unwritten_rows += taken
            tables = self._unwritten + self._convert(batches)
            self._unwritten = []
            self._unwritten_rows = sum(table.num_rows for _, _, table in tables)
            written = 0
            for i, (model, day, table) in enumerate(tables):
                try:
                    self._write(model, day, table)
                except BaseException:
                    self._unwritten = tables[i:]
                    self._unwritten_rows = sum(t.num_rows for _, _, t in self._unwritten)
                    self._bound_unwritten()
                    raise
                written += table.num_rows
                self._unwritten_rows -= table.num_rows
                self._written_rows += table.num_rows
                self._files_written += 1
            return written

    def _bound_unwritten(self) -> None:
        dropped = 0
        while self._unwritten and self.pending_rows > self.max_pending_rows:
            _, _, table = self._unwritten.pop(0)
            self._unwritten_rows -= table.num_rows
            dropped += table.num_rows
            with self._lock:
                self._dropped_rows += table.num_rows
        if dropped:
            logger.error(
                "dropping %d prediction-log rows: %s cannot be written and more than %d rows are pending",
                dropped,
                self.root,
                self.max_pending_rows,
            )

    def _convert(self, batches: deque[_Batch]) -> list[tuple[str, str, pa.Table]]:
        groups: dict[tuple[str, int], list[_Batch]] = {}
        for batch in batches:
            groups.setdefault((batch.model, batch.version), []).append(batch)
        tables: list[tuple[str, str, pa.Table]] = []
        for (model, version), group in groups.items():
            try:
                table = _to_table(model, version, group, self.sample_rate)
                tables.extend((model, day, table) for day, table in _split_by_day(table))
            except Exception:
                # Retrying cannot fix bad data, and keeping it would stall every later row.
                rows = sum(batch.rows for batch in group)
                logger.exception(
                    "dropping %d prediction-log rows of %s version %d that cannot be converted", rows, model, version
                )
                with self._lock:
                    self._dropped_rows += rows
        return tables

    def _write(self, model: str, day: str, table: pa.Table) -> None:
        folder = self.root / f"model={_segment(model)}" / f"date={day}"
        # A unique name per file: replicas writing into one shared location never collide.
        name = f"part-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}.parquet"
        (folder / name).write_parquet(table)

    # -- life cycle -----------------------------------------------------------------

    def close(self, timeout: float = 30.0) -> None:
        """Stop accepting rows, write everything pending and stop the writer. Idempotent."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._stopping = True
            self._wake.set()
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(
                    f"the prediction log writer did not finish within {timeout} s; {self.pending_rows} rows pending"
                )
        # The thread's last flush may have failed, or it never ran: write what is left here.
        self.flush()

    def __enter__(self) -> PredictionLog:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None) -> None:
        self.close()


def _lengths_seen(arguments: Mapping[str, Any]) -> str:
    names = ("request_ids", "received_at", "routing", "predictions", "scores", "latency_ms", "status", "model_ms")
    seen = [f"{name}={len(arguments[name])}" for name in names if arguments[name] is not None]
    seen += [f"features[{key!r}]={len(values)}" for key, values in arguments["features"].items()]
    return ", ".join(seen)


def _segment(value: str) -> str:
    # pyarrow's hive partitioning URI-decodes segments, so any model name round-trips.
    return quote(value, safe="")


def _flatten(parts: Sequence[tuple[Any, int, list[int] | None]]) -> Any:
    """One column from per-batch (values, length, kept rows): a numpy array when every part is one, else a list."""
    import numpy as np

    if all(
        values is not None and not isinstance(values, list | tuple) and hasattr(values, "__array__") for values, _, _ in parts
    ):
        chunks = [np.asarray(values) if keep is None else np.asarray(values)[keep] for values, _, keep in parts]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    flat: list[Any] = []
    for values, n, keep in parts:
        if values is None:
            flat.extend(repeat(None, n if keep is None else len(keep)))
            continue
        if not isinstance(values, list | tuple) and hasattr(values, "__array__"):
            values = np.asarray(values).tolist()
        flat.extend(values if keep is None else [values[i] for i in keep])
    return flat


def _to_table(model: str, version: int, group: list[_Batch], sample_rate: float = 1.0) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    rows = sum(batch.rows for batch in group)

    def column(pick: Any) -> Any:
        return _flatten([(pick(batch), len(batch.request_ids), batch.keep) for batch in group])

    seconds = np.asarray(column(lambda b: b.received_at), dtype=np.float64)
    micros = np.round(seconds * 1_000_000).astype(np.int64)
    columns: dict[str, Any] = {
        "request_id": pa.array(column(lambda b: b.request_ids), pa.string()),
        "received_at": pa.array(micros, pa.timestamp("us", tz="UTC")),
        "model": pa.repeat(pa.scalar(model, pa.string()), rows),
        "version": pa.repeat(pa.scalar(version, pa.int32()), rows),
        "routing": pa.array(column(lambda b: b.routing), pa.string()),
        "prediction": pa.array(column(lambda b: b.predictions), pa.float64()),
        "score": pa.array(column(lambda b: b.scores), pa.float64()),
        "latency_ms": pa.array(column(lambda b: b.latency_ms), pa.float64()),
        "status": pa.array(column(lambda b: b.status), pa.int16()),
        "model_ms": pa.array(column(lambda b: b.model_ms), pa.float64()),
        # model_ms is the whole batch's time on each of its rows (rollout analysis compares it per call);
        # a row's share of the CPU is model_ms / batch_rows, so summing shares never multiplies by the batch size.
        "batch_rows": pa.array(column(lambda b: np.full(len(b.request_ids), len(b.request_ids), np.int32)), pa.int32()),
        "sample_rate": pa.repeat(pa.scalar(sample_rate, pa.float32()), rows),  # each kept row stands for 1/rate rows
    }
    widths = [np.asarray(b.probabilities).shape[1] if b.probabilities is not None else 0 for b in group]
    for index in range(max(widths)):

        def probability(b: _Batch, index: int = index) -> Any:
            if b.probabilities is None or np.asarray(b.probabilities).shape[1] <= index:
                return None
            return np.asarray(b.probabilities, dtype=np.float64)[:, index]

        columns[PROBABILITY_PREFIX + str(index)] = pa.array(column(probability), pa.float64())
    for name in dict.fromkeys(name for batch in group for name in batch.features):
        values = column(lambda b, name=name: b.features.get(name))
        # from_pandas: features usually come from a frame, where NaN, NaT and pd.NA mean "missing".
        columns[FEATURE_PREFIX + name] = pa.array(values, from_pandas=True)
    return pa.table(columns)


def _split_by_day(table: pa.Table) -> list[tuple[str, pa.Table]]:
    import numpy as np
    import pyarrow as pa

    days = table.column("received_at").cast(pa.int64()).to_numpy() // _MICROS_PER_DAY
    if days.min() == days.max():
        return [(str(np.datetime64(int(days[0]), "D")), table)]
    return [(str(np.datetime64(int(day), "D")), table.filter(pa.array(days == day))) for day in np.unique(days)]


# -- reading ------------------------------------------------------------------------


def base_schema() -> pa.Schema:
    """The columns every row has; features follow as `f_<name>`."""
    import pyarrow as pa

    return pa.schema(
        [
            ("request_id", pa.string()),
            ("received_at", pa.timestamp("us", tz="UTC")),
            ("model", pa.string()),
            ("version", pa.int32()),
            ("routing", pa.string()),
            ("prediction", pa.float64()),
            ("score", pa.float64()),
            ("latency_ms", pa.float64()),
            ("status", pa.int16()),
            ("model_ms", pa.float64()),  # absent (null) in logs written before it was recorded
            ("batch_rows", pa.int32()),  # rows of the model call model_ms timed; null in older logs
            ("sample_rate", pa.float32()),  # the log's sampling rate when the row was kept; null in older logs
        ]
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _log_files(root: Location, model: str | None, since: datetime | None, until: datetime | None) -> list[str]:
    """Prune by partition from folder names alone: listing every file of a long log costs more than reading a window."""
    first = None if since is None else _utc(since).date().isoformat()
    last = None if until is None else _utc(until).date().isoformat()
    if model is not None:
        models = [root / f"model={_segment(model)}"]
    else:
        models = [root / name for name in root.entries(kind="dir", prefix="model=")]
    files: list[str] = []
    for folder in models:
        for name in folder.entries(kind="dir", prefix="date="):
            day = name.removeprefix("date=")
            if (first is None or day >= first) and (last is None or day <= last):
                day_folder = folder / name
                files.extend(
                    (day_folder / part).path for part in day_folder.entries(kind="file", prefix="part-", suffix=".parquet")
                )
    return files


def read_log(
    root: Location | Path,
    *,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    columns: list[str] | None = None,
) -> pa.Table:
    """Rows with `since <= received_at < until` (naive datetimes are UTC).

    Files with different feature sets are unified (a missing feature reads as null);
    a requested column no file has comes back all null.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    location = Location.of(root)
    files = _log_files(location, model, since, until)
    if not files:
        return _select(base_schema().empty_table(), columns)
    filesystem = location.filesystem()
    try:
        # Partitions were pruned from folder names, and every file carries its model, so the
        # scan needs no partitioning; it needs one schema covering every file's features.
        fragments = ds.dataset(files, format="parquet", filesystem=filesystem).get_fragments()
        schema = pa.unify_schemas(
            [base_schema(), *(fragment.physical_schema for fragment in fragments)], promote_options="permissive"
        )
    except OSError as exc:
        raise location.unavailable("read", exc) from exc
    dataset = ds.dataset(files, format="parquet", schema=schema, filesystem=filesystem)
    condition = None
    if since is not None:
        condition = ds.field("received_at") >= pa.scalar(_utc(since), pa.timestamp("us", tz="UTC"))
    if until is not None:
        before = ds.field("received_at") < pa.scalar(_utc(until), pa.timestamp("us", tz="UTC"))
        condition = before if condition is None else condition & before
    wanted = schema.names if columns is None else [name for name in columns if name in schema.names]
    try:
        table = dataset.to_table(columns=wanted, filter=condition)
    except OSError as exc:
        raise location.unavailable("read", exc) from exc
    return _select(table, columns)


def _select(table: pa.Table, columns: list[str] | None) -> pa.Table:
    import pyarrow as pa

    if columns is None:
        return table
    present = set(table.column_names)
    return pa.table(
        [table.column(name) if name in present else pa.nulls(table.num_rows) for name in columns],
        names=columns,
    )


def find_request(root: Location | Path, request_id: str) -> list[dict[str, Any]]:
    """Every row recorded for one request id (a shadowed request has two), oldest first."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    location = Location.of(root)
    files = _log_files(location, None, None, None)
    if not files:
        return []
    filesystem = location.filesystem()
    matches = ds.field("request_id") == request_id
    rows: list[dict[str, Any]] = []
    try:
        # Scan only the id column everywhere, then read whole rows from the few files that match.
        probe = ds.dataset(files, format="parquet", schema=pa.schema([("request_id", pa.string())]), filesystem=filesystem)
        hits = probe.to_table(columns=["__filename"], filter=matches).column("__filename").to_pylist()
        for path in sorted(set(hits)):
            rows.extend(ds.dataset(path, format="parquet", filesystem=filesystem).to_table(filter=matches).to_pylist())
    except OSError as exc:
        raise location.unavailable("read", exc) from exc
    rows.sort(key=lambda row: row["received_at"])
    return rows
