"""How the command line shows things: gate reports, rollouts, monitor outcomes, traces, evidence, tables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    from shipyard.domain.entities import ModelVersion


def esc(value: object) -> str:
    """Any value as literal text inside a Rich markup string: user text is data, never markup."""
    from rich.markup import escape

    return escape(str(value))


def text(value: object, style: str = "") -> Text:
    """A cell that shows its value as typed, whatever brackets it holds, wrapping between words."""
    from rich.text import Text

    return Text(str(value), style=style)


def ident(value: object, style: str = "") -> Text:
    """An identifier (who, which model, version, stage, action): shown whole on one line, never folded or cut."""
    from rich.text import Text

    return Text(str(value), style=style, no_wrap=True)


def free(value: object, style: str = "") -> Text:
    """Free text (details, messages, observed and expected values): wraps, and folds a word too long for its column."""
    from rich.text import Text

    return Text(str(value), style=style, overflow="fold")


def listing(title: str, *columns: str) -> Table:
    """A table of records under a ruled header: two spaces between columns and none at the edges, to fit 80."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), title_justify="left")
    for column in columns:
        table.add_column(column)
    return table


FREE_TEXT_MIN = 10  # the narrowest a free-text column gets before a table runs past the terminal's edge
FREE_WORD_MAX = 16  # free text keeps words up to this long whole while there is room


def print_table(console: Console, table: Table) -> None:
    """Print a table so that no identifier is cut: free text wraps first, and past that the table runs wider.

    Rich narrows every column alike once wrapping is not enough, cutting names
    with an ellipsis; a governance tool must not garble who did what. So the
    widths are chosen here, in steps, widest column first: free text gives up
    width down to its longest word, then down to a few characters (folding long
    words); only then do names with spaces wrap between words. Identifiers never
    go below their length. When even that is too wide, lines run past the edge
    (the terminal wraps them) rather than drop characters.
    """
    from rich.measure import Measurement

    natural = console.options.update_width(10_000)
    steps = []  # per column: its natural width, then its floor at each step
    for column in table.columns:
        header = Measurement.get(console, natural, column.header).maximum if table.show_header else 0
        cells = [_steps(cell, Measurement.get(console, natural, cell), column.no_wrap) for cell in column.cells]
        steps.append([max([header, *floors]) for floors in zip(*cells, strict=True)] if cells else [header] * 4)
    widths = [natural_width for natural_width, *_ in steps]
    overhead = Measurement.get(console, natural, table).maximum - sum(widths)  # padding, borders and dividers
    excess = sum(widths) + overhead - console.width
    if excess <= 0:
        console.print(table)
        return
    for step in (1, 2, 3):
        excess = _narrow(widths, [floors[step] for floors in steps], excess)
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width
    if excess > 0:
        table.width = sum(widths) + overhead
    console.print(table, crop=False)


def _steps(cell: object, measured: Measurement, whole: bool) -> tuple[int, int, int, int]:
    """A cell's natural width, then the least it takes after each step of narrowing."""
    from rich.text import Text

    high = measured.maximum
    if not isinstance(cell, Text) or whole or cell.no_wrap:
        return high, high, high, high  # identifiers, and the CLI's own short values (numbers, dates)
    if cell.overflow == "fold":  # free text
        least = min(high, FREE_TEXT_MIN)
        return high, min(high, max(least, min(measured.minimum, FREE_WORD_MAX))), least, least
    return high, high, high, measured.minimum  # names with spaces: never inside a word


