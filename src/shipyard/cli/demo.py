"""`shipyard demo`: the governed loop on the bundled churn example, narrated with Rich."""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.cli.render import esc, footprint_text, ident, print_gate, print_table, rich_steps, top_features
from shipyard.domain.errors import Conflict, GateBlocked, PermissionDenied, ShipyardError
from shipyard.domain.stages import Stage

if TYPE_CHECKING:
    from rich.console import Console

    from shipyard.service import MonitorOutcome, Shipyard

SHIFTED = 800  # predictions of the shifted population before the monitor judges them
SCIENTIST = "dana.scientist"
REVIEWER = "rui.reviewer"
DEPLOYER = "ops.deployer"
MONITOR = "shipyard.monitor"  # the monitor's service principal (monitoring.actor)


class DemoFailed(ShipyardError):
    """The demo's story went another way than it tells: a bug, or a machine too busy for its time limits."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class People:
    """Who acts in the story: three people and the monitor's service principal (each a service, local or remote),
    and ``local``, the project on this machine for what only its files hold (paths, MLflow for a plain client)."""

    scientist: Shipyard
    reviewer: Shipyard
    deployer: Shipyard
    monitor: Shipyard
    local: Shipyard


def run_demo(directory: Path | None, *, force: bool, console: Console, team: bool = False) -> bool:
    """Run the demo; return whether the audit chain verified at the end. ``team``: every person acts through a real
    `shipyard server` with their own token, as in team mode."""
    from shipyard.scaffold import init_project
    from shipyard.service import Shipyard

    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="shipyard-demo-")) if directory is None else directory
    root = init_project(root, force=force)
    console.rule("[bold]Shipyard demo[/]: churn model, candidate → staging → production, through gates")
    console.print(f"Project: [bold]{esc(root)}[/] (shipyard.yaml, train.py, policies/churn.yaml, data/churn.parquet)")
    console.print(f"People: {SCIENTIST} (scientist), {REVIEWER} (approver), {DEPLOYER} (deployer)")
    if team:
        from shipyard.cli.demo_team import TeamServer

        with TeamServer(root, console, people=(SCIENTIST, REVIEWER, DEPLOYER, MONITOR)) as server:
            people = People(
                scientist=server.person(SCIENTIST),
                reviewer=server.person(REVIEWER),
                deployer=server.person(DEPLOYER),
                monitor=server.person(MONITOR),
                local=Shipyard.open(root, actor=DEPLOYER),
            )
            ok = _story(console, root, people)
    else:
        scientist = Shipyard.open(root, actor=SCIENTIST)
        people = People(
            scientist=scientist,
            reviewer=Shipyard.open(root, actor=REVIEWER),
            deployer=Shipyard.open(root, actor=DEPLOYER),
            monitor=scientist.as_actor(MONITOR),
            local=scientist,
        )
        ok = _story(console, root, people)
    console.print(
        f"\nDemo finished in {time.perf_counter() - started:.1f} s. Explore it: [bold]cd {esc(root)} && shipyard models list[/]"
    )
    if not team:  # a team project's UI is its server's, which stopped with the demo
        console.print(f"In the browser, as the reviewer: [bold]shipyard -C {esc(root)} --actor {REVIEWER} ui[/]")
    return ok


def _story(console: Console, root: Path, people: People) -> bool:
    from shipyard.scaffold import commit_all

    scientist, reviewer, deployer = people.scientist, people.reviewer, people.deployer
    try:
        first = _train(console, scientist, "1. Train on the first 30 months of customers")
        _promote(console, scientist, first, Stage.STAGING, "holdout metrics reviewed")
        _refuse_skip(console, scientist, deployer)
        _blocked(console, deployer, first, Stage.PRODUCTION, "first churn model for the retention team")
        _refused(console, lambda: scientist.approve("churn", first, Stage.PRODUCTION, comment="looks good to me"))
        _approve(console, reviewer, first)
        _promote(console, deployer, first, Stage.PRODUCTION, "first churn model for the retention team")

        console.print("\n[bold]2. A quarter of new customers arrives[/]; the data file and its fingerprint change")
        _append_quarter(root / "data" / "churn.parquet")
        commit_all(root, "Add Q3 2025 customers")
        second = _train(console, scientist, "   Retrain through the same governed pipeline")
        _promote(console, scientist, second, Stage.STAGING, "retrained on fresher data")
        _approve(console, reviewer, second)

        with Traffic(people.local) as traffic:
            console.print(f"\n[bold]3. Live traffic[/] from {traffic.clients} clients through the gateway `shipyard serve` runs")
            _rollout(console, deployer, traffic, second, "canary v%d: 25%% → 50%% → 100%% of traffic, judged at each step")
            console.print("\n[bold]4. A version that ranks as well but scores differently[/] (churners weighted 6 to 1)")
            train_file = root / "train.py"
            plain = train_file.read_text()
            train_file.write_text(plain.replace("random_state=0)", "random_state=0, class_weight={0: 1, 1: 6})"))
            commit_all(root, "Weight churners up")
            third = _train(console, scientist, "   Train, gate, approve as usual")
            _promote(console, scientist, third, Stage.STAGING, "same AUC on the holdout")
            _approve(console, reviewer, third)
            _rollout(console, deployer, traffic, third, "canary v%d: the live analysis decides")
            train_file.write_text(plain)  # the team drops the weighting the canary turned down
            commit_all(root, "Drop the churner weighting")
            _closed_loop(console, root, people, traffic)
        traffic.report(console)

        _summary(console, scientist)
        _shipped_features(console, scientist)
        _champion_answers(console, people.local)
        _kpis(console, scientist)
        return _verify(console, scientist)
    finally:
        for service in {id(s): s for s in (scientist, reviewer, deployer, people.monitor, people.local)}.values():
            service.close()


def _train(console: Console, service: Shipyard, title: str) -> int:
    console.print(f"\n[bold]{title}[/] (actor {service.actor})")
    with rich_steps(console) as step:
        result = service.run_pipeline("churn", progress=step)
    m = result.metrics
    console.print(
        f"   churn v{result.version.version} registered as [cyan]candidate[/]: "
        f"roc_auc {m['roc_auc']:.3f}, accuracy {m['accuracy']:.3f}, f1 {m['f1']:.3f} "
        f"on the {result.rows_holdout} most recent customers",
        highlight=False,
    )
    return result.version.version


def _promote(console: Console, service: Shipyard, version: int, to: Stage, reason: str) -> None:
    outcome = service.promote("churn", version, to, reason=reason)
    p = outcome.promotion
    if outcome.gate is not None:
        print_gate(console, outcome.gate.to_dict())
    archived = "".join(f"; v{old.version} production → archived" for old in p.archived)
    console.print(f"   {service.actor}: churn v{version} {p.from_stage.value} → [bold]{to.value}[/]{archived}")


def _blocked(console: Console, service: Shipyard, version: int, to: Stage, reason: str) -> None:
    try:
        service.promote("churn", version, to, reason=reason)
    except GateBlocked as exc:
        console.print(f"   [bold red]blocked[/]: {esc(service.actor)} → {to.value}: {esc(exc.message)}")
        console.print("   " + (exc.hint or "").replace("\n", "\n   "), highlight=False, markup=False)
        return
    raise DemoFailed(f"the demo expected {service.actor}'s promotion of churn v{version} to {to.value} to be blocked")


def _refused(console: Console, action: Callable[[], object]) -> None:
    try:
        action()
    except PermissionDenied as exc:
        console.print(f"   [red]refused[/]: {esc(exc.message)}")
        return
    raise DemoFailed("the demo expected an approval by a scientist to be refused")


def _approve(console: Console, service: Shipyard, version: int) -> None:
    approval = service.approve("churn", version, Stage.PRODUCTION, comment="evidence and model card reviewed")
    console.print(f"   {approval.actor} ({', '.join(approval.roles)}) approved churn v{version} for production")


def _refuse_skip(console: Console, scientist: Shipyard, deployer: Shipyard) -> None:
    """Show the stage machine refusing a shortcut: a fresh candidate cannot jump to production."""
    candidate = scientist.run_pipeline("churn")
    try:
        deployer.promote("churn", candidate.version.version, Stage.PRODUCTION, reason="skip the queue")
    except Conflict as exc:
        console.print(f"   [red]refused[/]: {esc(exc.message)}. {esc(exc.hint)}")
    scientist.promote("churn", candidate.version.version, Stage.REJECTED, reason="duplicate of v1, trained on the same data")
    console.print(f"   churn v{candidate.version.version} (same data as v1) → [red]rejected[/]")


def _append_quarter(path: Path) -> None:
    from datetime import date

    import pandas as pd

    from shipyard.examples.churn.generator import generate

    current = pd.read_parquet(path)
    fresh = generate(5_000, seed=8, start=date(2025, 7, 1), end=date(2025, 9, 30), id_offset=len(current))
    pd.concat([current, fresh], ignore_index=True).to_parquet(path, index=False)


def _summary(console: Console, service: Shipyard) -> None:
    from rich.table import Table

    table = Table(title="churn versions")
    for column in ("version", "stage", "roc_auc", "accuracy", "data sha256", "registered by"):
        table.add_column(column)
    for v in service.versions("churn"):
        table.add_row(
            str(v.version),
            ident(v.stage.value),
            f"{v.metrics['roc_auc']:.3f}",
            f"{v.metrics['accuracy']:.3f}",
            ident((v.data_fingerprint or "-")[:12]),
            ident(v.registered_by),
        )
    console.print()
    print_table(console, table)


def _shipped_features(console: Console, service: Shipyard) -> None:
    """What the shipped version's scores rest on, and what it costs to serve, from its evidence."""
    champion = next((v for v in service.versions("churn") if v.stage is Stage.PRODUCTION), None)
    if champion is None:
        return
    evidence = service.evidence("churn", champion.version)
    for label, text in (("rests on", top_features(evidence)), ("costs", footprint_text(evidence))):
        if text:
            console.print(f"Shipped churn v{champion.version} {label}: {text}", highlight=False, markup=False)


