"""The root of the command line: the Typer app, its state, and how errors and JSON are written."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from typer.core import TyperGroup

from shipyard.domain.errors import InvalidSpec, ShipyardError

if TYPE_CHECKING:
    from rich.console import Console

    from shipyard.config import ClientSettings
    from shipyard.service import Shipyard


class Group(TyperGroup):
    """Renders every ShipyardError as one clear message and its exit code; never a traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click Context
        try:
            return super().invoke(ctx)
        except ShipyardError as exc:
            render_error(exc)
            raise typer.Exit(exc.exit_code) from None


def render_error(exc: ShipyardError) -> None:
    from shipyard.cli.render import esc

    # Messages and hints quote what the user typed (names, reasons, paths): print them as typed.
    console = err_console()
    console.print(f"[bold red]error:[/] {esc(exc.message)}", highlight=False, markup=True, soft_wrap=True)
    if exc.hint:
        console.print(exc.hint, highlight=False, markup=False, soft_wrap=True)


def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, emoji=False)


def out_console() -> Console:
    from rich.console import Console

    return Console(emoji=False)  # `:name:` in user text stays text


# Plain help and usage errors (rich_markup_mode=None): Typer's rich help imports Markdown rendering, a tenth
# of a second on every `--help`, for help texts that hold no markup.
app = typer.Typer(
    cls=Group,
    help="Shipyard: governed, fast path from a trained model to production traffic.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def noun_app(help_text: str) -> typer.Typer:
    """A group of commands under one noun (`shipyard models …`), rendered like the root app."""
    return typer.Typer(cls=Group, help=help_text, no_args_is_help=True, rich_markup_mode=None)


JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]


class State:
    def __init__(self, project: Path | None, actor: str | None) -> None:
        self.project = project
        self.actor = actor
        self._service: Shipyard | None = None

    def service(self) -> Shipyard:
        """The local service, or in team mode (SHIPYARD_URL) the server's, reached as a client."""
        if self._service is None:
            from shipyard.config import client_settings

            client = client_settings()
            if client is not None:
                self._service = self._remote(client)
            else:
                from shipyard.service import Shipyard

                self._service = Shipyard.open(self.project, actor=self.actor)
        return self._service

    def _remote(self, client: ClientSettings) -> Shipyard:
        from shipyard.cli.remote import RemoteShipyard

        claimed = self.actor or client.claimed_actor
        if claimed is not None:
            flag = "--actor" if self.actor else "SHIPYARD_ACTOR"
            raise InvalidSpec(
                f"{flag} ({claimed}) cannot be used with a server: there, who is acting is the principal of the token",
                hint=f"Drop {flag}; to act as someone else, use their token (an admin creates one with `shipyard token create`).",
            )
        # The same methods, entities and errors as the service: the commands cannot tell the difference.
        return cast("Shipyard", RemoteShipyard(client.url, client.token, project=self.project))

    def hosted_service(self) -> Shipyard:
        """The service as the control-plane server runs it: the shared store's one writer."""
        from shipyard.service import Shipyard

        if self.actor is not None:
            raise InvalidSpec("--actor cannot be used with `shipyard server`: the server acts for each caller's token")
        self._service = Shipyard.open_hosted(self.project)
        return self._service

    def close(self) -> None:
        if self._service is not None:
            self._service.close()


@app.callback()
def _root(
    ctx: typer.Context,
    project: Annotated[
        Path | None, typer.Option("--project", "-C", help="Project folder (default: the nearest folder with shipyard.yaml).")
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who is acting (default: $SHIPYARD_ACTOR, else the OS user).")
    ] = None,
) -> None:
    import logging
    import os

    # MLflow and Alembic narrate at INFO; the CLI speaks for itself. (MLflow
    # sets its own level when imported, from this variable.)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # Nor does MLflow's download progress bar belong between the CLI's own lines (a retrain loads the champion).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    state = State(project, actor)
    ctx.obj = state
    ctx.call_on_close(state.close)


def log_decisions() -> None:
    """Long-running commands (serve, worker, server) print Shipyard's own one-line decisions (promotions,
    rollbacks, reloads, alert actions) at INFO on stderr; other libraries stay at WARNING."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("shipyard").setLevel(logging.INFO)


def svc(ctx: typer.Context) -> Shipyard:
    """The service the command acts through, opened on first use."""
    state: State = ctx.obj
    return state.service()


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")


def duration(text: str) -> float:
    from shipyard.domain.durations import parse_duration

    try:
        return parse_duration(text)
    except InvalidSpec as exc:
        raise typer.BadParameter(exc.message) from None
