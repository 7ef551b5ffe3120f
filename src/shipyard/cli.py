"""The command line: parse, call the Shipyard service, render. No rules live here."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from shipyard.domain.errors import InvalidSpec, ShipyardError

if TYPE_CHECKING:
    from rich.console import Console

    from shipyard.domain.entities import ModelVersion
    from shipyard.service import Shipyard


class _Group(TyperGroup):
    """Renders every ShipyardError as one clear message and its exit code; never a traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click Context
        try:
            return super().invoke(ctx)
        except ShipyardError as exc:
            render_error(exc)
            raise typer.Exit(exc.exit_code) from None


def render_error(exc: ShipyardError) -> None:
    console = err_console()
    console.print(f"[bold red]error:[/] {exc.message}", highlight=False, markup=True, soft_wrap=True)
    if exc.hint:
        console.print(exc.hint, highlight=False, soft_wrap=True)


def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def out_console() -> Console:
    from rich.console import Console

    return Console()


app = typer.Typer(
    cls=_Group,
    help="Shipyard: governed, fast path from a trained model to production traffic.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
pipeline_app = typer.Typer(cls=_Group, help="The governed training pipeline.", no_args_is_help=True)
models_app = typer.Typer(cls=_Group, help="Registered models and versions.", no_args_is_help=True)
audit_app = typer.Typer(cls=_Group, help="The tamper-evident audit log.", no_args_is_help=True)
db_app = typer.Typer(cls=_Group, help="Shipyard's store.", no_args_is_help=True)
gate_app = typer.Typer(cls=_Group, help="Policy gates.", no_args_is_help=True)
evidence_app = typer.Typer(cls=_Group, help="Evidence about versions.", no_args_is_help=True)
rollout_app = typer.Typer(cls=_Group, help="Progressive delivery: canary, shadow, blue-green.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(models_app, name="models")
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")
app.add_typer(gate_app, name="gate")
app.add_typer(evidence_app, name="evidence")
app.add_typer(rollout_app, name="rollout")
monitor_app = typer.Typer(cls=_Group, help="Drift, performance and alerts on production traffic.", no_args_is_help=True)
labels_app = typer.Typer(cls=_Group, help="Ground truth for logged predictions.", no_args_is_help=True)
app.add_typer(monitor_app, name="monitor")
app.add_typer(labels_app, name="labels")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]


class _State:
    def __init__(self, project: Path | None, actor: str | None) -> None:
        self.project = project
        self.actor = actor
        self._service: Shipyard | None = None

    def service(self) -> Shipyard:
        if self._service is None:
            from shipyard.service import Shipyard

            self._service = Shipyard.open(self.project, actor=self.actor)
        return self._service

    def close(self) -> None:
        if self._service is not None:
            self._service.close()


@app.callback()
def _root(
    ctx: typer.Context,
    project: Annotated[
        Path | None, typer.Option("--project", "-C", help="Project folder (default: the nearest folder with shipyard.yaml).")
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who is acting (default: $SHIPYARD_ACTOR, else the OS user).")
    ] = None,
) -> None:
    import logging
    import os

    # MLflow and Alembic narrate at INFO; the CLI speaks for itself. (MLflow
    # sets its own level when imported, from this variable.)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    state = _State(project, actor)
    ctx.obj = state
    ctx.call_on_close(state.close)


def _svc(ctx: typer.Context) -> Shipyard:
    state: _State = ctx.obj
    return state.service()


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")


def _short(value: str | None, width: int = 12) -> str:
    return value[:width] if value else "-"


def _metric(version: ModelVersion, name: str) -> str:
    value = version.metrics.get(name)
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


STAGE_STYLE = {"candidate": "cyan", "staging": "yellow", "production": "bold green", "archived": "dim", "rejected": "red"}


# -- project ----------------------------------------------------------------------


@app.command()
def init(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")],
    force: Annotated[bool, typer.Option("--force", help="Write into a folder that is not empty.")] = False,
    example: Annotated[str, typer.Option("--example", help="churn (synthetic) or arrests (real data, for fairness).")] = "churn",
) -> None:
    """Scaffold a project: shipyard.yaml, train.py, a policy and the example's data."""
    from shipyard.config import default_actor
    from shipyard.scaffold import init_project

    state: _State = ctx.obj
    actor = state.actor or default_actor()
    root = init_project(directory, force=force, example=example, actor=actor)
    out_console().print(
        f"Created a Shipyard project in [bold]{root}[/] ({actor} is a scientist and deployer there)\n"
        f"Next: [bold]cd {root} && shipyard pipeline run {example}[/]"
    )


@app.command()
def demo(
    ctx: typer.Context,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Folder for the demo project (default: a new temporary folder).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Reuse --dir even if it is not empty.")] = False,
) -> None:
    """Make a fresh project and run the governed loop on the churn example."""
    from shipyard.demo import run_demo

    ok = run_demo(directory, force=force, console=out_console())
    if not ok:
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Migrate the store's schema to this version of Shipyard."""
    from shipyard.store.database import redact

    service = _svc(ctx)
    revision = service.upgrade_store()
    out_console().print(f"Store {redact(service.settings.store_url)} is at schema revision {revision}.")


# -- pipeline ---------------------------------------------------------------------


@contextmanager
def rich_steps(console: Console) -> Iterator[Any]:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=False
    ) as bar:

        @contextmanager
        def step(name: str) -> Iterator[None]:
            task = bar.add_task(name, total=1)
            yield
            bar.update(task, completed=1, description=f"[green]✓[/] {name}")

        yield step


