"""Beyond one machine: `shipyard export k8s|kserve|argo` and `shipyard package`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli.render import esc
from shipyard.cli.root import JsonFlag, emit_json, noun_app, out_console, svc

if TYPE_CHECKING:
    from shipyard.service import Shipyard

export_app = noun_app("Write the objects a cluster runs: Kubernetes, KServe, Argo Workflows.")

OutOption = Annotated[Path, typer.Option("--out", help="Folder to write into (created when missing).")]


def _local(ctx: typer.Context) -> Shipyard:
    """Exports read the project's files and its store here; in team mode, run them where the project is."""
    service = svc(ctx)
    _ = service.settings  # a server's client refuses here, with what to do instead
    return service


def _written(paths: list[Path], out: Path) -> None:
    console = out_console()
    for path in paths:
        console.print(esc(str(path.relative_to(out))), highlight=False)
    console.print(f"{len(paths)} files written to {esc(str(out))}", highlight=False)


@export_app.command("k8s")
def export_k8s(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    out: OutOption,
    version: Annotated[int | None, typer.Option("--version", help="Version (default: the champion).")] = None,
) -> None:
    """A kustomize base (Deployment, Service, HPA, PDB, NetworkPolicy, ServiceMonitor, PrometheusRule) and one
    overlay per environment in deploy.environments."""
    from shipyard.deploy.files import write_tree

    files = _local(ctx).export_k8s(model, version)
    _written(write_tree(out, files), out)


@export_app.command("kserve")
def export_kserve(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    out: OutOption,
) -> None:
    """The KServe InferenceService (protocol v2) for the champion; during a rollout, the challenger at the
    rollout's current weight (canaryTrafficPercent). Re-run after each step."""
    from shipyard.deploy.files import write_tree

    files = _local(ctx).export_kserve(model)
    _written(write_tree(out, files), out)


@export_app.command("argo")
def export_argo(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    out: OutOption,
) -> None:
    """An Argo WorkflowTemplate for the governed pipeline (train and register, staging gate, promotion), a
    CronWorkflow for `shipyard monitor run`, and a CronJob doing the same for clusters without Argo."""
    from shipyard.deploy.files import write_tree

    files = _local(ctx).export_argo(model)
    _written(write_tree(out, files), out)


def package(
    ctx: typer.Context,
    out: OutOption,
    model: Annotated[str | None, typer.Argument(help="Model name.")] = None,
    version: Annotated[int | None, typer.Argument(help="Version to package.")] = None,
    project: Annotated[
        bool, typer.Option("--project", help="Package the project itself (code, locked requirements, Shipyard).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Write a container build context: MODEL VERSION served with `shipyard serve --package`, or --project."""
    from shipyard.domain.errors import InvalidSpec

    if project == (model is not None):
        raise InvalidSpec("pass either MODEL VERSION or --project", hint="e.g. `shipyard package churn 3 --out build/churn-3`.")
    service = _local(ctx)
    if project:
        result = service.package_project(out)
    else:
        if model is None or version is None:
            raise InvalidSpec("pass the VERSION to package after the model", hint=f"e.g. `shipyard package {model} 3 --out DIR`.")
        result = service.package(model, version, out)
    if as_json:
        emit_json(result)
        return
    what = "the project" if project else f"{model} version {version}"
    out_console().print(
        f"Packaged {esc(what)} in {esc(str(out))} (sha256 {result['package_sha256']}); build it with "
        f"`docker build {esc(str(out))}`.",
        highlight=False,
    )


def register(app: Any) -> None:
    app.add_typer(export_app, name="export")
    app.command()(package)
