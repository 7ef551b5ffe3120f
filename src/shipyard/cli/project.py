"""Project commands: init, demo and the store schema (db upgrade)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.render import esc
from shipyard.cli.root import State, noun_app, out_console, svc

db_app = noun_app("Shipyard's store.")


def init(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")],
    force: Annotated[bool, typer.Option("--force", help="Write into a folder that is not empty.")] = False,
    example: Annotated[
        str | None,
        typer.Option(
            "--example",
            help="churn (synthetic, the default), arrests (real data, for fairness), "
            "abalone (regression) or penguins (multiclass).",
        ),
    ] = None,
    from_data: Annotated[
        Path | None,
        typer.Option("--from-data", help="Start from your own CSV or Parquet file instead of an example; copied into DIR/data/."),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="With --from-data: the column to predict (two values, e.g. 0/1 or Yes/No).")
    ] = None,
    time_column: Annotated[
        str | None,
        typer.Option("--time-column", help="With --from-data: a date/time or number column; the newest rows are held out."),
    ] = None,
    id_column: Annotated[
        str | None, typer.Option("--id-column", help="With --from-data: a column unique per row, kept out of the model.")
    ] = None,
    sensitive: Annotated[
        list[str] | None,
        typer.Option("--sensitive", help="With --from-data: a column to report and gate fairness on; repeat for more."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="With --from-data: the model's name (default: the file's name).")
    ] = None,
    ci: Annotated[
        str | None,
        typer.Option(
            "--ci",
            help="github, gitlab or jenkins: add a CI workflow (tests, pipeline, staging gate, evidence; promotes to "
            "staging on main); in an existing project, add only that.",
        ),
    ] = None,
) -> None:
    """Scaffold a project: shipyard.yaml, train.py, a policy and data, from an example or your own file."""
    from shipyard.config import CONFIG_FILE, default_actor
    from shipyard.scaffold import start_project

    if ci is not None:
        from shipyard.deploy.ci import FLAVOURS
        from shipyard.domain.errors import InvalidSpec

        if ci not in FLAVOURS:
            raise InvalidSpec(f"unknown CI {ci!r}; expected {', '.join(FLAVOURS)}", hint="e.g. `shipyard init . --ci github`.")
        if (directory / CONFIG_FILE).is_file():
            _add_ci(directory, ci)
            return
    state: State = ctx.obj
    actor = state.actor or default_actor()
    created = start_project(
        directory,
        example=example,
        from_data=from_data,
        target=target,
        time_column=time_column,
        id_column=id_column,
        sensitive=sensitive or (),
        model=model,
        force=force,
        actor=actor,
    )
    console = out_console()
    # Paths, names and notes come from the user and the data: printed as text, never as markup.
    # Soft wrap: a path or a command split across lines could not be copied.
    console.print(
        f"Created a Shipyard project in {created.root} ({actor} is a scientist and deployer there)", markup=False, soft_wrap=True
    )
    for note in created.notes:
        console.print(f"  note: {note}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"Next: cd {created.root} && shipyard pipeline run {created.model}", markup=False, soft_wrap=True)
    if ci is not None:
        _add_ci(created.root, ci)


def _add_ci(root: Path, flavour: str) -> None:
    from shipyard.config import load_spec
    from shipyard.deploy.ci import add_ci

    models = sorted(load_spec(root / "shipyard.yaml").models)
    for path in add_ci(root, flavour, models):
        out_console().print(f"Added {path}", markup=False, soft_wrap=True)


def demo(
    ctx: typer.Context,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Folder for the demo project (default: a new temporary folder).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Reuse --dir even if it is not empty.")] = False,
    team: Annotated[
        bool, typer.Option("--team", help="Run it in team mode: every person acts through a real `shipyard server`.")
    ] = False,
) -> None:
    """Make a fresh project and run the governed loop on the churn example."""
    from shipyard.cli.demo import run_demo

    ok = run_demo(directory, force=force, console=out_console(), team=team)
    if not ok:
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Migrate the store's schema to this version of Shipyard."""
    from shipyard.store.database import redact

    service = svc(ctx)
    revision = service.upgrade_store()
    out_console().print(f"Store {esc(redact(service.settings.store_url))} is at schema revision {revision}.")
