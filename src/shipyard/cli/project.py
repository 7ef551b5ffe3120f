"""Project commands: init, demo and the store schema (db upgrade)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.render import esc
from shipyard.cli.root import Group, State, out_console, svc

db_app = typer.Typer(cls=Group, help="Shipyard's store.", no_args_is_help=True)


def init(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")],
    force: Annotated[bool, typer.Option("--force", help="Write into a folder that is not empty.")] = False,
    example: Annotated[str, typer.Option("--example", help="churn (synthetic) or arrests (real data, for fairness).")] = "churn",
) -> None:
    """Scaffold a project: shipyard.yaml, train.py, a policy and the example's data."""
    from shipyard.config import default_actor
    from shipyard.scaffold import init_project

    state: State = ctx.obj
    actor = state.actor or default_actor()
    root = init_project(directory, force=force, example=example, actor=actor)
    out_console().print(
        f"Created a Shipyard project in [bold]{esc(root)}[/] ({esc(actor)} is a scientist and deployer there)\n"
        f"Next: [bold]cd {esc(root)} && shipyard pipeline run {esc(example)}[/]"
    )


def demo(
    ctx: typer.Context,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Folder for the demo project (default: a new temporary folder).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Reuse --dir even if it is not empty.")] = False,
) -> None:
    """Make a fresh project and run the governed loop on the churn example."""
    from shipyard.cli.demo import run_demo

    ok = run_demo(directory, force=force, console=out_console())
    if not ok:
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Migrate the store's schema to this version of Shipyard."""
    from shipyard.store.database import redact

    service = svc(ctx)
    revision = service.upgrade_store()
    out_console().print(f"Store {esc(redact(service.settings.store_url))} is at schema revision {revision}.")
