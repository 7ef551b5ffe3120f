"""The tamper-evident audit log: log, verify, export."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.render import esc, free, ident, listing, print_table, summarize, text
from shipyard.cli.root import JsonFlag, emit_json, err_console, noun_app, out_console, svc

audit_app = noun_app("The tamper-evident audit log.")


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
    table = listing("Audit log", "seq", "at", "action", "subject", "actor", "details")
    for e in events:
        table.add_row(
            str(e.seq),
            text(f"{e.at:%m-%d %H:%M:%S}"),
            ident(e.action),
            ident(e.subject),
            ident(e.actor),
            free(summarize(e.details)),
        )
    print_table(out_console(), table)


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
