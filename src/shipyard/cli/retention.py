"""Legal holds, retention passes and costs."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shipyard.cli.render import free, ident, print_table
from shipyard.cli.root import JsonFlag, emit_json, noun_app, out_console, svc

hold_app = noun_app("Legal holds: versions retention never touches (admins).")
retention_app = noun_app("Retention: compact and trim the prediction log, move old artifacts to cold storage, delete stray runs.")

Reason = Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")]


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"  # pragma: no cover


@hold_app.command("add")
def hold_add(
    ctx: typer.Context, model: str, version: Annotated[int, typer.Argument(min=1)], reason: Reason, as_json: JsonFlag = False
) -> None:
    """Put a version under legal hold."""
    held = svc(ctx).add_hold(model, version, reason=reason)
    if as_json:
        emit_json(held.to_dict())
        return
    out_console().print(ident(f"{held.subject} is under legal hold: {held.reason}"))


@hold_app.command("remove")
def hold_remove(
    ctx: typer.Context, model: str, version: Annotated[int, typer.Argument(min=1)], reason: Reason, as_json: JsonFlag = False
) -> None:
    """Lift a legal hold."""
    lifted = svc(ctx).remove_hold(model, version, reason=reason)
    if as_json:
        emit_json(lifted.to_dict())
        return
    out_console().print(ident(f"the legal hold on {lifted.subject} is lifted"))


@hold_app.command("list")
def hold_list(ctx: typer.Context, model: Annotated[str | None, typer.Argument()] = None, as_json: JsonFlag = False) -> None:
    """Versions under legal hold."""
    holds = svc(ctx).holds(model)
    if as_json:
        emit_json([h.to_dict() for h in holds])
        return
    from rich.table import Table

    table = Table("version", "reason", "by", "since", box=None)
    for h in holds:
        table.add_row(ident(h.subject), free(h.reason), ident(h.actor), h.at.isoformat(timespec="seconds"))
    print_table(out_console(), table)


def _actions_table(actions: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table("action", "subject", "frees", "rule", "why", box=None)
    for a in actions:
        table.add_row(ident(a["kind"]), ident(a["subject"]), _size(a["bytes_freed"]), ident(a["rule"]), free(a["reason"]))
    return table


@retention_app.command("plan")
def retention_plan(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every action a retention pass would take now, with the bytes it frees; changes nothing."""
    plan = svc(ctx).retention_plan().to_dict()
    if as_json:
        emit_json(plan)
        return
    console = out_console()
    print_table(console, _actions_table(plan["actions"]))
    for kept in plan["kept"]:
        console.print(ident(f"kept {kept['subject']} ({kept['rule']}): {kept['why']}"))
    console.print(f"{len(plan['actions'])} actions, {_size(plan['bytes_freed'])} freed")


@retention_app.command("apply")
def retention_apply(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Carry the retention plan out, each action audited; safe to interrupt and run again."""
    outcome = svc(ctx).retention_apply().to_dict()
    if as_json:
        emit_json(outcome)
    else:
        console = out_console()
        print_table(console, _actions_table(outcome["done"]))
        for failed in outcome["failed"]:
            console.print(ident(f"failed {failed['kind']} of {failed['subject']}: {failed['error']}"))
        console.print(f"{len(outcome['done'])} actions done, {_size(outcome['bytes_freed'])} freed")
    if outcome["failed"]:
        raise typer.Exit(1)


def costs(
    ctx: typer.Context,
    since: Annotated[str, typer.Option("--since", help="Window, e.g. 30d, 12h, 2w.")] = "30d",
    as_json: JsonFlag = False,
) -> None:
    """Per model: CPU time predicting, predictions served, CPU-seconds per 1,000 predictions, storage used."""
    document = svc(ctx).costs(since).to_dict()
    if as_json:
        emit_json(document)
        return
    from rich.table import Table

    table = Table("model", "CPU s", "predictions", "CPU s / 1000", "artifacts", "prediction log", "lineage", box=None)
    for m in document["models"]:
        per = m["cpu_seconds_per_1000"]
        storage = m["storage_bytes"]
        table.add_row(
            ident(m["model"]),
            f"{m['cpu_seconds']:.3f}",
            f"{m['predictions']:.0f}",
            "-" if per is None else f"{per:.4f}",
            _size(storage["artifacts"]),
            _size(storage["prediction_log"]),
            _size(storage["lineage"]),
        )
    print_table(out_console(), table)