def _narrow(widths: list[int], floors: list[int], excess: int) -> int:
    """Take `excess` columns of width away, widest column first, none below its floor; return what is left."""
    while excess > 0:
        shrinkable = [i for i, width in enumerate(widths) if width > floors[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return excess


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


GATE_TABLE_WIDTH = 120  # below this, five columns leave observed values a few characters wide: one block per rule


def print_gate(console: Console, report: dict[str, Any]) -> None:
    verdict = "[green]passed[/]" if report["passed"] else "[bold red]blocked[/]"
    title = f"Gate {esc(report['stage'])} for {esc(report['model'])}/{report['version']}: {verdict}"
    if not report["results"]:
        console.print(f"{title}: the policy has no rules for {esc(report['stage'])}")
        return
    if console.width < GATE_TABLE_WIDTH:
        _print_gate_blocks(console, title, report["results"])
        return
    table = listing(title, "rule", "result", "observed", "expected", "message")
    for r in report["results"]:
        style = OUTCOME_STYLE.get(r["outcome"], "")
        table.add_row(
            text(r["name"]), ident(r["outcome"], style), free(r["observed"]), free(r["expected"]), free(r["message"] or "")
        )
    print_table(console, table)


def _print_gate_blocks(console: Console, title: str, results: list[dict[str, Any]]) -> None:
    """Each rule as a few lines a narrow terminal can hold: its result and name, then what was seen and wanted."""
    from rich.padding import Padding
    from rich.text import Text

    console.print(title)
    for r in results:
        head = Text.assemble(("  " + r["outcome"].ljust(7), OUTCOME_STYLE.get(r["outcome"], "")), " ", (str(r["name"]), "bold"))
        console.print(head)
        lines = [f"observed: {r['observed']}", f"expected: {r['expected']}"] + ([str(r["message"])] if r["message"] else [])
        for line in lines:
            console.print(Padding(Text(line), (0, 0, 0, 11)))


def print_rollout(console: Console, rollout: Any, analysis: Any) -> None:
    from rich import box
    from rich.table import Table

    steps = " → ".join(f"[bold]{s:g}%[/]" if i == rollout.step_index else f"{s:g}%" for i, s in enumerate(rollout.steps))
    console.print(
        f"Rollout {rollout.id} of {esc(rollout.model)}/{rollout.version} "
        f"(champion v{rollout.champion}, {esc(rollout.strategy)}): "
        f"[bold]{esc(rollout.state)}[/]; steps {steps}; failed analyses {rollout.failures}/{rollout.failure_limit}"
    )
    limit = rollout.checks.get("max_latency_ms")
    if limit is not None:
        console.print(f"Latency judged on an absolute limit (max_latency_ms): challenger p95 ≤ {float(limit):g} ms")
    if analysis is not None:
        verdict = {True: "[green]passing[/]", False: "[red]failing[/]", None: "[yellow]waiting for traffic[/]"}[analysis.passed]
        table = Table(title=f"Current step: {verdict}", box=box.SIMPLE_HEAD, title_justify="left")
        # Both versions' p95 beside each latency factor; the column only when a check has times to show.
        timed = any(c.challenger_p95_ms is not None or c.champion_p95_ms is not None for c in analysis.checks)
        for column in ("check", "observed", "threshold", *(["p95 challenger / champion"] if timed else []), "result"):
            table.add_column(column)
        for check in analysis.checks:
            times = [_p95s(check.challenger_p95_ms, check.champion_p95_ms)] if timed else []
            table.add_row(
                text(check.name), free(check.observed), free(check.threshold), *times, "ok" if check.passed else "[red]no[/]"
            )
        print_table(console, table)
    history = Table(title="History", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("at", "event", "weight"):
        history.add_column(column)
    for event in rollout.history:
        history.add_row(ident(str(event.get("at", ""))[:19]), text(event.get("event")), free(event.get("weight", "")))
    print_table(console, history)


def _p95s(challenger: float | None, champion: float | None) -> str:
    if challenger is None and champion is None:
        return ""
    return " / ".join("–" if v is None else f"{v:.3g}" for v in (challenger, champion)) + " ms"


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
                ident(name),
                ident(entry.get("method", "-")),
                free(fmt(entry.get("observed"))),
                free(fmt(entry.get("thresholds"))),
                "[red]yes[/]" if entry.get("drifted") else "no",
            )
        print_table(console, table)
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
                f"equalized odds diff {report['equalized_odds_difference']:.4f} (groups: "
                + ", ".join(f"{group} n={entry.get('count', '?')}" for group, entry in (report.get("by_group") or {}).items())
                + ")",
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
    explained = top_features(evidence)
    if explained:
        lines.append(("top features", explained))
    sized = footprint_text(evidence)
    if sized:
        lines.append(("footprint", sized))
    lineage = evidence.get("lineage") or {}
    if lineage:
        lines.append(("trained by", str(lineage.get("trained_by"))))
        lines.append(("work tree", {True: "clean", False: "uncommitted changes", None: "unknown"}[lineage.get("git_clean")]))
    lines.append(("artifacts", ", ".join(evidence.get("artifacts", [])) or "-"))
    return lines


def top_features(evidence: dict[str, Any] | None, count: int = 5) -> str | None:
    """The features the model's scores rest on most (share of mean |SHAP|), or why there are none."""
    found = (evidence or {}).get("explanations")
    if not found:
        return None
    if not found.get("available"):
        return f"not explainable: {found.get('reason')}"
    listed = ", ".join(f"{t['feature']} {t['share']:.0%}" for t in found.get("top", [])[:count])
    return f"{listed} (share of mean |SHAP|, {found.get('explainer')} on {found.get('rows')} holdout rows)"


def footprint_text(evidence: dict[str, Any] | None) -> str | None:
    found = (evidence or {}).get("footprint")
    if not found:
        return None
    if not found.get("available"):
        return f"not measured: {found.get('reason')}"
    p50 = found.get("p50_ms") or {}
    text = (
        f"{found.get('memory_mb')} MB loaded, {found.get('artifact_mb')} MB on disk, load {found.get('load_s')} s; "
        f"p50 {p50.get('1')} / {p50.get('64')} / {p50.get('1024')} ms at 1 / 64 / 1024 rows; "
        f"{found.get('cpu_s_per_1k')} CPU s per 1k rows ({found.get('runtime')})"
    )
    factors = found.get("latency_factor")
    if factors and found.get("champion"):
        text += f"; latency vs v{found['champion']['version']}: " + ", ".join(f"{v}× at {k}" for k, v in factors.items())
    return text


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
