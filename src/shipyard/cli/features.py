"""Feature-store commands: loading a Feast-backed model's feature views into its online store."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.render import esc
from shipyard.cli.root import JsonFlag, emit_json, noun_app, out_console, svc

features_app = noun_app("The feature store behind Feast-backed models.")


@features_app.command("materialize")
def materialize(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="A model whose data names a Feast feature service.")],
    end: Annotated[str, typer.Option("--end", help="Materialize values up to this time (ISO 8601), or now.")] = "now",
    as_json: JsonFlag = False,
) -> None:
    """Load the model's feature views into its online store, from where the last run ended up to --end."""
    done = svc(ctx).materialize_features(model, end=end)
    if as_json:
        emit_json(done.to_dict())
        return
    console = out_console()
    for view in done.feature_views:
        console.print(f"{esc(view['feature_view'])}: {esc(view['start'])} → {esc(view['end'])}")
    console.print(
        f"Materialized {len(done.feature_views)} feature views of {esc(done.feature_service)} "
        f"into the {esc(done.online_store)} online store."
    )