def _champion_answers(console: Console, service: Shipyard) -> None:
    """Play a plain MLflow client: it finds the champion through the alias Shipyard maintains."""
    import mlflow
    import pandas as pd

    from shipyard.examples.churn.generator import generate

    mlflow.set_tracking_uri(service.settings.tracking_uri)
    mlflow.set_registry_uri(service.settings.registry_uri)
    champion = mlflow.pyfunc.load_model("models:/churn@production")
    sample = generate(3, seed=99).drop(columns=["customer_id", "signup_date", "churned"])
    predictions = champion.predict(pd.DataFrame(sample))
    aliases = service.registry.aliases("churn")
    console.print(
        f"MLflow aliases: {', '.join(f'@{a} → v{v}' for a, v in sorted(aliases.items()))}; "
        f"mlflow.pyfunc.load_model('models:/churn@production') predicts {[int(p) for p in predictions]} for 3 new customers",
        highlight=False,
        markup=False,
    )


class Traffic:
    """`shipyard serve` in its own process on a loopback port — the gateway with its worker, as a user runs it, so
    the training this demo does never shares a process with serving — and clients sending customers until stopped."""

    def __init__(self, service: Shipyard, clients: int = 16) -> None:
        from shipyard.serving.server import free_port

        self.service, self.clients = service, clients
        self.log_dir = service.settings.state_dir / "predictions"
        self.url = f"http://127.0.0.1:{free_port()}"
        self.process: subprocess.Popen[bytes] | None = None
        self.serve_log = service.settings.state_dir / "demo-serve.log"  # what `shipyard serve` writes to stderr
        self.statuses: list[int] = []  # 0 for a request that got no HTTP answer at all
        self.errors: dict[str, int] = {}  # requests not answered 200, by what went wrong
        self.stopped: str | None = None  # why the clients stopped, when they stopped before the demo's end
        self.latencies: list[float] = []
        self.shifted = False  # clients send the shifted population (a price rise) while this is set
        self.outcomes: list[tuple[str, int]] = []  # (request id, whether the customer churned) of shifted requests
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._drive, name="demo clients", daemon=True)

    def __enter__(self) -> Traffic:
        import sys

        settings = self.service.settings
        port = self.url.rpartition(":")[2]
        command = [sys.executable, "-m", "shipyard", "--project", str(settings.root), "--actor", settings.actor]
        self.serve_log.parent.mkdir(parents=True, exist_ok=True)
        with self.serve_log.open("wb") as log:  # the child keeps its own handle on it
            self.process = subprocess.Popen(
                [*command, "serve", "--port", port, "--drain-seconds", "0"], stdout=subprocess.DEVNULL, stderr=log
            )
        self.wait_for(self._ready, "`shipyard serve` to be ready", seconds=120)
        self.thread.start()
        return self

    def _ready(self) -> bool:
        import httpx

        if self.process is not None and self.process.poll() is not None:
            raise DemoFailed(f"`shipyard serve` exited with {self.process.returncode}: {self._errors()}")
        try:
            return httpx.get(f"{self.url}/v2/health/ready", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def _errors(self) -> str:
        return self.serve_log.read_text(errors="replace")[-2000:] if self.serve_log.is_file() else ""

    def __exit__(self, *_exc: object) -> None:
        from shipyard.cli.demo_team import stop_process

        self.stopping.set()
        self.thread.join(timeout=60)
        if self.process is not None:
            stop_process(self.process)

    def wait_for(self, condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise DemoFailed(f"the demo waited {seconds:g} s for {what} in vain; {self.state()}")
            time.sleep(0.1)

    def state(self) -> str:
        """The clients and the gateway (its readiness, models it could not load, what it logged), for a demo
        that has to give up."""
        import httpx

        errors = ", ".join(f"{n}× {what}" for what, n in self.errors.items())
        try:
            ready = httpx.get(f"{self.url}/v2/health/ready", timeout=5).text
        except httpx.HTTPError as exc:
            ready = f"no answer ({type(exc).__name__})"
        logged = self._errors().strip()
        return (
            f"clients: {self.statuses.count(200)}/{len(self.statuses)} answered 200"
            + (f", not answered 200: {errors}" if errors else "")
            + (f", stopped: {self.stopped}" if self.stopped else "")
            + f"; gateway readiness: {ready}"
            + (f"; the gateway logged: {logged}" if logged else "")
        )

    def _drive(self) -> None:
        import asyncio
        from datetime import date

        import httpx

        from shipyard.examples.churn.generator import generate

        def population(**knobs: float) -> tuple[list[dict[str, object]], list[int]]:
            rows = generate(2000, seed=21, start=date(2025, 10, 1), end=date(2025, 12, 31), **knobs)  # type: ignore[arg-type]
            return rows.drop(columns=["customer_id", "signup_date", "churned"]).to_dict(orient="records"), rows[
                "churned"
            ].tolist()

        usual, _ = population()
        # The generator's knobs: prices up 30% and most new customers on month-to-month contracts.
        shifted, churned = population(price_rise=0.30, month_to_month_share=0.85)

        async def client(offset: int, http: httpx.AsyncClient) -> None:
            i = offset
            while not self.stopping.is_set():
                started = time.perf_counter()
                records, j = (shifted, i % len(shifted)) if self.shifted else (usual, i % len(usual))
                try:
                    response = await http.post("/v1/models/churn:predict", json={"instances": [records[j]]})
                except httpx.HTTPError as exc:  # counted and shown; the client goes on, as a real one would
                    what = f"{type(exc).__name__} {exc}".strip()
                    self.errors[what] = self.errors.get(what, 0) + 1
                    self.statuses.append(0)
                    await asyncio.sleep(0.05)
                    i += self.clients
                    continue
                self.latencies.append((time.perf_counter() - started) * 1000)
                self.statuses.append(response.status_code)
                if response.status_code != 200:  # counted and shown with what the gateway said
                    what = f"HTTP {response.status_code} {response.text[:200]}"
                    self.errors[what] = self.errors.get(what, 0) + 1
                if records is shifted and response.status_code == 200:
                    self.outcomes.append((response.headers["x-request-id"], churned[j]))
                i += self.clients

        async def main() -> None:
            async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
                await asyncio.gather(*(client(n, http) for n in range(self.clients)))

        try:
            asyncio.run(main())
        except Exception as exc:  # the demo's next wait, or its report, says so
            self.stopped = f"{type(exc).__name__}: {exc}"

    def report(self, console: Console) -> None:
        import statistics

        from shipyard.predlog import read_log

        rows = read_log(self.log_dir, model="churn").num_rows
        ok = self.statuses.count(200)
        errors = "".join(f"; not answered 200: {n}× {what}" for what, n in self.errors.items())
        errors += f"; the clients stopped early: {self.stopped}" if self.stopped else ""
        console.print(
            f"\n   Clients: {ok}/{len(self.statuses)} requests answered 200 through every rollout, median latency "
            f"{statistics.median(self.latencies):.1f} ms; prediction log: {rows} rows under {self.log_dir}{errors}",
            highlight=False,
            markup=False,
        )


ROLLOUT_SECONDS = 180  # a demo rollout takes about 10 s; past this, something is stuck


def _rollout(
    console: Console, service: Shipyard, traffic: Traffic, version: int, title: str, checks: dict[str, float] | None = None
) -> None:
    console.print(f"   {service.actor}: {title % version}")
    service.start_rollout("churn", version, steps=[25, 50, 100], interval=2.0, checks=checks)
    seen = 1
    deadline = time.monotonic() + ROLLOUT_SECONDS
    while True:
        rollout, _ = service.rollout_status("churn", judge=False)  # the worker's controller judges
        if rollout is None:
            raise DemoFailed(f"the rollout of churn v{version} disappeared from the store")
        if time.monotonic() > deadline:
            _, live = service.rollout_status("churn")
            waiting = "; ".join(f"{c.name} {c.observed} (expected {c.threshold})" for c in live.checks) if live else "-"
            raise DemoFailed(
                f"the rollout of churn v{version} was still {rollout.state} at {rollout.weight:.0%} of traffic after "
                f"{ROLLOUT_SECONDS} s; its step's analysis: {waiting}; {traffic.state()}"
            )
        for event in rollout.history[seen:]:
            judged = ", ".join(
                f"{c['name']} {c['observed']}"
                for c in (event.get("analysis") or {}).get("checks", [])
                if c["name"] != "challenger requests"
            )
            weight = f" → {event['weight']:g}% of traffic" if "weight" in event else ""
            console.print(f"     {event['event']}{weight} ({judged})", highlight=False, markup=False)
        seen = len(rollout.history)
        if not rollout.active:
            style = "green" if rollout.state == "promoted" else "red"
            console.print(f"   rollout of v{version}: [{style}]{rollout.state.replace('_', ' ')}[/]")
            return
        time.sleep(0.3)


def _closed_loop(console: Console, root: Path, people: People, traffic: Traffic) -> None:
    """Drift in live traffic → an alert → a governed retrain → gates → a rollout; then the shift ends and the alert resolves."""
    import csv

    console.print("\n[bold]5. The closed loop[/]: prices rise 30% and month-to-month contracts jump to 85% of new customers")
    traffic.shifted = True
    traffic.wait_for(lambda: len(traffic.outcomes) >= SHIFTED, f"{SHIFTED} answers to shifted customers")
    time.sleep(1.0)  # the prediction log flushes every half second
    labels = root / "labels.csv"
    with labels.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["request_id", "churned"])
        writer.writerows(traffic.outcomes)
    scientist, reviewer, deployer, monitor = people.scientist, people.reviewer, people.deployer, people.monitor
    ingested = scientist.ingest_labels(labels, model="churn")
    console.print(
        f"   labels ingest: {ingested.matched} outcomes of shifted customers joined to the prediction log by request id"
    )
    first = _monitor(console, monitor, "monitor run (what a scheduler or `shipyard serve` calls)", last=SHIFTED)
    retrained = next((a for a in first.actions if a["action"] == "retrain" and a["state"] == "done"), None)
    if retrained is None:
        raise DemoFailed(f"the demo expected the monitor to retrain; it did {first.actions or 'nothing'}")
    version = int(retrained["version"])
    console.print(
        f"   retrain by shipyard.monitor on {retrained['labelled_rows']} labelled production rows: churn v{version}, "
        f"staging gate {retrained['staging']}; production: {retrained.get('rollout', '-')}",
        highlight=False,
        markup=False,
    )
    _monitor(console, monitor, "the drift is still there: the open alert is refreshed, not repeated", last=SHIFTED)
    _approve(console, reviewer, version)
    console.print(
        "   The retrained model scores the new population differently by design, so the deployer widens the\n"
        "   divergence check for this rollout only (recorded with it); errors and latency still judge it"
    )
    _rollout(console, deployer, traffic, version, "canary v%d, retrained on the new population", checks={"max_divergence": 2.0})
    console.print("   The promotion ends: prices and contracts return to the usual mix")
    traffic.shifted = False
    sent = len(traffic.statuses)
    traffic.wait_for(lambda: len(traffic.statuses) >= sent + SHIFTED, f"{SHIFTED} answers after the shift")
    time.sleep(1.0)
    _monitor(console, monitor, "monitor run on the new champion", last=SHIFTED)
    request_id = traffic.outcomes[-1][0]
    _trace(console, scientist, request_id)


def _monitor(console: Console, service: Shipyard, title: str, *, last: int) -> MonitorOutcome:
    console.print(f"   {title}:")
    (outcome,) = service.monitor("churn", last=last)
    drift = outcome.run.report.get("drift") or {}
    drifted = drift.get("drifted") or []
    console.print(
        f"     churn v{outcome.version}: {outcome.run.rows} predictions; drifted features: {', '.join(drifted) or 'none'}",
        highlight=False,
        markup=False,
    )
    for alert in outcome.opened:
        console.print(
            f"     [red]alert {alert.id} opened[/]: {alert.signal} {alert.observed:.3f} ≥ {alert.threshold} → {alert.action}"
        )
    for alert in outcome.ongoing:
        again = f"no second {alert.action}" if alert.action != "none" else "no action configured"
        console.print(f"     alert {alert.id} ({alert.signal}) still open, seen {alert.seen}×: {again}")
    for alert in outcome.resolved:
        console.print(f"     [green]alert {alert.id} resolved[/] ({alert.signal} back under {alert.threshold})")
    return outcome


def _trace(console: Console, service: Shipyard, request_id: str) -> None:
    found = service.trace(request_id)
    answer = found["answers"][0]
    v, data, code = answer["version"], answer["data"], answer["code"]
    approvals = ", ".join(f"{a['actor']} ({a['stage']})" for a in answer["approvals"]) or "none"
    gates = ", ".join(f"{g['stage']} {'passed' if g['passed'] else 'blocked'}" for g in answer["gates"])
    console.print(
        f"   shipyard trace {request_id}: churn v{v['version']} ← run {answer['training_run'][:8]} ← data sha256 "
        f"{(data['fingerprint'] or '-')[:12]} ← commit {(code['git_commit'] or '-')[:8]}; "
        f"gates: {gates}; approvals: {approvals}; "
        f"rollouts: {', '.join(str(r['id']) + ' ' + r['state'] for r in answer['rollouts']) or 'none'}",
        highlight=False,
        markup=False,
    )


def _kpis(console: Console, service: Shipyard) -> None:
    figures = service.kpis("30d").to_dict()
    delivery, governance = figures["delivery"], figures["governance"]

    def seconds(entry: dict[str, float | None] | None) -> str:
        value = (entry or {}).get("median_seconds")
        return f"{value:.0f} s" if value is not None else "-"

    rate = delivery["change_failure_rate"]
    console.print(
        f"KPIs (`shipyard kpis`): {delivery['deployments']} deployments, lead time {seconds(delivery['lead_time'])} "
        f"(median, registration → production), change failure rate {rate:.0%}, time to restore "
        f"{seconds(delivery['time_to_restore'])}; production versions with complete evidence, lineage and approvals: "
        f"{governance['evidence_complete_share']:.0%} / {governance['lineage_share']:.0%} / {governance['approved_share']:.0%}",
        highlight=False,
        markup=False,
    )


def _verify(console: Console, service: Shipyard) -> bool:
    result = service.audit_verify()
    events = service.audit_log("churn")
    if result.ok:
        last = events[-1]
        signed = (
            f"; {result.checkpoints} signed checkpoints, the last vouching for events 1–{result.signed_through}"
            f" ({result.unsigned_tail} after it await the next)"
            if result.checkpoints
            else ""
        )
        console.print(
            f"[green]audit verify: chain intact[/] ({result.events} events, e.g. #{last.seq} {last.action} by {last.actor}"
            f"{signed})"
        )
    else:
        console.print(f"[red]audit verify failed at event {result.first_bad_seq}[/]: {result.problem}")
    return result.ok
