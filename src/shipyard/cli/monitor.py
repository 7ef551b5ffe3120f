"""Production traffic: monitor runs and alerts, label ingestion, prediction traces and KPIs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.render import esc, flatten, fmt, free, ident, print_monitor, print_table, print_trace, text
from shipyard.cli.root import JsonFlag, duration, emit_json, noun_app, out_console, svc

monitor_app = noun_app("Drift, performance and alerts on production traffic.")
labels_app = noun_app("Ground truth for logged predictions.")


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
    outcomes = svc(ctx).monitor(model, window=duration(window) if window else None, last=last, act=act)
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


@monitor_app.command("alerts")
def monitor_alerts(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Argument()] = None,
    state: Annotated[str | None, typer.Option("--state", help="open or resolved")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Alerts, newest last: signal, observed value, threshold, action and what it did."""
    alerts = svc(ctx).alerts(model, state=state)
    if as_json:
        emit_json([a.to_dict() for a in alerts])
        return
    from rich.table import Table

    table = Table("id", "model", "signal", "observed", "threshold", "state", "action", "opened", "resolved", box=None)
    for a in alerts:
        table.add_row(
            str(a.id),
            ident(f"{a.model}/{a.version}"),
            ident(a.signal),
            free(fmt(a.observed)),
            free(fmt(a.threshold)),
            ident(a.state),
            text(f"{a.action} ({a.action_state})"),
            text(a.opened_at.strftime("%Y-%m-%d %H:%M:%S")),  # date and time may part on a narrow terminal
            text(a.resolved_at.strftime("%Y-%m-%d %H:%M:%S") if a.resolved_at else "-"),
        )
    print_table(out_console(), table)


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
    result = svc(ctx).ingest_labels(file, model=model, entity_key=key, label_column=label_column)
    if as_json:
        emit_json(result.to_dict())
        return
    out_console().print(
        f"{result.rows} labels read from {esc(result.file)}; {result.matched} matched logged predictions by {esc(result.key)},"
        f" {result.unmatched} did not"
    )


def trace(ctx: typer.Context, request_id: str, as_json: JsonFlag = False) -> None:
    """One prediction → version → training run → data and code → gates → approvals → rollout."""
    found = svc(ctx).trace(request_id)
    if as_json:
        emit_json(found)
        return
    print_trace(out_console(), found)


def kpis(
    ctx: typer.Context,
    since: Annotated[str, typer.Option("--since", help="Window, e.g. 30d, 12h, 2w.")] = "30d",
    as_json: JsonFlag = False,
) -> None:
    """DORA figures for models and governance figures."""
    figures = svc(ctx).kpis(since)
    document = figures.to_dict()
    if as_json:
        emit_json(document)
        return
    from rich.table import Table

    table = Table("figure", "value", box=None)
    for name, value in flatten(document):
        table.add_row(ident(name), free(fmt(value)))
    print_table(out_console(), table)
