"""Adaptive micro-batching: concurrent requests for one model version share one predict call.

A lone request never waits: when the last batch held one request, the next goes
straight to the model. Under concurrency the batcher waits up to ``max_wait_ms``
for the batch to fill, because a model with a large fixed cost per call (a
scikit-learn ColumnTransformer costs milliseconds on one row) answers 32 rows
in little more time than one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import ModelFailed
from shipyard.serving.inputs import Decoded, batch_columns

if TYPE_CHECKING:
    import numpy as np

    from shipyard.serving.features import OnlineLookup
    from shipyard.serving.runtime import LoadedModel

log = logging.getLogger("shipyard.serving")


@dataclass(slots=True)
class Job:
    decoded: Decoded
    future: asyncio.Future[tuple[list[int], list[float]]]
    request_id: str
    routing: str
    received_at: float
    started: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchDone:
    """What one predicted batch hands to bookkeeping (metrics, prediction log), column-wise."""

    loaded: LoadedModel
    jobs: list[Job]
    columns: dict[str, Any] | None  # the batch's typed columns: what the model and the prediction log read
    predictions: np.ndarray | None
    scores: np.ndarray | None
    model_seconds: float  # CPU time of the predict call on its thread: the model's own cost, whatever else runs
    failed: list[Job]


class Batcher:
    def __init__(
        self,
        loaded: LoadedModel,
        *,
        max_batch: int = 64,
        max_wait_ms: float = 0.0,
        executor: Executor | None = None,
        on_batch: Callable[[BatchDone], None] | None = None,
        features: OnlineLookup | None = None,
    ) -> None:
        self.loaded = loaded
        self.features = features  # a Feast-backed version's online lookup (serving/features.py)
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.executor = executor
        self.on_batch = on_batch
        self._queue: deque[Job] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.in_flight = 0
        self._last_jobs = 1
        self.quick_rows = loaded.quick_rows

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"batcher {self.loaded.key}")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        while self._queue or self.in_flight:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def submit(
        self, decoded: Decoded, *, request_id: str, routing: str, received_at: float
    ) -> tuple[list[int], list[float]]:
        future: asyncio.Future[tuple[list[int], list[float]]] = asyncio.get_running_loop().create_future()
        self._queue.append(Job(decoded, future, request_id, routing, received_at))
        self.in_flight += 1
        self._wake.set()
        try:
            return await future
        finally:
            self.in_flight -= 1

    def _take(self) -> list[Job]:
        jobs = [self._queue.popleft()]
        rows = jobs[0].decoded.rows
        # A model with a quick path takes batches it answers quickly (on the loop, see `_call`): the rest wait
        # for the next call, which costs less than one slow call would.
        limit = self.max_batch
        if 0 < rows <= self.quick_rows < limit:
            limit = self.quick_rows
        while self._queue and rows + self._queue[0].decoded.rows <= limit:
            job = self._queue.popleft()
            rows += job.decoded.rows
            jobs.append(job)
        return jobs

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            if self.max_wait and self._last_jobs > 1 and sum(j.decoded.rows for j in self._queue) < self.max_batch:
                await asyncio.sleep(self.max_wait)
            jobs = self._take()
            self._last_jobs = len(jobs)
            try:
                await self._predict(jobs)
            except Exception:  # a bug past the model's call must cost these requests, not every later one
                log.exception("answering a batch of %s failed", self.loaded.key)
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(ModelFailed("the gateway failed to answer this batch; its log says why"))

    async def _predict(self, jobs: list[Job]) -> None:
        if self.features is not None:  # online features: one lookup for the batch (serving/features.py)
            from shipyard.serving.features import complete

            jobs = await complete(self.features, jobs)
            if not jobs:
                return
        try:
            answer = await self._call(jobs)
        except Exception as exc:
            if len(jobs) == 1:
                self._fail([(jobs[0], exc)])  # alone, it has no neighbours to spare: the same call would fail again
            else:
                await self._isolate(jobs)  # one bad request must not fail its neighbours: score them one by one
            return
        self._answer(jobs, *answer)

    def _answer(
        self,
        jobs: list[Job],
        columns: dict[str, Any],
        predictions: np.ndarray,
        scores: np.ndarray,
        model_seconds: float,
    ) -> None:
        """Hand each job its rows of the batch's answer, then the batch to bookkeeping."""
        offset = 0
        for job in jobs:
            end = offset + job.decoded.rows
            if not job.future.done():
                job.future.set_result((predictions[offset:end].tolist(), scores[offset:end].tolist()))
            offset = end
        self._bookkeep(
            BatchDone(
                loaded=self.loaded,
                jobs=jobs,
                columns=columns,
                predictions=predictions,
                scores=scores,
                model_seconds=model_seconds,
                failed=[],
            )
        )

    def _bookkeep(self, done: BatchDone) -> None:
        """Hand a batch to bookkeeping (metrics, prediction log) once its requests have their answers."""
        if self.on_batch is None:
            return
        try:
            self.on_batch(done)
        except Exception:  # the answers are out: a bookkeeping bug is logged, never turned into a failed request
            log.exception("bookkeeping of a batch of %s failed", self.loaded.key)

    async def _call(self, jobs: list[Job]) -> tuple[dict[str, Any], np.ndarray, np.ndarray, float]:
        columns = batch_columns([job.decoded for job in jobs], self.loaded.schema)
        answered = None
        if self.executor is None:
            answered = self.loaded.timed_predict(columns)
        elif self.loaded.quick(sum(job.decoded.rows for job in jobs)):
            # A batch the model answers in a fraction of a millisecond: handing the call to a thread and back
            # would cost more than the call (and the thread's bid for the GIL slows the loop), so it runs here,
            # unless its values need scikit-learn's own (slow) path after all: then it goes to the thread.
            answered = self.loaded.timed_predict(columns, fast_only=True)
        if answered is None:
            answered = await asyncio.get_running_loop().run_in_executor(self.executor, self.loaded.timed_predict, columns)
        predictions, scores, model_seconds = answered
        return columns, predictions, scores, model_seconds

    async def _isolate(self, jobs: list[Job]) -> None:
        failed = []
        for job in jobs:
            try:
                await self._predict_one(job)
            except Exception as exc:
                failed.append((job, exc))
        if failed:
            self._fail(failed)

    def _fail(self, failures: list[tuple[Job, Exception]]) -> None:
        """Answer each job with its model error, then tell bookkeeping which requests failed."""
        for job, exc in failures:
            if not job.future.done():
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                job.future.set_exception(ModelFailed(f"the model could not score this input: {type(exc).__name__}: {reason}"))
        self._bookkeep(
            BatchDone(
                loaded=self.loaded,
                jobs=[],
                columns=None,
                predictions=None,
                scores=None,
                model_seconds=0.0,
                failed=[job for job, _ in failures],
            )
        )

    async def _predict_one(self, job: Job) -> None:
        self._answer([job], *await self._call([job]))
