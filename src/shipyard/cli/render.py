"""How the command line shows things: gate reports, rollouts, monitor outcomes, traces, evidence, tables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from shipyard.domain.entities import ModelVersion


def esc(value: object) -> str:
    """Any value as literal text inside a Rich markup string: user text is data, never markup."""
    from rich.markup import escape

    return escape(str(value))


def text(value: object, style: str = "") -> Text:
    """A table cell that shows its value as typed, whatever brackets it holds."""
    from rich.text import Text

    return Text(str(value), style=style)


def short(value: str | None, width: int = 12) -> str:
    return value[:width] if value else "-"


def metric(version: ModelVersion, name: str) -> str:
    value = version.metrics.get(name)
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


STAGE_STYLE = {"candidate": "cyan", "staging": "yellow", "production": "bold green", "archived": "dim", "rejected": "red"}


@contextmanager
def rich_steps(console: Console) -> Iterator[Any]:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=False
    ) as bar:

        @contextmanager
        def step(name: str) -> Iterator[None]:
            task = bar.add_task(esc(name), total=1)
            yield
            bar.update(task, completed=1, description=f"[green]✓[/] {esc(name)}")

        yield step


OUTCOME_STYLE = {"passed": "green", "failed": "bold red", "warned": "yellow", "error": "bold red"}


def print_gate(console: Console, report: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    verdict = "[green]passed[/]" if report["passed"] else "[bold red]blocked[/]"
    title = f"Gate {esc(report['stage'])} for {esc(report['model'])}/{report['version']}: {verdict}"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    table.add_column("rule", overflow="fold")
    table.add_column("result", no_wrap=True)
    table.add_column("observed", overflow="fold", ratio=2)
    table.add_column("expected", overflow="fold", ratio=1)
    table.add_column("message", overflow="fold", ratio=1)
    for r in report["results"]:
        style = OUTCOME_STYLE.get(r["outcome"], "")
        table.add_row(
            text(r["name"]), text(r["outcome"], style), text(r["observed"]), text(r["expected"]), text(r["message"] or "")
        )
    console.print(table if report["results"] else f"{title}: the policy has no rules for {esc(report['stage'])}")


def print_rollout(console: Console, rollout: Any, analysis: Any) -> None:
    from rich import box
    from rich.table import Table

    steps = " → ".join(f"[bold]{s:g}%[/]" if i == rollout.step_index else f"{s:g}%" for i, s in enumerate(rollout.steps))
    console.print(
        f"Rollout {rollout.id} of {esc(rollout.model)}/{rollout.version} "
        f"(champion v{rollout.champion}, {esc(rollout.strategy)}): "
        f"[bold]{esc(rollout.state)}[/]; steps {steps}; failed analyses {rollout.failures}/{rollout.failure_limit}"
    )
    if analysis is not None:
        verdict = {True: "[green]passing[/]", False: "[red]failing[/]", None: "[yellow]waiting for traffic[/]"}[analysis.passed]
        table = Table(title=f"Current step: {verdict}", box=box.SIMPLE_HEAD, title_justify="left")
        for column in ("check", "observed", "threshold", "result"):
            table.add_column(column)
        for check in analysis.checks:
            table.add_row(text(check.name), text(check.observed), text(check.threshold), "ok" if check.passed else "[red]no[/]")
        console.print(table)
    history = Table(title="History", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("at", "event", "weight"):
        history.add_column(column)
    for event in rollout.history:
        history.add_row(text(str(event.get("at", ""))[:19]), text(event.get("event")), text(event.get("weight", "")))
    console.print(history)


def print_monitor(console: Console, outcome: Any) -> None:
    from rich.table import Table

    report = outcome.run.report
    console.print(
        f"[bold]{esc(outcome.model)}/{outcome.version}[/]: {report['rows']} predictions judged"
        f" (error rate {report['error_rate'] if report['error_rate'] is not None else '-'}),"
        f" dataset drift: {'[red]yes[/]' if outcome.run.dataset_drift else 'no'}"
    )
    drift = report.get("drift") or {}
    features = drift.get("features") or {}
    if features:
        table = Table("feature", "method", "observed", "threshold", "drift", box=None)
        for name, entry in features.items():
            table.add_row(
                text(name),
                text(entry.get("method", "-")),
                text(fmt(entry.get("observed"))),
                text(fmt(entry.get("thresholds"))),
                "[red]yes[/]" if entry.get("drifted") else "no",
            )
        console.print(table)
    performance = report.get("performance")
    if performance:
        live = performance["live"]
        console.print(
            f"live {esc(live['metric'])} {live['value']:.4f} [{live['ci_low']:.4f}, {live['ci_high']:.4f}]"
            f" on {live['rows']} labels; holdout {esc(performance.get('holdout'))}"
        )
    for note in report.get("notes") or []:
        console.print(f"[dim]{esc(note)}[/]")
    for label, alerts in (("opened", outcome.opened), ("still open", outcome.ongoing), ("resolved", outcome.resolved)):
        for alert in alerts:
            console.print(
                f"alert {alert.id} {label}: {esc(alert.signal)} {alert.observed}"
                f" (threshold {alert.threshold}) → {esc(alert.action)}"
            )
    for action in outcome.actions:
        details = ", ".join(f"{k}={v}" for k, v in action.items() if k not in ("alert", "action", "state"))
        console.print(f"action {esc(action['action'])} for alert {action['alert']}: {esc(action['state'])} {esc(details)}")


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {fmt(v)}" for k, v in value.items())
    return "-" if value is None else str(value)


def print_trace(console: Console, found: dict[str, Any]) -> None:
    """One prediction's lineage, as `shipyard trace` tells it."""
    for answer in found["answers"]:
        p, v, data, code = answer["prediction"], answer["version"], answer["data"], answer["code"]
        console.print(
            text(f"request {p['request_id']}", "bold"), f"at {esc(p['received_at'])} ({esc(p['routing'])}, status {p['status']})"
        )
        lines = [
            f"  prediction {p['prediction']} score {fmt(p['score'])} in {fmt(p['latency_ms'])} ms",
            f"  model {v['model']}/{v['version']} ({v['stage']}), registered by {v['registered_by']} at {v['registered_at']}",
            f"  training run {answer['training_run'] or '-'}",
            f"  data {', '.join(data['sources']) or '-'} (sha256 {short(data['fingerprint'])})",
            f"  code commit {short(code['git_commit'])}{'' if code['clean'] in (None, True) else ' (dirty)'}",
        ]
        for gate in answer["gates"]:
            verdict = "passed" if gate["passed"] else "blocked"
            lines.append(f"  gate {gate['stage']}: {verdict}{' (break-glass)' if gate['break_glass'] else ''} at {gate['at']}")
        for approval in answer["approvals"]:
            lines.append(f"  {approval['decision']} for {approval['stage']} by {approval['actor']} at {approval['at']}")
        for promotion in answer["promotions"]:
            lines.append(f"  to production by {promotion['actor']} at {promotion['at']}: {promotion['reason']}")
        for rollout in answer["rollouts"]:
            lines.append(
                f"  rollout {rollout['id']} ({rollout['strategy']}) {rollout['state']}, started by {rollout['started_by']}"
            )
        for line in lines:  # every field is recorded data: no markup, no emoji codes
            console.print(line, markup=False, emoji=False)


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


def summarize(details: dict[str, Any]) -> str:
    """The gist of an event's details for a table; --json and export carry all of it."""
    if "from" in details and "to" in details:
        return f"{details['from']} → {details['to']}: {details.get('reason', '')}"
    if "run_id" in details:
        parts = [("run", details.get("run_id")), ("data", details.get("data_fingerprint")), ("commit", details.get("git_commit"))]
        return " ".join(f"{name} {str(value)[:8]}" for name, value in parts if value)
    return ", ".join(f"{k}={v}" for k, v in details.items() if v not in (None, {}, []))


def flatten(document: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in document.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value