@pipeline_app.command("run")
def pipeline_run(ctx: typer.Context, model: str, as_json: JsonFlag = False) -> None:
    """Train, evaluate, log and register a new candidate version of MODEL."""
    service = _svc(ctx)
    if as_json:
        result = service.run_pipeline(model)
        emit_json(result.to_dict())
        return
    console = out_console()
    with rich_steps(err_console()) as step:
        result = service.run_pipeline(model, progress=step)
    v = result.version
    metrics = "  ".join(f"{k}={val:.4f}" for k, val in result.metrics.items())
    console.print(f"Registered [bold]{v.model}[/] version [bold]{v.version}[/] as [cyan]{v.stage.value}[/] (run {result.run_id})")
    console.print(f"holdout ({result.rows_holdout} rows): {metrics}", highlight=False)


# -- models -------------------------------------------------------------------------


@models_app.command("list")
def models_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every model and its versions, with stages and key metrics."""
    service = _svc(ctx)
    models = service.models()
    versions = service.versions()
    if as_json:
        emit_json({"models": [{**m.to_dict(), "versions": [v.to_dict() for v in versions if v.model == m.name]} for m in models]})
        return
    from rich import box
    from rich.table import Table

    table = Table(title="Models", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    table.add_column("model", no_wrap=True)
    table.add_column("v", justify="right")
    table.add_column("stage", no_wrap=True)
    table.add_column("roc_auc", justify="right", no_wrap=True)
    table.add_column("accuracy", justify="right", no_wrap=True)
    table.add_column("data", no_wrap=True)
    table.add_column("registered", no_wrap=True)
    table.add_column("by", overflow="fold", min_width=12)
    for v in versions:
        style = STAGE_STYLE.get(v.stage.value, "")
        table.add_row(
            v.model,
            str(v.version),
            f"[{style}]{v.stage.value}[/]",
            _metric(v, "roc_auc"),
            _metric(v, "accuracy"),
            _short(v.data_fingerprint, 8),
            f"{v.registered_at:%Y-%m-%d}",
            v.registered_by,
        )
    console = out_console()
    console.print(table if versions else "No model is registered yet; run `shipyard pipeline run MODEL`.")


@models_app.command("show")
def models_show(
    ctx: typer.Context,
    model: str,
    version: Annotated[int | None, typer.Argument(help="Version number (default: the latest).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """One version: stage, metrics, data fingerprint, lineage and stage history."""
    detail = _svc(ctx).describe(model, version)
    if as_json:
        emit_json(detail.to_dict())
        return
    from rich.table import Table

    v = detail.version
    console = out_console()
    style = STAGE_STYLE.get(v.stage.value, "")
    console.print(f"[bold]{v.model}[/] version [bold]{v.version}[/]: [{style}]{v.stage.value}[/]")
    facts = Table(show_header=False, box=None)
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("aliases", ", ".join(detail.aliases) or "-")
    facts.add_row("registered", f"{v.registered_at:%Y-%m-%d %H:%M:%S} by {v.registered_by}")
    facts.add_row("run", v.run_id or "-")
    facts.add_row("source", v.source)
    facts.add_row("data", v.data_uri or "-")
    facts.add_row("fingerprint", f"sha256:{v.data_fingerprint}" if v.data_fingerprint else "-")
    facts.add_row("code commit", v.git_commit or "-")
    for name, value in v.metrics.items():
        facts.add_row(f"holdout {name}", f"{value:.4f}")
    for label, text in evidence_lines(detail.evidence):
        facts.add_row(label, text)
    console.print(facts)
    history = Table(title="Stage history")
    for column in ("at", "from", "to", "actor", "reason"):
        history.add_column(column)
    for h in detail.history:
        history.add_row(
            f"{h.at:%Y-%m-%d %H:%M:%S}", h.from_stage.value if h.from_stage else "-", h.to_stage.value, h.actor, h.reason
        )
    console.print(history)


def evidence_lines(evidence: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A few lines that say what the evidence found; `evidence show` prints all of it."""
    if not evidence:
        return [("evidence", "none collected")]
    lines = []
    comparison = evidence.get("comparison")
    if comparison:
        boot = comparison["bootstrap"]
        lines.append(
            (
                "vs champion",
                f"v{comparison['champion_version']}: {comparison['metric']} {boot['improvement']:+.4f} "
                f"(CI {boot['ci_low']:+.4f} … {boot['ci_high']:+.4f})",
            )
        )
    for column, report in (evidence.get("fairness") or {}).items():
        lines.append(
            (
                f"fairness {column}",
                f"parity diff {report['demographic_parity_difference']:.4f}, "
                f"equalized odds diff {report['equalized_odds_difference']:.4f}",
            )
        )
    validation = evidence.get("data_validation") or {}
    if validation:
        lines.append(
            (
                "data validation",
                "passed"
                if validation.get("passed")
                else f"{len(validation.get('violations', []))} violations, {validation.get('failing_rows', 0)} rows",
            )
        )
    robustness = evidence.get("robustness") or {}
    if robustness:
        bad = [n for n, p in robustness.get("probes", {}).items() if not p.get("ok")]
        lines.append(("robustness", "all probes passed" if not bad else f"failed: {', '.join(bad)}"))
    lineage = evidence.get("lineage") or {}
    if lineage:
        lines.append(("trained by", str(lineage.get("trained_by"))))
        lines.append(("work tree", {True: "clean", False: "uncommitted changes", None: "unknown"}[lineage.get("git_clean")]))
    lines.append(("artifacts", ", ".join(evidence.get("artifacts", [])) or "-"))
    return lines


