"""The tamper-evident audit log: log, verify, export."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.render import esc, summarize, text
from shipyard.cli.root import Group, JsonFlag, emit_json, err_console, out_console, svc

audit_app = typer.Typer(cls=Group, help="The tamper-evident audit log.", no_args_is_help=True)


@audit_app.command("log")
def audit_log(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", help="Only events about this model.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every audited state change, oldest first."""
    events = svc(ctx).audit_log(model)
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
        table.add_row(
            str(e.seq), f"{e.at:%m-%d %H:%M:%S}", text(e.action), text(e.subject), text(e.actor), text(summarize(e.details))
        )
    out_console().print(table)


@audit_app.command("verify")
def audit_verify(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Check the hash chain; exit 1 naming the first bad event if it was tampered with."""
    result = svc(ctx).audit_verify()
    if as_json:
        emit_json(result.to_dict())
    elif result.ok:
        out_console().print(f"[green]audit chain verified[/]: {result.events} events, no gap, no edit")
    else:
        err_console().print(f"[bold red]audit chain broken at event {result.first_bad_seq}[/]: {esc(result.problem)}")
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="Export format.")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: standard output).")] = None,
) -> None:
    """Write every audit event, one JSON object per line."""
    service = svc(ctx)
    if output is None:
        service.audit_export(sys.stdout, fmt=fmt)
        return
    with output.open("w", encoding="utf-8") as handle:
        count = service.audit_export(handle, fmt=fmt)
    err_console().print(f"wrote {count} events to {esc(output)}")
