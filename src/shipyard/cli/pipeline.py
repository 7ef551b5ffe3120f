"""The governed pipeline: train a candidate, adopt an MLflow run (register), and the evidence about versions."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.render import esc, rich_steps
from shipyard.cli.root import JsonFlag, emit_json, err_console, noun_app, out_console, svc

pipeline_app = noun_app("The governed training pipeline.")
evidence_app = noun_app("Evidence about versions.")


@pipeline_app.command("run")
def pipeline_run(ctx: typer.Context, model: str, as_json: JsonFlag = False) -> None:
    """Train, evaluate, log and register a new candidate version of MODEL."""
    service = svc(ctx)
    if as_json:
        result = service.run_pipeline(model)
        emit_json(result.to_dict())
        return
    console = out_console()
    with rich_steps(err_console()) as step:
        result = service.run_pipeline(model, progress=step)
    v = result.version
    metrics = "  ".join(f"{esc(k)}={val:.4f}" for k, val in result.metrics.items())
    console.print(
        f"Registered [bold]{esc(v.model)}[/] version [bold]{v.version}[/] as [cyan]{v.stage.value}[/] (run {esc(result.run_id)})"
    )
    console.print(f"holdout ({result.rows_holdout} rows): {metrics}", highlight=False)


def register(
    ctx: typer.Context,
    model: str,
    run_id: Annotated[str, typer.Option("--run-id", help="The MLflow run that logged the model.")],
    artifact_path: Annotated[str, typer.Option("--artifact-path", help="Where in the run the model is.")] = "model",
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle",
            help="The run is trusted: load a pickle or cloudpickle model (loading it runs code). Recorded in the audit log.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Adopt a model logged by an existing MLflow run as a governed candidate, with full evidence."""
    service = svc(ctx)
    if as_json:
        emit_json(service.register(model, run_id, artifact_path=artifact_path, trust_pickle=trust_pickle).to_dict())
        return
    with rich_steps(err_console()) as step:
        result = service.register(model, run_id, artifact_path=artifact_path, progress=step, trust_pickle=trust_pickle)
    v = result.version
    out_console().print(
        f"Registered [bold]{esc(v.model)}[/] version [bold]{v.version}[/] from run {esc(run_id)} as [cyan]{v.stage.value}[/]"
    )


@evidence_app.command("show")
def evidence_show(ctx: typer.Context, model: str, version: int) -> None:
    """Print a version's evidence as JSON."""
    emit_json(svc(ctx).evidence(model, version))


@evidence_app.command("collect")
def evidence_collect(ctx: typer.Context, model: str, version: int) -> None:
    """Collect a version's evidence again (after a policy change, or against a new champion)."""
    found = svc(ctx).collect_evidence(model, version)
    out_console().print(f"Collected evidence for {esc(model)}/{version}: {esc(', '.join(sorted(found)))}")
