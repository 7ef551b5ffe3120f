"""The gateway's state: loaded versions, traffic routes, hot reload, bookkeeping.

Routes are rebuilt off to the side and swapped in one assignment, so a request
sees either the old deployment or the new one, never half of each; batches in
flight keep the model objects they started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import time
import zlib
from collections.abc import Awaitable, Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.domain.entities import Deployment
from shipyard.domain.errors import ModelFailed, NotReady, NotServed, ShipyardError
from shipyard.serving import features
from shipyard.serving.batching import BatchDone, Batcher
from shipyard.serving.inputs import Decoded
from shipyard.serving.metrics import GatewayMetrics
from shipyard.serving.tokens import Tokens

if TYPE_CHECKING:
    from shipyard.domain.monitoring import MonitorRun
    from shipyard.predlog import PredictionLog
    from shipyard.registry import Registry
    from shipyard.serving.features import OnlineLookup
    from shipyard.serving.runtime import LoadedModel
    from shipyard.store.repository import Store

log = logging.getLogger("shipyard.serving")


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig:
    models: list[str] | None = None  # None: every model with a champion
    max_batch: int = 64
    max_wait_ms: float = 1.0
    predict_in_thread: bool = True
    log_dir: Path | None = None
    log_sample: float = 1.0
    log_flush_seconds: float = 1.0
    max_body_bytes: int = 1 << 20
    max_rows: int = 10_000
    auth: bool = False
    reload_seconds: float = 0.5
    token_seconds: float = 0.5  # tokens are re-read this often (revocation takes effect within it)
    reject_unknown_categories: bool = False
    challenger_timeout: float = 1.0  # seconds before the champion answers for a slow challenger
    runtime: str = "auto"  # "scikit-learn": no fast path, every call is the model's own predict_proba


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def auth_by_default(host: str) -> bool:
    """Tokens are required as soon as the gateway listens beyond this machine."""
    return host not in LOOPBACK


@dataclass(slots=True)
class Route:
    name: str
    champion: Batcher
    challenger: Batcher | None = None
    mode: str = "single"
    weight: float = 0.0
    routing_key: str | None = None
    versions: dict[int, Batcher] = field(default_factory=dict)

    def pick(self, key: str | None) -> str:
        if self.challenger is None or self.mode in ("single", "shadow") or self.weight <= 0:
            return "champion"
        if self.mode == "bluegreen":
            return "challenger" if self.weight >= 1 else "champion"
        share = (zlib.crc32(key.encode()) % 10_000) / 10_000 if key else random.random()
        return "challenger" if share < self.weight else "champion"


@dataclass(frozen=True, slots=True, kw_only=True)
class Stale:
    """The store deploys a champion the gateway could not load: it serves ``served`` (None: nothing) instead."""

    served: int | None
    deployed: int
    error: str

    def to_dict(self) -> dict[str, object]:
        return {"served": self.served, "deployed": self.deployed, "error": self.error}


@dataclass(slots=True)
class Usage:
    """What one version has done since this gateway started: the figures of the statistics extension."""

    success: int = 0  # requests answered
    success_ns: int = 0  # their summed time from request to response
    executions: int = 0  # predict calls that answered (a micro-batch is one)
    inferences: int = 0  # rows those calls predicted
    compute_ns: int = 0  # CPU time of those calls on their thread
    last_inference_ms: int = 0  # when the last of them finished, in milliseconds since the epoch

    def to_dict(self, name: str, version: int) -> dict[str, object]:
        return {
            "name": name,
            "version": str(version),
            "last_inference": self.last_inference_ms,
            "inference_count": self.inferences,
            "execution_count": self.executions,
            "inference_stats": {
                "success": {"count": self.success, "ns": self.success_ns},
                "compute_infer": {"count": self.executions, "ns": self.compute_ns},
            },
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    model: str
    version: int
    predictions: list[Any]  # 0/1 (binary), a label (multiclass) or a value (regression)
    scores: list[Any]  # the positive class's probability (binary), each class's (multiclass), the value (regression)
    routing: str
    task: str = "binary"


class Gateway:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        config: GatewayConfig,
        *,
        predlog: PredictionLog | None = None,
        categories: dict[str, dict[str, list[str]]] | None = None,
        feature_repos: dict[str, Path] | None = None,
        monitored: Collection[str] = (),
    ) -> None:
        self.store = store
        self.feature_repos = feature_repos or {}  # model -> its Feast repository (models trained from a feature service)
        self.lookups: dict[tuple[str, int], OnlineLookup] = {}
        self.registry = registry
        self.config = config
        self.predlog = predlog
        self.categories = categories or {}
        self.metrics = GatewayMetrics()
        self.routes: dict[str, Route] = {}
        self.batchers: dict[tuple[str, int], Batcher] = {}
        self.expected: set[str] = set()  # models the store deploys, loaded or not
        self.failures: dict[tuple[str, int], str] = {}
        self.stale: dict[str, Stale] = {}  # models whose deployed champion is not the one served
        self.generation = -1
        self.tokens = Tokens()
        self.draining = False  # shutting down: still answering, but no longer ready for new traffic
        # One predict thread per loaded version: a slow challenger must not queue the champion's calls behind its own.
        self._executors: dict[tuple[str, int], ThreadPoolExecutor] = {}
        self._reloader: asyncio.Task[None] | None = None
        self._token_reader: asyncio.Task[None] | None = None
        self._reload_lock = asyncio.Lock()
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        self.usage: dict[tuple[str, int], Usage] = {}  # per version, for the statistics route
        self.monitored = sorted(monitored)  # declared models whose latest monitor run /metrics shows
        self.monitor_runs: dict[str, MonitorRun] = {}
        self._monitor_reader: asyncio.Task[None] | None = None

    # -- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        if self.predlog is not None:
            self.predlog.start()
        loop = asyncio.get_running_loop()
        if self.config.auth:
            await self.refresh_tokens()
            # Apart from deployment reloads: a model that takes seconds to load must not delay a revocation.
            tokens = self._keep_refreshing(
                self.refresh_tokens, self.config.token_seconds, "token refresh failed, keeping the previous tokens"
            )
            self._token_reader = loop.create_task(tokens, name="token refresh")
        await self.reload()
        reloads = self._keep_refreshing(
            self.reload, self.config.reload_seconds, "deployment reload failed, serving the previous state"
        )
        self._reloader = loop.create_task(reloads, name="deployment reload")
        if self.monitored:  # its first reading comes from the task: a store slow to answer does not delay the start
            runs = self._keep_refreshing(
                self.refresh_monitor_runs,
                self.config.reload_seconds,
                "monitor run refresh failed, showing the previous readings",
                at_once=True,
            )
            self._monitor_reader = loop.create_task(runs, name="monitor run refresh")

    async def stop(self) -> None:
        for task in (self._reloader, self._token_reader, self._monitor_reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._shadow_tasks:
            await asyncio.gather(*self._shadow_tasks, return_exceptions=True)
        for batcher in list(self.batchers.values()):
            await batcher.stop()
        if self.predlog is not None:
            await asyncio.to_thread(self.predlog.close)
        for executor in self._executors.values():
            executor.shutdown(wait=True)

    @property
    def ready(self) -> bool:
        return not self.draining and bool(self.routes) and all(name in self.routes for name in self.expected)

    def drain(self) -> None:
        """Say "not ready" from now on, so load balancers stop sending; requests that still come are answered."""
        self.draining = True

    @staticmethod
    async def _keep_refreshing(
        refresh: Callable[[], Awaitable[object]], seconds: float, failed: str, *, at_once: bool = False
    ) -> None:
        """Call ``refresh`` every ``seconds``, off the request path (first at once, or after one wait). A failure is
        logged with ``failed`` (what the gateway keeps meanwhile), and the next turn tries again: a bug in one
        refresh must not stop the gateway from following the store."""
        if not at_once:
            await asyncio.sleep(seconds)
        while True:
            try:
                await refresh()
            except ShipyardError as exc:
                log.warning("%s: %s", failed, exc.message)
            except Exception:
                log.exception(failed)
            await asyncio.sleep(seconds)

    async def refresh_tokens(self) -> None:
        """Re-read the store's tokens; created or revoked, they count from now."""
        self.tokens.replace(await asyncio.to_thread(self.store.token_hashes))

    async def refresh_monitor_runs(self) -> None:
        """Re-read each monitored model's latest monitor run (its readings go to /metrics, for Prometheus' alerts)."""
        runs = await asyncio.to_thread(self.store.latest_monitor_runs, self.monitored, known=self.monitor_runs)
        self.metrics.monitor_runs(runs)
        self.monitor_runs = runs

    async def reload(self, *, force: bool = False) -> bool:
        """Apply the store's deployment state if its generation moved; True when something changed."""
        async with self._reload_lock:
            generation = await asyncio.to_thread(self.store.serving_generation)
            if generation == self.generation and not force:
                return False
            deployments = await asyncio.to_thread(self.store.deployments, self.config.models)
            await self._apply(deployments)
            self.generation = generation
            self.metrics.generation.set(generation)
            log.info("deployment generation %s applied: %s", generation, self.describe_routes())
            return True

    def describe_routes(self) -> str:
        """What is served now, on one line: each model's champion, challenger (mode, weight) and any stale version."""
        parts = []
        for name in sorted(self.expected | set(self.routes)):
            route = self.routes.get(name)
            if route is None:
                part = f"{name} not served"
            else:
                part = f"{name} v{route.champion.loaded.version}"
                if route.challenger is not None:
                    share = "" if route.mode == "shadow" else f" {route.weight:.0%}"
                    part += f" + challenger v{route.challenger.loaded.version} ({route.mode}{share})"
            stale = self.stale.get(name)
            if stale is not None:
                part += f" (deployed v{stale.deployed} failed to load: {stale.error})"
            parts.append(part)
        return "; ".join(parts) or "nothing deployed"

    async def _apply(self, deployments: list[Deployment]) -> None:
        wanted = {(d.model, v) for d in deployments for v in (d.champion, d.challenger) if v is not None}
        for key in sorted(wanted - set(self.batchers)):
            loaded = await self._load(*key)
            if loaded is not None:
                batcher = Batcher(
                    loaded,
                    max_batch=self.config.max_batch,
                    max_wait_ms=self.config.max_wait_ms,
                    executor=self._executor_for(key),
                    on_batch=self._bookkeep,
                    features=self.lookups.get(key),
                )
                batcher.start()
                self.batchers[key] = batcher
        routes: dict[str, Route] = {}
        stale: dict[str, Stale] = {}
        for d in deployments:
            champion = self.batchers.get((d.model, d.champion)) if d.champion is not None else None
            previous = self.routes.get(d.model)
            if champion is None:
                if previous is not None:  # the new champion failed to load: keep serving the old one
                    routes[d.model] = previous
                if d.champion is not None:  # and say so, in readiness and /metrics
                    error = self.failures.get((d.model, d.champion), "not loaded")
                    served = previous.champion.loaded.version if previous is not None else None
                    stale[d.model] = Stale(served=served, deployed=d.champion, error=error)
                continue
            challenger = self.batchers.get((d.model, d.challenger)) if d.challenger is not None else None
            versions = {v: b for (name, v), b in self.batchers.items() if name == d.model and (name, v) in wanted}
            routes[d.model] = Route(
                name=d.model,
                champion=champion,
                challenger=challenger,
                mode=d.mode if challenger else "single",
                weight=d.challenger_weight,
                routing_key=d.routing_key,
                versions=versions,
            )
        self.expected = {d.model for d in deployments if d.champion is not None}
        self.routes = routes  # one assignment: requests see the old routes or the new ones
        for name in self.stale.keys() - self.expected:
            self.metrics.stale.remove(name)
        for name in self.expected:
            self.metrics.stale.labels(name).set(1 if name in stale else 0)
        self.stale = stale
        in_use = {b.loaded.key for r in routes.values() for b in (r.champion, r.challenger) if b is not None}
        for key in [k for k in self.batchers if k not in in_use and k not in wanted]:
            batcher = self.batchers.pop(key)
            self.metrics.loaded.labels(key[0], str(key[1])).set(0)
            asyncio.get_running_loop().create_task(self._retire(key, batcher))
        gc.collect()
        gc.freeze()  # loaded models are long-lived: keep full collections from walking them

    def _executor_for(self, key: tuple[str, int]) -> ThreadPoolExecutor | None:
        if not self.config.predict_in_thread:
            return None
        if key not in self._executors:
            self._executors[key] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"predict-{key[0]}-{key[1]}")
        return self._executors[key]

    async def _retire(self, key: tuple[str, int], batcher: Batcher) -> None:
        """Stop a version no deployment routes to: finish its queued requests, then its thread."""
        await batcher.stop()
        if key in self.batchers:
            return  # routed to again meanwhile: its new batcher shares this thread
        self.lookups.pop(key, None)
        executor = self._executors.pop(key, None)
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True)

    async def _load(self, name: str, version: int) -> LoadedModel | None:
        from shipyard.serving import runtime

        try:
            found = await asyncio.to_thread(self.store.get_version, name, version)
            evidence = await asyncio.to_thread(self.store.evidence, name, version) or {}
            loaded = await asyncio.to_thread(
                runtime.load,
                found,
                self.registry,
                categories=self.categories.get(name),
                equivalence=evidence.get("serving_equivalence"),
                fast=self.config.runtime == "auto",
            )
            lookup = await asyncio.to_thread(features.attach, loaded.schema, evidence, self.feature_repos.get(name))
            if lookup is not None:
                self.lookups[(name, version)] = lookup
        except ShipyardError as exc:
            self.failures[(name, version)] = exc.message
            log.error("cannot load %s/%s: %s", name, version, exc.message)
            return None
        except Exception as exc:  # a model that breaks loading in a way nobody foresaw: the others keep serving
            self.failures[(name, version)] = f"{type(exc).__name__}: {exc}"
            log.exception("cannot load %s/%s", name, version)
            return None
        self.failures.pop((name, version), None)
        seconds, runtime_name, why = loaded.load_seconds, loaded.runtime, loaded.runtime_reason
        log.info("loaded %s/%s in %.2f s, served by %s (%s)", name, version, seconds, runtime_name, why)
        self.metrics.runtime.labels(name, str(version), runtime_name).set(1)
        self.metrics.load_seconds.labels(name, str(version)).set(loaded.load_seconds)
        self.metrics.loaded.labels(name, str(version)).set(1)
        return loaded

    # -- predicting -----------------------------------------------------------------------

    def route(self, name: str) -> Route:
        route = self.routes.get(name)
        if route is not None:
            return route
        served = ", ".join(sorted(self.routes)) or "none"
        if name in self.expected:
            stale = self.stale.get(name)
            if stale is not None:
                message = f"version {stale.deployed} of {name!r} is deployed but could not be loaded: {stale.error}"
                raise NotReady(message, hint="The gateway tries again when the deployment changes; its log has the details.")
            raise NotReady(f"model {name!r} is deployed but not loaded yet", hint="Retry in a moment.")
        raise NotServed(f"model {name!r} is not served here", hint=f"Served models: {served}.")

    async def predict(
        self, name: str, decoded: Decoded, *, request_id: str, key: str | None, version: int | None = None
    ) -> Answer:
        route = self.route(name)
        received = time.time()
        if version is not None:
            batcher = route.versions.get(version)
            if batcher is None:
                known = ", ".join(str(v) for v in sorted(route.versions))
                raise NotServed(f"version {version} of {name!r} is not served here", hint=f"Served versions: {known}.")
            predictions, scores = await batcher.submit(decoded, request_id=request_id, routing="pinned", received_at=received)
            return Answer(
                model=name, version=version, predictions=predictions, scores=scores, routing="pinned", task=batcher.loaded.task
            )
        if route.mode == "shadow" and route.challenger is not None:
            task = asyncio.get_running_loop().create_task(self._shadow(route.challenger, decoded, request_id, received))
            self._shadow_tasks.add(task)
            task.add_done_callback(self._shadow_tasks.discard)
        elif route.pick(key) == "challenger" and route.challenger is not None:
            try:
                attempt = asyncio.ensure_future(
                    route.challenger.submit(decoded, request_id=request_id, routing="challenger", received_at=received)
                )
                # A timed-out attempt still finishes (and is logged); nobody else awaits it.
                attempt.add_done_callback(_consume)
                predictions, scores = await asyncio.wait_for(asyncio.shield(attempt), timeout=self.config.challenger_timeout)
                return Answer(
                    model=name,
                    version=route.challenger.loaded.version,
                    predictions=predictions,
                    scores=scores,
                    routing="challenger",
                    task=route.challenger.loaded.task,
                )
            except (ModelFailed, TimeoutError):
                # A failing or slow challenger is the rollout's problem, never the client's; the
                # prediction log shows the analysis its errors and latency.
                self.metrics.challenger_failures.labels(name, str(route.challenger.loaded.version)).inc()
        predictions, scores = await route.champion.submit(
            decoded, request_id=request_id, routing="champion", received_at=received
        )
        return Answer(
            model=name,
            version=route.champion.loaded.version,
            predictions=predictions,
            scores=scores,
            routing="champion",
            task=route.champion.loaded.task,
        )

    async def _shadow(self, challenger: Batcher, decoded: Decoded, request_id: str, received: float) -> None:
        try:
            await challenger.submit(decoded, request_id=request_id, routing="shadow", received_at=received)
        except ModelFailed:
            self.metrics.challenger_failures.labels(challenger.loaded.name, str(challenger.loaded.version)).inc()

    def answered(self, name: str, version: int, seconds: float) -> None:
        """Count a request answered by ``version``, with its time from request to response (metrics and statistics)."""
        meters = self.metrics.meters(name, str(version))
        meters.answered.inc()
        meters.latency.observe(seconds)
        usage = self.usage.get((name, version))
        if usage is None:
            usage = self.usage[(name, version)] = Usage()
        usage.success += 1
        usage.success_ns += int(seconds * 1e9)

    def _log_failures(self, done: BatchDone) -> None:
        """Requests the model raised on are logged too (status 500), so rollouts see error rates."""
        if self.predlog is None:
            return
        now = time.perf_counter()
        for job in done.failed:
            n = job.decoded.rows
            self.predlog.append(
                model=done.loaded.name,
                version=done.loaded.version,
                request_ids=[job.request_id] * n,
                received_at=[job.received_at] * n,
                routing=[job.routing] * n,
                features=job.decoded.columns,
                predictions=[float("nan")] * n,
                scores=[float("nan")] * n,
                latency_ms=[(now - job.started) * 1000.0] * n,
                status=[500] * n,
            )

    def _bookkeep(self, done: BatchDone) -> None:
        """Per batch, column-wise: metrics and one prediction-log append."""
        name, version = done.loaded.name, str(done.loaded.version)
        if done.failed:
            self.metrics.errors.labels(name, "model_failed").inc(len(done.failed))
            self._log_failures(done)
        if not done.jobs or done.predictions is None or done.scores is None or done.columns is None:
            return
        rows = len(done.predictions)
        usage = self.usage.get(done.loaded.key)
        if usage is None:
            usage = self.usage[done.loaded.key] = Usage()
        usage.executions += 1
        usage.inferences += rows
        usage.compute_ns += int(done.model_seconds * 1e9)
        usage.last_inference_ms = int(time.time() * 1000)
        meters = self.metrics.meters(name, version)
        meters.batch_rows.observe(rows)
        meters.model_seconds.observe(done.model_seconds)
        predictions, scores, probabilities = done.predictions, done.scores, None
        if done.loaded.task == "multiclass":
            # One score per row for the histogram and the log: the predicted class's index and its probability;
            # each class's probability is logged beside them (drift and rollout divergence per class).
            predictions, scores, probabilities = scores.argmax(axis=1), scores.max(axis=1), scores
        self.metrics.scores.observe_many(name, version, scores)
        if self.predlog is None:
            return
        now = time.perf_counter()
        request_ids: list[str] = []
        received: list[float] = []
        routing: list[str] = []
        latency: list[float] = []
        for job in done.jobs:
            n = job.decoded.rows
            request_ids += [job.request_id] * n
            received += [job.received_at] * n
            routing += [job.routing] * n
            latency += [(now - job.started) * 1000.0] * n
        self.predlog.append(
            model=name,
            version=done.loaded.version,
            request_ids=request_ids,
            received_at=received,
            routing=routing,
            features=features.logged(self.lookups.get(done.loaded.key), done),  # + entity keys (serving/features.py)
            predictions=predictions,
            scores=scores,
            latency_ms=latency,
            status=[200] * rows,
            model_ms=[done.model_seconds * 1000.0] * rows,
            probabilities=probabilities,
        )
        self.metrics.dropped_rows(self.predlog.dropped_rows)


def _consume(task: asyncio.Future[tuple[list[int], list[float]]]) -> None:
    if not task.cancelled():
        task.exception()
