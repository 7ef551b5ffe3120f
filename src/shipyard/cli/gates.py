"""Promotions through gates, gate checks, and human sign-offs (approve, reject)."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.render import esc, print_gate
from shipyard.cli.root import JsonFlag, emit_json, err_console, noun_app, out_console, svc

gate_app = noun_app("Policy gates.")


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
    outcome = svc(ctx).promote(model, version, to, reason=reason, break_glass=break_glass)
    if as_json:
        emit_json(outcome.to_dict())
        return
    p = outcome.promotion
    console = out_console()
    if outcome.gate is not None:
        print_gate(console, outcome.gate.to_dict())
    flag = " [bold red](break-glass)[/]" if break_glass else ""
    console.print(
        f"{esc(p.version.model)} version {p.version.version}: {p.from_stage.value} → [bold]{p.version.stage.value}[/]{flag}"
    )
    for old in p.archived:
        console.print(f"{esc(old.model)} version {old.version}: production → archived")
    if not outcome.mirrored:
        err_console().print(
            f"[yellow]warning:[/] the store changed but MLflow's aliases did not: {esc(outcome.mirror_error)}\n"
            "Run `shipyard models reconcile` to repair them."
        )


@gate_app.command("check")
def gate_check(
    ctx: typer.Context,
    model: str,
    version: int,
    to: Annotated[str, typer.Option("--to", help="Stage whose gate to evaluate: staging or production.")],
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a gate without changing anything; exit 1 when it blocks."""
    report = svc(ctx).gate(model, version, to).to_dict()
    if as_json:
        emit_json(report)
    else:
        print_gate(out_console(), report)
    if not report["passed"]:
        raise typer.Exit(1)


def _sign_off(ctx: typer.Context, model: str, version: int, to: str, comment: str, decision: str, as_json: bool) -> None:
    approval = svc(ctx).approve(model, version, to, comment=comment, decision=decision)
    if as_json:
        emit_json(approval.to_dict())
        return
    word = "approved" if decision == "approve" else "[red]rejected[/]"
    out_console().print(
        f"{esc(approval.actor)} ({esc(', '.join(approval.roles))}) {word} {esc(model)}/{version} for {esc(approval.stage)}"
    )


ToStage = Annotated[str, typer.Option("--to", help="The gated stage the sign-off is for: staging or production.")]
Comment = Annotated[str, typer.Option("--comment", help="Kept in the audit log.")]


def approve(ctx: typer.Context, model: str, version: int, to: ToStage, comment: Comment = "", as_json: JsonFlag = False) -> None:
    """Sign off a version for a stage (needs the role the policy asks for; not its registrant or trainer)."""
    _sign_off(ctx, model, version, to, comment, "approve", as_json)


def reject(ctx: typer.Context, model: str, version: int, to: ToStage, comment: Comment = "", as_json: JsonFlag = False) -> None:
    """Record a rejection: the approvals rule then blocks until that approver approves."""
    _sign_off(ctx, model, version, to, comment, "reject", as_json)
