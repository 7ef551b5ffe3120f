"""Progressive delivery: start, watch, pause, resume, abort and reconcile rollouts."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.render import esc, print_rollout
from shipyard.cli.root import JsonFlag, duration, emit_json, noun_app, out_console, svc

rollout_app = noun_app("Progressive delivery: canary, shadow, blue-green.")


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
    rollout = svc(ctx).start_rollout(
        model,
        version,
        strategy=strategy,
        steps=parsed,
        interval=duration(interval) if interval else None,
        checks=overrides or None,
    )
    if as_json:
        emit_json(rollout.to_dict())
    else:
        print_rollout(out_console(), rollout, None)


@rollout_app.command("status")
def rollout_status(ctx: typer.Context, model: str, as_json: JsonFlag = False) -> None:
    """The latest rollout: step, weights, each analysis check with its observed value and threshold, history."""
    rollout, analysis = svc(ctx).rollout_status(model)
    if as_json:
        emit_json({"rollout": rollout.to_dict() if rollout else None, "analysis": analysis.to_dict() if analysis else None})
    elif rollout is None:
        out_console().print(f"{esc(model)} has had no rollout.")
    else:
        print_rollout(out_console(), rollout, analysis)


def _rollout_action(ctx: typer.Context, model: str, action: str) -> None:
    rollout = svc(ctx).rollout_action(model, action)
    out_console().print(f"Rollout {rollout.id} of {esc(model)}/{rollout.version}: {esc(rollout.state)}")


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
    decisions = svc(ctx).reconcile_rollouts()
    if as_json:
        emit_json({"decisions": [d.to_dict() for d in decisions]})
        return
    for d in decisions:
        out_console().print(
            f"{esc(d.rollout.model)}/{d.rollout.version}: {esc(d.action)} → {esc(d.rollout.state)}, step {d.rollout.step_index}"
        )
    if not decisions:
        out_console().print("Nothing to decide.")
