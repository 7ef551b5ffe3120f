"""Registered models and their versions: list, show, reconcile."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.render import STAGE_STYLE, esc, evidence_lines, free, ident, listing, metric, print_table, short, text
from shipyard.cli.root import JsonFlag, emit_json, err_console, noun_app, out_console, svc

if TYPE_CHECKING:
    from shipyard.domain.mirror import PendingMirror

models_app = noun_app("Registered models and versions.")


@models_app.command("list")
def models_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every model and its versions, with stages and key metrics."""
    service = svc(ctx)
    models = service.models()
    versions = service.versions()
    if as_json:
        emit_json(
            {
                "models": [{**m.to_dict(), "versions": [v.to_dict() for v in versions if v.model == m.name]} for m in models],
                "mirror_backlog": [p.to_dict() for p in service.mirror_backlog()],
            }
        )
        return
    table = listing("Models", "model", "v", "stage", "roc_auc", "accuracy", "data", "registered", "by")
    for column in table.columns:
        if column.header in ("v", "roc_auc", "accuracy"):
            column.justify = "right"
    for v in versions:
        style = STAGE_STYLE.get(v.stage.value, "")
        table.add_row(
            ident(v.model),
            str(v.version),
            ident(v.stage.value, style),
            metric(v, "roc_auc"),
            metric(v, "accuracy"),
            ident(short(v.data_fingerprint, 8)),
            f"{v.registered_at:%Y-%m-%d}",
            ident(v.registered_by),
        )
    console = out_console()
    if versions:
        print_table(console, table)
    else:
        console.print("No model is registered yet; run `shipyard pipeline run MODEL`.")
    warn_mirror_behind(service.mirror_backlog())


def warn_mirror_behind(backlog: list[PendingMirror]) -> None:
    """MLflow may not show what the store holds: say so, and how to repair it (from the store alone, no MLflow call)."""
    warnings = err_console()
    for pending in backlog:
        since = f"{pending.since:%Y-%m-%d %H:%M:%S}"
        if pending.kind == "registration":
            what = (
                f"a registration of run {pending.run_id} as a version of {pending.model} began at {since} and never "
                "completed: MLflow may hold a version the store does not know"
            )
        else:
            what = f"MLflow's aliases and stage tags of {pending.model} may be behind the store (since {since}: {pending.reason})"
        warnings.print(f"warning: {what}; run `shipyard models reconcile`.", markup=False, highlight=False, soft_wrap=True)


@models_app.command("show")
def models_show(
    ctx: typer.Context,
    model: str,
    version: Annotated[int | None, typer.Argument(help="Version number (default: the latest).")] = None,
    mlflow: Annotated[
        bool, typer.Option("--mlflow", help="Also ask MLflow for the training run and the aliases it holds now.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """One version: stage, metrics, data fingerprint, lineage and stage history (from the store; --mlflow adds the run)."""
    service = svc(ctx)
    detail = service.describe(model, version, with_run=mlflow)
    if as_json:
        emit_json(detail.to_dict())
        return
    from rich.table import Table

    v = detail.version
    console = out_console()
    style = STAGE_STYLE.get(v.stage.value, "")
    console.print(f"[bold]{esc(v.model)}[/] version [bold]{v.version}[/]: [{style}]{v.stage.value}[/]")
    facts = Table(show_header=False, box=None)
    facts.add_column(style="bold")
    facts.add_column()
    # Names, runs and commits stay whole; locations and hashes may fold (every character kept), summaries wrap.
    facts.add_row("aliases", text(", ".join(detail.aliases) or "-"))
    facts.add_row("registered", text(f"{v.registered_at:%Y-%m-%d %H:%M:%S} by {v.registered_by}"))
    facts.add_row("run", ident(v.run_id or "-"))
    facts.add_row("source", free(v.source))
    facts.add_row("data", free(v.data_uri or "-"))
    facts.add_row("fingerprint", free(f"sha256:{v.data_fingerprint}" if v.data_fingerprint else "-"))
    facts.add_row("code commit", ident(v.git_commit or "-"))
    for name, value in v.metrics.items():
        facts.add_row(ident(f"holdout {name}"), f"{value:.4f}")
    for label, line in evidence_lines(detail.evidence):
        facts.add_row(ident(label), text(line))
    print_table(console, facts)
    history = Table(title="Stage history")
    for column in ("at", "from", "to", "actor", "reason"):
        history.add_column(column)
    for h in detail.history:
        history.add_row(
            f"{h.at:%Y-%m-%d %H:%M:%S}",
            h.from_stage.value if h.from_stage else "-",
            h.to_stage.value,
            ident(h.actor),
            free(h.reason),
        )
    print_table(console, history)
    if not mlflow:
        warn_mirror_behind(service.mirror_backlog(model))


@models_app.command("reconcile")
def models_reconcile(ctx: typer.Context, model: Annotated[str | None, typer.Argument()] = None) -> None:
    """Repair MLflow's aliases and stage tags from Shipyard's store."""
    done = svc(ctx).reconcile(model)
    console = out_console()
    console.print(f"MLflow mirror matches the store for: {esc(', '.join(r.model for r in done) or 'no models')}")
    for repaired in done:
        for number in repaired.orphans:
            console.print(
                f"{esc(repaired.model)}/{number}: MLflow held this version and the store did not; tagged orphaned "
                "(kept, not deleted; it cannot be promoted)"
            )
        for run in repaired.registrations_closed:
            console.print(f"{esc(repaired.model)}: the registration of run {esc(run)} never completed; closed")
