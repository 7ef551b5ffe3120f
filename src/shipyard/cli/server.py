"""`shipyard server`: team mode's control plane, the only writer of the project's shared store."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.render import esc
from shipyard.cli.root import State, err_console, log_decisions, out_console


def server(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Address to bind (default: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to bind (default: the port of server.url).")] = None,
    bootstrap_admin: Annotated[
        str | None,
        typer.Option("--bootstrap-admin", help="Create this admin and print its first token once (only while no admin exists)."),
    ] = None,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run the worker (rollouts, monitor runs, notifications) in this process.")
    ] = True,
) -> None:
    """Serve the control-plane API (/api/v1, /openapi.json): every change, authenticated and audited.

    The project must declare `server: {url: …}` in shipyard.yaml. The server holds the audit signing key
    and signs checkpoints of the audit log; the worker runs beside it, acting as its service principal.
    """
    from shipyard.server.runner import bind_address, serve_control_plane

    log_decisions()
    state: State = ctx.obj
    service = state.hosted_service()
    url = service.settings.server_url or ""  # open_hosted refused a project that declares no server
    default_host, default_port = bind_address(url)
    host, port = host or default_host, port or default_port
    if bootstrap_admin is not None:
        secret = service.bootstrap_admin(bootstrap_admin)
        out_console().print(
            f"Admin {esc(bootstrap_admin)}'s token (shown once; store it now): [bold]{esc(secret)}[/]", soft_wrap=True
        )
    err_console().print(
        f"Control plane for {esc(service.settings.root)} on http://{esc(host)}:{port} "
        f"(clients: {esc(url)}; worker {'in this process' if worker else 'elsewhere'})"
    )
    serve_control_plane(service, host=host, port=port, worker=worker)


def login(
    url: Annotated[str, typer.Argument(help="The server's address, as in SHIPYARD_URL.")],
    token_stdin: Annotated[bool, typer.Option("--token-stdin", help="Read the token from standard input.")] = False,
) -> None:
    """Store a token for a server in your configuration folder (mode 0600), after checking it with the server."""
    import sys

    from shipyard.cli.remote import RemoteShipyard, store_credentials

    url = url.strip().rstrip("/")
    secret = sys.stdin.readline().strip() if token_stdin else typer.prompt("Token", hide_input=True).strip()
    client = RemoteShipyard(url, secret)
    try:
        who = client.call("whoami")
    finally:
        client.close()
    path = store_credentials(url, secret)
    out_console().print(
        f"Logged in to {esc(url)} as {esc(who.name)} ({esc(', '.join(who.roles))}); token kept in {esc(path)}",
        soft_wrap=True,
    )
    err_console().print(f"Use it with: export SHIPYARD_URL={esc(url)}", highlight=False)


def ui(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.")] = 8700,
    hours: Annotated[float, typer.Option("--hours", min=0.1, help="How long the session's token lasts.")] = 12.0,
) -> None:
    """Open this machine's project in the web UI (embedded mode), on 127.0.0.1, acting as you (or --actor).

    It prints the address and a token for the login form, valid for --hours; the token is revoked when the command
    stops. A team-mode project's UI is its server's, at SERVER_URL/ui/.
    """
    import time

    from shipyard.domain.errors import InvalidSpec
    from shipyard.server.runner import serve_control_plane

    log_decisions()
    service = ctx.obj.service()
    if service.settings.team:
        raise InvalidSpec(
            f"this project is in team mode: its UI is its server's, at {service.settings.server_url}/ui/",
            hint="Log in there with your token.",
        )
    name = f"ui-{service.actor}-{time.strftime('%Y%m%dT%H%M%S')}"
    _, secret = service.create_token(name, expires_seconds=hours * 3600)
    out_console().print(
        f"Web UI for {esc(service.settings.root)}: [bold]http://127.0.0.1:{port}/ui/[/]\n"
        f"Log in as {esc(service.actor)} with this token (valid {hours:g} h, revoked when this command stops):\n"
        f"[bold]{esc(secret)}[/]",
        soft_wrap=True,
    )
    try:
        serve_control_plane(service, host="127.0.0.1", port=port, worker=False, checkpoints=False)
    finally:
        service.revoke_token(name)