@models_app.command("reconcile")
def models_reconcile(ctx: typer.Context, model: Annotated[str | None, typer.Argument()] = None) -> None:
    """Repair MLflow's aliases and stage tags from Shipyard's store."""
    names = _svc(ctx).reconcile(model)
    out_console().print(f"MLflow mirror matches the store for: {', '.join(names) or 'no models'}")


# -- promote ------------------------------------------------------------------------


@app.command()
def promote(
    ctx: typer.Context,
    model: str,
    version: int,
    to: Annotated[str, typer.Option("--to", help="Target stage: staging, production, archived or rejected.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the audit log.")],
    break_glass: Annotated[
        bool, typer.Option("--break-glass", help="Admins only, where the policy allows: promote despite a blocked gate.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Move a version along candidate → staging → production → archived, through the target stage's gate."""
    outcome = _svc(ctx).promote(model, version, to, reason=reason, break_glass=break_glass)
    if as_json:
        emit_json(outcome.to_dict())
        return
    p = outcome.promotion
    console = out_console()
    if outcome.gate is not None:
        print_gate(console, outcome.gate.to_dict())
    flag = " [bold red](break-glass)[/]" if break_glass else ""
    console.print(f"{p.version.model} version {p.version.version}: {p.from_stage.value} → [bold]{p.version.stage.value}[/]{flag}")
    for old in p.archived:
        console.print(f"{old.model} version {old.version}: production → archived")
    if not outcome.mirrored:
        err_console().print(
            f"[yellow]warning:[/] the store changed but MLflow's aliases did not: {outcome.mirror_error}\n"
            "Run `shipyard models reconcile` to repair them."
        )


# -- gates, approvals, evidence ----------------------------------------------------------

OUTCOME_STYLE = {"passed": "green", "failed": "bold red", "warned": "yellow", "error": "bold red"}


def print_gate(console: Console, report: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    verdict = "[green]passed[/]" if report["passed"] else "[bold red]blocked[/]"
    title = f"Gate {report['stage']} for {report['model']}/{report['version']}: {verdict}"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    table.add_column("rule", overflow="fold")
    table.add_column("result", no_wrap=True)
    table.add_column("observed", overflow="fold", ratio=2)
    table.add_column("expected", overflow="fold", ratio=1)
    table.add_column("message", overflow="fold", ratio=1)
    for r in report["results"]:
        style = OUTCOME_STYLE.get(r["outcome"], "")
        table.add_row(r["name"], f"[{style}]{r['outcome']}[/]", str(r["observed"]), str(r["expected"]), r["message"] or "")
    console.print(table if report["results"] else f"{title}: the policy has no rules for {report['stage']}")


@gate_app.command("check")
def gate_check(
    ctx: typer.Context,
    model: str,
    version: int,
    to: Annotated[str, typer.Option("--to", help="Stage whose gate to evaluate: staging or production.")],
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a gate without changing anything; exit 1 when it blocks."""
    report = _svc(ctx).gate(model, version, to).to_dict()
    if as_json:
        emit_json(report)
    else:
        print_gate(out_console(), report)
    if not report["passed"]:
        raise typer.Exit(1)


def _sign_off(ctx: typer.Context, model: str, version: int, to: str, comment: str, decision: str, as_json: bool) -> None:
    approval = _svc(ctx).approve(model, version, to, comment=comment, decision=decision)
    if as_json:
        emit_json(approval.to_dict())
        return
    word = "approved" if decision == "approve" else "[red]rejected[/]"
    out_console().print(f"{approval.actor} ({', '.join(approval.roles)}) {word} {model}/{version} for {approval.stage}")


ToStage = Annotated[str, typer.Option("--to", help="The gated stage the sign-off is for: staging or production.")]
Comment = Annotated[str, typer.Option("--comment", help="Kept in the audit log.")]


@app.command()
def approve(ctx: typer.Context, model: str, version: int, to: ToStage, comment: Comment = "", as_json: JsonFlag = False) -> None:
    """Sign off a version for a stage (needs the role the policy asks for; not its registrant or trainer)."""
    _sign_off(ctx, model, version, to, comment, "approve", as_json)


@app.command()
def reject(ctx: typer.Context, model: str, version: int, to: ToStage, comment: Comment = "", as_json: JsonFlag = False) -> None:
    """Record a rejection: the approvals rule then blocks until that approver approves."""
    _sign_off(ctx, model, version, to, comment, "reject", as_json)


@app.command()
def register(
    ctx: typer.Context,
    model: str,
    run_id: Annotated[str, typer.Option("--run-id", help="The MLflow run that logged the model.")],
    artifact_path: Annotated[str, typer.Option("--artifact-path", help="Where in the run the model is.")] = "model",
    as_json: JsonFlag = False,
) -> None:
    """Adopt a model logged by an existing MLflow run as a governed candidate, with full evidence."""
    service = _svc(ctx)
    if as_json:
        emit_json(service.register(model, run_id, artifact_path=artifact_path).to_dict())
        return
    with rich_steps(err_console()) as step:
        result = service.register(model, run_id, artifact_path=artifact_path, progress=step)
    v = result.version
    out_console().print(
        f"Registered [bold]{v.model}[/] version [bold]{v.version}[/] from run {run_id} as [cyan]{v.stage.value}[/]"
    )


@evidence_app.command("show")
def evidence_show(ctx: typer.Context, model: str, version: int) -> None:
    """Print a version's evidence as JSON."""
    emit_json(_svc(ctx).evidence(model, version))


@evidence_app.command("collect")
def evidence_collect(ctx: typer.Context, model: str, version: int) -> None:
    """Collect a version's evidence again (after a policy change, or against a new champion)."""
    found = _svc(ctx).collect_evidence(model, version)
    out_console().print(f"Collected evidence for {model}/{version}: {', '.join(sorted(found))}")


# -- serving ----------------------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 8080,
    models: Annotated[
        str | None, typer.Option("--models", help="Comma-separated models (default: every deployed model).")
    ] = None,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Most rows in one predict call.")] = 64,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", help="Under concurrency, wait this long for a batch to fill (0: never).")
    ] = 1.0,
    log_sample: Annotated[float, typer.Option("--log-sample", help="Share of requests written to the prediction log.")] = 1.0,
    predict_in_thread: Annotated[
        bool, typer.Option("--predict-in-thread/--predict-on-loop", help="Run predict calls in a worker thread.")
    ] = True,
    auth: Annotated[
        bool | None, typer.Option("--auth/--no-auth", help="Require bearer tokens (default: on unless bound to loopback).")
    ] = None,
    controller: Annotated[bool, typer.Option("--controller/--no-controller", help="Drive rollouts from this gateway.")] = True,
    drain_seconds: Annotated[
        float,
        typer.Option("--drain-seconds", min=0.0, help="On SIGTERM: answer, but report not ready, this long; then stop."),
    ] = 5.0,
) -> None:
    """Serve the deployed models: Open Inference Protocol, plain JSON, /metrics, prediction log."""
    import os

    # Before numpy and scikit-learn load: OpenMP threads fighting over the cores cost throughput.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from shipyard.serving.gateway import GatewayConfig, auth_by_default
    from shipyard.serving.server import serve_gateway

    if not 0.0 <= log_sample <= 1.0:
        raise typer.BadParameter(f"--log-sample must be within [0, 1], got {log_sample}")
    service = _svc(ctx)
    config = GatewayConfig(
        models=[m.strip() for m in models.split(",") if m.strip()] if models else None,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        predict_in_thread=predict_in_thread,
        log_sample=log_sample,
        auth=auth_by_default(host) if auth is None else auth,
        controller=controller,
    )
    gateway = service.gateway(config)
    err_console().print(
        f"Serving {', '.join(config.models or ['every deployed model'])} on http://{host}:{port} "
        f"(auth {'on' if config.auth else 'off'}; prediction log in {service.settings.state_dir / 'predictions'})"
    )
    serve_gateway(gateway, host=host, port=port, drain_seconds=drain_seconds)


@app.command()
def token(ctx: typer.Context, name: str) -> None:
    """Create a bearer token for the gateway; it is printed once and stored only as a hash."""
    secret = _svc(ctx).create_token(name)
    out_console().print(f"Token {name}: [bold]{secret}[/]\nSend it as: Authorization: Bearer <token>")


# -- rollouts ---------------------------------------------------------------------------


def _duration(text: str) -> float:
    from shipyard.domain.durations import parse_duration

    try:
        return parse_duration(text)
    except InvalidSpec as exc:
        raise typer.BadParameter(exc.message) from None


def print_rollout(console: Console, rollout: Any, analysis: Any) -> None:
    from rich import box
    from rich.table import Table

    steps = " → ".join(f"[bold]{s:g}%[/]" if i == rollout.step_index else f"{s:g}%" for i, s in enumerate(rollout.steps))
    console.print(
        f"Rollout {rollout.id} of {rollout.model}/{rollout.version} (champion v{rollout.champion}, {rollout.strategy}): "
        f"[bold]{rollout.state}[/]; steps {steps}; failed analyses {rollout.failures}/{rollout.failure_limit}"
    )
    if analysis is not None:
        verdict = {True: "[green]passing[/]", False: "[red]failing[/]", None: "[yellow]waiting for traffic[/]"}[analysis.passed]
        table = Table(title=f"Current step: {verdict}", box=box.SIMPLE_HEAD, title_justify="left")
        for column in ("check", "observed", "threshold", "result"):
            table.add_column(column)
        for check in analysis.checks:
            table.add_row(check.name, str(check.observed), str(check.threshold), "ok" if check.passed else "[red]no[/]")
        console.print(table)
    history = Table(title="History", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("at", "event", "weight"):
        history.add_column(column)
    for event in rollout.history:
        history.add_row(str(event.get("at", ""))[:19], str(event.get("event")), str(event.get("weight", "")))
    console.print(history)


@rollout_app.command("start")
def rollout_start(
    ctx: typer.Context,
    model: str,
    version: int,
    strategy: Annotated[str | None, typer.Option("--strategy", help="canary, shadow or bluegreen.")] = None,
    steps: Annotated[str | None, typer.Option("--steps", help="Challenger traffic per step, e.g. 5,25,50,100.")] = None,
    interval: Annotated[str | None, typer.Option("--interval", help="Traffic time per step, e.g. 30s.")] = None,
    check: Annotated[
        list[str] | None, typer.Option("--check", help="Override an analysis threshold, e.g. max_divergence=0.5 (repeatable).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start a rollout; only a version that passes its production gate can start one."""
    try:
        parsed = [float(s) for s in steps.split(",")] if steps else None
    except ValueError:
        raise typer.BadParameter(f"--steps {steps!r}: expected numbers separated by commas, e.g. 5,25,50,100") from None
    overrides: dict[str, str] = {}
    for item in check or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--check {item!r}: expected NAME=VALUE, e.g. max_divergence=0.5")
        overrides[key.strip()] = value.strip()
    rollout = _svc(ctx).start_rollout(
        model,
        version,
        strategy=strategy,
        steps=parsed,
        interval=_duration(interval) if interval else None,
        checks=overrides or None,
    )
    if as_json:
        emit_json(rollout.to_dict())
    else:
        print_rollout(out_console(), rollout, None)


@rollout_app.command("status")
def rollout_status(ctx: typer.Context, model: str, as_json: JsonFlag = False) -> None:
    """The latest rollout: step, weights, each analysis check with its observed value and threshold, history."""
    rollout, analysis = _svc(ctx).rollout_status(model)
    if as_json:
        emit_json({"rollout": rollout.to_dict() if rollout else None, "analysis": analysis.to_dict() if analysis else None})
    elif rollout is None:
        out_console().print(f"{model} has had no rollout.")
    else:
        print_rollout(out_console(), rollout, analysis)


def _rollout_action(ctx: typer.Context, model: str, action: str) -> None:
    rollout = _svc(ctx).rollout_action(model, action)
    out_console().print(f"Rollout {rollout.id} of {model}/{rollout.version}: {rollout.state}")


@rollout_app.command("pause")
def rollout_pause(ctx: typer.Context, model: str) -> None:
    """Hold the current traffic split."""
    _rollout_action(ctx, model, "pause")


@rollout_app.command("resume")
def rollout_resume(ctx: typer.Context, model: str) -> None:
    """Carry on from the current step."""
    _rollout_action(ctx, model, "resume")


@rollout_app.command("abort")
def rollout_abort(ctx: typer.Context, model: str) -> None:
    """Roll back now: all traffic returns to the champion."""
    _rollout_action(ctx, model, "abort")


@rollout_app.command("reconcile")
def rollout_reconcile(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """One controller pass over running rollouts (for an external scheduler)."""
    decisions = _svc(ctx).reconcile_rollouts()
    if as_json:
        emit_json({"decisions": [d.to_dict() for d in decisions]})
        return
    for d in decisions:
        out_console().print(f"{d.rollout.model}/{d.rollout.version}: {d.action} → {d.rollout.state}, step {d.rollout.step_index}")
    if not decisions:
        out_console().print("Nothing to decide.")


# -- audit --------------------------------------------------------------------------


@audit_app.command("log")
def audit_log(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", help="Only events about this model.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every audited state change, oldest first."""
    events = _svc(ctx).audit_log(model)
    if as_json:
        emit_json({"events": [e.to_dict() for e in events]})
        return
    from rich import box
    from rich.table import Table

    table = Table(title="Audit log", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("seq", "at", "action", "subject"):
        table.add_column(column, no_wrap=True)
    table.add_column("actor", overflow="fold")
    table.add_column("details", overflow="fold", ratio=1)
    for e in events:
        table.add_row(str(e.seq), f"{e.at:%m-%d %H:%M:%S}", e.action, e.subject, e.actor, _summarize(e.details))
    out_console().print(table)


def _summarize(details: dict[str, Any]) -> str:
    """The gist of an event's details for a table; --json and export carry all of it."""
    if "from" in details and "to" in details:
        return f"{details['from']} → {details['to']}: {details.get('reason', '')}"
    if "run_id" in details:
        parts = [("run", details.get("run_id")), ("data", details.get("data_fingerprint")), ("commit", details.get("git_commit"))]
        return " ".join(f"{name} {str(value)[:8]}" for name, value in parts if value)
    return ", ".join(f"{k}={v}" for k, v in details.items() if v not in (None, {}, []))


@audit_app.command("verify")
def audit_verify(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Check the hash chain; exit 1 naming the first bad event if it was tampered with."""
    result = _svc(ctx).audit_verify()
    if as_json:
        emit_json(result.to_dict())
    elif result.ok:
        out_console().print(f"[green]audit chain verified[/]: {result.events} events, no gap, no edit")
    else:
        err_console().print(f"[bold red]audit chain broken at event {result.first_bad_seq}[/]: {result.problem}")
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="Export format.")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: standard output).")] = None,
) -> None:
    """Write every audit event, one JSON object per line."""
    service = _svc(ctx)
    if output is None:
        service.audit_export(sys.stdout, fmt=fmt)
        return
    with output.open("w", encoding="utf-8") as handle:
        count = service.audit_export(handle, fmt=fmt)
    err_console().print(f"wrote {count} events to {output}")


# -- monitoring, trace and KPIs -----------------------------------------------------


@monitor_app.command("run")
def monitor_run(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Argument(help="Model to monitor (default: every model with a champion).")] = None,
    window: Annotated[str | None, typer.Option("--window", help="How much recent traffic, e.g. 15m or 1h.")] = None,
    last: Annotated[int | None, typer.Option("--last", help="The last N predictions instead of a time window.")] = None,
    act: Annotated[bool, typer.Option("--act/--no-act", help="Run the actions of newly opened alerts.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Compare recent traffic with each champion's reference; raise, refresh or resolve alerts and act on new ones."""
    outcomes = _svc(ctx).monitor(model, window=_duration(window) if window else None, last=last, act=act)
    if as_json:
        emit_json([o.to_dict() for o in outcomes])
        return
    console = out_console()
    if not outcomes:
        console.print("No model has a production version to monitor.")
    for outcome in outcomes:
        print_monitor(console, outcome)
    if any(a["state"] == "failed" for o in outcomes for a in o.actions):
        raise typer.Exit(1)


def print_monitor(console: Console, outcome: Any) -> None:
    from rich.table import Table

    report = outcome.run.report
    console.print(
        f"[bold]{outcome.model}/{outcome.version}[/]: {report['rows']} predictions judged"
        f" (error rate {report['error_rate'] if report['error_rate'] is not None else '-'}),"
        f" dataset drift: {'[red]yes[/]' if outcome.run.dataset_drift else 'no'}"
    )
    drift = report.get("drift") or {}
    features = drift.get("features") or {}
    if features:
        table = Table("feature", "method", "observed", "threshold", "drift", box=None)
        for name, entry in features.items():
            table.add_row(
                name,
                str(entry.get("method", "-")),
                _fmt(entry.get("observed")),
                _fmt(entry.get("thresholds")),
                "[red]yes[/]" if entry.get("drifted") else "no",
            )
        console.print(table)
    performance = report.get("performance")
    if performance:
        live = performance["live"]
        console.print(
            f"live {live['metric']} {live['value']:.4f} [{live['ci_low']:.4f}, {live['ci_high']:.4f}] on {live['rows']} labels;"
            f" holdout {performance.get('holdout')}"
        )
    for note in report.get("notes") or []:
        console.print(f"[dim]{note}[/]")
    for label, alerts in (("opened", outcome.opened), ("still open", outcome.ongoing), ("resolved", outcome.resolved)):
        for alert in alerts:
            console.print(
                f"alert {alert.id} {label}: {alert.signal} {alert.observed} (threshold {alert.threshold}) → {alert.action}"
            )
    for action in outcome.actions:
        details = ", ".join(f"{k}={v}" for k, v in action.items() if k not in ("alert", "action", "state"))
        console.print(f"action {action['action']} for alert {action['alert']}: {action['state']} {details}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return "-" if value is None else str(value)


@monitor_app.command("alerts")
def monitor_alerts(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Argument()] = None,
    state: Annotated[str | None, typer.Option("--state", help="open or resolved")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Alerts, newest last: signal, observed value, threshold, action and what it did."""
    alerts = _svc(ctx).alerts(model, state=state)
    if as_json:
        emit_json([a.to_dict() for a in alerts])
        return
    from rich.table import Table

    table = Table("id", "model", "signal", "observed", "threshold", "state", "action", "opened", "resolved", box=None)
    for a in alerts:
        table.add_row(
            str(a.id),
            f"{a.model}/{a.version}",
            a.signal,
            _fmt(a.observed),
            _fmt(a.threshold),
            a.state,
            f"{a.action} ({a.action_state})",
            a.opened_at.strftime("%Y-%m-%d %H:%M:%S"),
            a.resolved_at.strftime("%Y-%m-%d %H:%M:%S") if a.resolved_at else "-",
        )
    out_console().print(table)


@labels_app.command("ingest")
def labels_ingest(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or Parquet with request_id (or the model's id column) and a label.")],
    model: Annotated[str, typer.Option("--model", "-m", help="The model the labels are for.")],
    key: Annotated[str | None, typer.Option("--key", help="Entity key column (default: the model's id_column).")] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="Column with the 0/1 outcome.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Join ground truth to the prediction log, so monitor runs judge live performance."""
    result = _svc(ctx).ingest_labels(file, model=model, entity_key=key, label_column=label_column)
    if as_json:
        emit_json(result.to_dict())
        return
    out_console().print(
        f"{result.rows} labels read from {result.file}; {result.matched} matched logged predictions by {result.key},"
        f" {result.unmatched} did not"
    )


@app.command()
def trace(ctx: typer.Context, request_id: str, as_json: JsonFlag = False) -> None:
    """One prediction → version → training run → data and code → gates → approvals → rollout."""
    found = _svc(ctx).trace(request_id)
    if as_json:
        emit_json(found)
        return
    console = out_console()
    for answer in found["answers"]:
        p, v = answer["prediction"], answer["version"]
        console.print(f"[bold]request {p['request_id']}[/] at {p['received_at']} ({p['routing']}, status {p['status']})")
        console.print(f"  prediction {p['prediction']} score {_fmt(p['score'])} in {_fmt(p['latency_ms'])} ms")
        console.print(
            f"  model {v['model']}/{v['version']} ({v['stage']}), registered by {v['registered_by']} at {v['registered_at']}"
        )
        console.print(f"  training run {answer['training_run'] or '-'}")
        data = answer["data"]
        console.print(f"  data {', '.join(data['sources']) or '-'} (sha256 {_short(data['fingerprint'])})")
        code = answer["code"]
        console.print(f"  code commit {_short(code['git_commit'])}{'' if code['clean'] in (None, True) else ' (dirty)'}")
        for gate in answer["gates"]:
            verdict = "passed" if gate["passed"] else "blocked"
            console.print(f"  gate {gate['stage']}: {verdict}{' (break-glass)' if gate['break_glass'] else ''} at {gate['at']}")
        for approval in answer["approvals"]:
            console.print(f"  {approval['decision']} for {approval['stage']} by {approval['actor']} at {approval['at']}")
        for promotion in answer["promotions"]:
            console.print(f"  to production by {promotion['actor']} at {promotion['at']}: {promotion['reason']}")
        for rollout in answer["rollouts"]:
            console.print(
                f"  rollout {rollout['id']} ({rollout['strategy']}) {rollout['state']}, started by {rollout['started_by']}"
            )


@app.command()
def kpis(
    ctx: typer.Context,
    since: Annotated[str, typer.Option("--since", help="Window, e.g. 30d, 12h, 2w.")] = "30d",
    as_json: JsonFlag = False,
) -> None:
    """DORA figures for models and governance figures."""
    figures = _svc(ctx).kpis(since)
    document = figures.to_dict()
    if as_json:
        emit_json(document)
        return
    from rich.table import Table

    table = Table("figure", "value", box=None)
    for name, value in _flatten(document):
        table.add_row(name, _fmt(value))
    out_console().print(table)


def _flatten(document: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in document.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
