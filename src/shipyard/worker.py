"""The worker: every automated action, in one place, one worker at a time.

It drives rollouts (the controller pass), runs each model's monitor every `monitoring.interval`
seconds with the actions its alerts ask for (a retrain trains in a child process), tells people
(team mode's `server.notify_url`) when a version waits for approval or a gate blocks it, and
keeps the store figures behind /metrics up to date (open alerts, KPIs from an incrementally
verified audit chain), and applies retention every `retention.interval`.
The gateway only serves. `shipyard serve` hosts a worker on a laptop;
`shipyard worker` runs one alone. On a shared store a lease makes exactly one worker act; the
others wait.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shipyard.domain.errors import PermissionDenied, ShipyardError

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from shipyard.rollout import Decision
    from shipyard.service import MonitorOutcome, NotifyPass, Shipyard

log = logging.getLogger("shipyard.worker")
LEASE = "worker"
# A notification not delivered is tried again after 5 s, 10 s, 20 s, … (at most 5 minutes apart),
# on later ticks; after NOTIFY_ATTEMPTS tries (about 2.5 minutes) it is given up with a notify.failed
# audit event. The messages after it wait meanwhile, so they keep their order.
NOTIFY_ATTEMPTS = 6
NOTIFY_BACKOFF = 5.0
NOTIFY_BACKOFF_CAP = 300.0

# name, help, labels, value: a figure read from the store; a counter when its name ends in _total, else a gauge
Figure = tuple[str, str, dict[str, str], float]


class StoreFigures:
    """Figures read from the store, for a Prometheus registry: gauges, and counters for what only grows.

    The worker refreshes them on its own thread; ``collect`` (called while /metrics renders, maybe on
    an event loop) only hands out the last figures.
    """

    def __init__(self) -> None:
        self._figures: list[Figure] = []

    def update(self, figures: list[Figure]) -> None:
        self._figures = figures  # one assignment: a scrape sees the old list or the new one

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for name, help_text, labels, value in self._figures:
            family = families.get(name)
            if family is None:
                kind = CounterMetricFamily if name.endswith("_total") else GaugeMetricFamily
                family = families[name] = kind(name, help_text, labels=sorted(labels))
            family.add_metric([labels[key] for key in sorted(labels)], value)
        yield from families.values()


@dataclass(slots=True)
class Timer:
    every: float
    due: float = 0.0  # monotonic time of the next run

    def ready(self, now: float) -> bool:
        if now < self.due:
            return False
        self.due = now + self.every
        return True


@dataclass(slots=True)
class Pass:
    """What one tick did, for logs and tests."""

    held: bool
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class Worker:
    """One worker over a project's store. ``tick`` does whatever is due; ``start`` runs ticks on a thread."""

    def __init__(
        self,
        service: Shipyard,
        *,
        controller_seconds: float = 1.0,
        figures_seconds: float = 30.0,
        notify_seconds: float = 2.0,
        holder: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        config = service.settings.spec.worker
        self.service = service.as_actor(config.actor)
        self.lease_seconds = config.lease_seconds
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.figures = StoreFigures()
        self.controller = Timer(controller_seconds)
        self.figures_timer = Timer(figures_seconds)
        self.notify_timer = Timer(notify_seconds)
        self.lease_timer = Timer(max(1.0, self.lease_seconds / 3))
        self.monitors: dict[str, Timer] = {}
        retention = service.settings.spec.retention.interval
        self.retention_timer = Timer(retention) if retention is not None else None
        self.held = False
        self._lease_lock = threading.Lock()
        self.refused: set[str] = set()  # work its principal may not do: not tried again
        self._checkpoint: tuple[int, str] | None = None  # the last audit event verified, and its hash
        self._commit_times: dict[str, datetime | None] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one tick ------------------------------------------------------------------------

    def tick(self) -> Pass:
        now = self.clock()
        if not self._lease(now):
            return Pass(held=False)
        done = Pass(held=True)
        if self.controller.ready(now):
            self._run("rollout controller pass", self.drive_rollouts, done)
        for name in self._monitors_due(now):
            self._run(f"monitor run of {name}", functools.partial(self.monitor, name), done)
        if self.figures_timer.ready(now):
            self._run("store figures", self.refresh_figures, done)
        if self.notifying and self.notify_timer.ready(now):
            self._run("notifications", self.notify, done)
        if self.retention_timer is not None and self.retention_timer.ready(now):
            self._run("retention", self.retention, done)
        return done

    def retention(self) -> None:
        """One retention pass (`retention.interval`); a summary line, each action is in the audit log."""
        outcome = self.service.retention_apply()
        if outcome.done or outcome.failed:
            log.log(
                logging.WARNING if outcome.failed else logging.INFO,
                "retention: %d actions, %d bytes freed, %d failed",
                len(outcome.done),
                outcome.bytes_freed,
                len(outcome.failed),
            )

    def drive_rollouts(self) -> list[Decision]:
        """One controller pass; each decision it applied (a step, a failed analysis, a promotion, a rollback)
        also goes to the log, one line each."""
        decisions = self.service.reconcile_rollouts()
        for decision in decisions:
            rolled_back = decision.rollout.state == "rolled_back"
            log.log(logging.WARNING if rolled_back else logging.INFO, "%s", decision.describe())
        return decisions

    def monitor(self, model: str) -> list[MonitorOutcome]:
        """One monitor run of a model as its monitoring principal; each alert action taken is logged on one line."""
        robot = self.service.as_actor(self.service.settings.model(model).monitoring.actor)
        outcomes = robot.monitor(model)
        for outcome in outcomes:
            signals: dict[object, str] = {alert.id: alert.signal for alert in outcome.opened}
            for action in outcome.actions:
                failed = action.get("state") == "failed"
                log.log(
                    logging.WARNING if failed else logging.INFO,
                    "monitor of %s/%s: alert %s (%s) → %s %s%s",
                    outcome.model,
                    outcome.version,
                    action.get("alert"),
                    signals.get(action.get("alert"), "?"),
                    action.get("action"),
                    action.get("state"),
                    f": {action['error']}" if failed and action.get("error") else "",
                )
        return outcomes

    def _run(self, what: str, work: Callable[[], object], done: Pass) -> None:
        if what in self.refused:
            return
        try:
            work()
        except PermissionDenied as exc:
            # Roles are read once at start-up, so the refusal would repeat every tick (and be audited every
            # tick): say it once, clearly, and leave this work alone until the worker restarts.
            log.error("%s is refused and stops until the worker restarts: %s %s", what, exc.message, exc.hint or "")
            self.refused.add(what)
            done.failed.append(what)
        except ShipyardError as exc:
            log.warning("%s failed: %s", what, exc.message)
            done.failed.append(what)
        except Exception:  # one failed pass must never stop the worker
            log.exception("%s failed", what)
            done.failed.append(what)
        else:
            done.done.append(what)

    def _lease(self, now: float) -> bool:
        """Renew the lease, or try to take it, every third of its length; in between, what was last known.

        A waiting worker therefore writes to the store every few seconds, not every tick.
        """
        with self._lease_lock:
            if not self.lease_timer.ready(now):
                return self.held
            try:
                held = self.service.hold_lease(LEASE, holder=self.holder, ttl_seconds=self.lease_seconds)
            except ShipyardError as exc:
                log.warning("renewing the worker lease failed: %s", exc.message)
                held = False
            if held != self.held:
                log.info("worker %s %s the lease", self.holder, "holds" if held else "waits for")
            self.held = held
            return held

    def _heartbeat(self, stop: threading.Event) -> None:
        """Keep the lease renewed while a tick runs long (a retrain takes minutes; the lease lasts seconds)."""
        while not stop.wait(self.lease_timer.every / 2):
            self._lease(self.clock())

    def _monitors_due(self, now: float) -> list[str]:
        due = []
        for name, spec in sorted(self.service.settings.spec.models.items()):
            interval = spec.monitoring.interval
            if interval <= 0:
                continue
            timer = self.monitors.get(name)
            if timer is None:
                timer = self.monitors[name] = Timer(interval, due=now + self._since_last_run(name, interval))
            if timer.ready(now) and self.service.champion(name) is not None:
                due.append(name)
        return due

    def _since_last_run(self, model: str, interval: float) -> float:
        """Seconds until the next run is due, counting from the last monitor run the store holds (so a
        restarted worker does not run every monitor at once)."""
        try:
            runs = self.service.monitor_runs(model, limit=1)
        except ShipyardError:
            return 0.0
        if not runs:
            return 0.0
        age = (datetime.now(UTC) - runs[0].at).total_seconds()
        return max(0.0, interval - age)

    # -- notifications ----------------------------------------------------------------------

    @property
    def notifying(self) -> bool:
        """Whether the project asks for notifications (team mode, with ``server.notify_url``)."""
        server = self.service.settings.spec.server
        return server is not None and bool(server.notify_url)

    def notify(self) -> NotifyPass:
        """One notifier pass; a message not delivered holds the pass back for a doubling pause."""
        outcome = self.service.notify(attempts=NOTIFY_ATTEMPTS)
        if outcome.waiting is not None:
            pause = min(NOTIFY_BACKOFF_CAP, NOTIFY_BACKOFF * 2 ** max(0, outcome.attempts - 1))
            self.notify_timer.due = self.clock() + pause
        return outcome

    # -- figures ------------------------------------------------------------------------------

    def refresh_figures(self) -> None:
        """Open alerts and the KPIs, with the audit chain verified only past the last verified event."""
        # Until the chain breaks the checkpoint moves on; after a break it stays, so every refresh finds the break again.
        audit, self._checkpoint = self.service.audit_verify_from(self._checkpoint)
        open_alerts: dict[tuple[str, str], float] = {}
        for alert in self.service.alerts(state="open"):
            open_alerts[(alert.model, alert.signal)] = open_alerts.get((alert.model, alert.signal), 0.0) + 1.0
        figures: list[Figure] = [
            ("shipyard_alerts_open", "Open alerts by model and signal", {"model": m, "signal": sig}, n)
            for (m, sig), n in open_alerts.items()
        ]
        kpis = self.service.kpis("30d", audit=audit, commit_time=self._commit_time)
        self.figures.update(figures + kpis.gauges())

    def _commit_time(self, commit: str) -> datetime | None:
        # A commit's time never changes: ask git once per commit, not once per refresh.
        if commit not in self._commit_times:
            self._commit_times[commit] = self.service.commit_time(commit)
        return self._commit_times[commit]

    # -- running ---------------------------------------------------------------------------------

    def start(self, tick_seconds: float = 0.25) -> Worker:
        """Tick on a thread of this process (beside a gateway) until ``stop``."""
        self._thread = threading.Thread(target=self.run, args=(tick_seconds,), name="shipyard worker", daemon=True)
        self._thread.start()
        return self

    def run(self, tick_seconds: float = 0.25, *, stop: threading.Event | None = None) -> None:
        """Tick until ``stop`` (this worker's own stop, or the one given); give the lease back on the way out."""
        stop = stop or self._stop
        heartbeat = threading.Thread(target=self._heartbeat, args=(stop,), name="shipyard worker lease", daemon=True)
        heartbeat.start()
        try:
            while not stop.is_set():
                self.tick()
                stop.wait(tick_seconds)
        finally:
            stop.set()
            heartbeat.join()
            self.release()

    def release(self) -> None:
        """Give the lease back, so another worker need not wait for it to lapse."""
        with self._lease_lock:
            if not self.held:
                return
            try:
                self.service.release_lease(LEASE, holder=self.holder)
            except ShipyardError as exc:
                log.warning("releasing the worker lease failed: %s", exc.message)
            self.held = False

    def stop(self, timeout: float = 600.0) -> None:
        """Stop after the current tick (a retrain in progress is waited for)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
