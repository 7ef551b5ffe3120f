"""Who may act: bearer tokens (create, list, revoke) and, in team mode, principals and their roles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.render import esc, ident, listing, print_table, text
from shipyard.cli.root import JsonFlag, duration, emit_json, err_console, noun_app, out_console, svc

if TYPE_CHECKING:
    from shipyard.domain.identity import Token

token_app = noun_app("Bearer tokens: for the control plane (scope api) and for gateways (scope predict).")
principals_app = noun_app("Principals and their roles (team mode: kept by the server; shipyard.yaml only seeds them).")


def _at(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value is not None else "—"


def _state(token: Token, now: datetime) -> str:
    if token.revoked_at is not None:
        return f"revoked by {token.revoked_by}"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "live"


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: str,
    principal: Annotated[
        str | None, typer.Option("--principal", help="Whose token it is (default: yours; another's needs admin).")
    ] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="Lifetime, e.g. 90d or 12h (default: no expiry).")] = None,
    scope: Annotated[
        str, typer.Option("--scope", help="api (the control plane and gateways) or predict (gateways only).")
    ] = "api",
    as_json: JsonFlag = False,
) -> None:
    """Create a bearer token. Its secret is printed once; only its sha256 is stored."""
    lifetime = duration(expires) if expires is not None else None
    token, secret = svc(ctx).create_token(name, principal=principal, scope=scope, expires_seconds=lifetime)
    if as_json:
        emit_json({**token.to_dict(), "secret": secret})
        return
    until = f"expires {_at(token.expires_at)} UTC" if token.expires_at is not None else "no expiry"
    out_console().print(
        f"Token {esc(token.name)} for {esc(token.principal)} (scope {esc(token.scope)}, {until}):\n"
        f"[bold]{esc(secret)}[/]\n"
        "It is shown only now. Send it as: Authorization: Bearer <token>",
        highlight=False,
    )


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    principal: Annotated[str | None, typer.Option("--principal", help="Only this principal's tokens (another's: admin).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Tokens you may see (an admin sees everyone's), without their secrets."""
    tokens = svc(ctx).tokens(principal=principal)
    if as_json:
        emit_json({"tokens": [t.to_dict() for t in tokens]})
        return
    now = datetime.now(UTC)
    table = listing("Tokens", "name", "principal", "scope", "created", "expires", "last used", "state")
    for t in tokens:
        table.add_row(
            ident(t.name),
            ident(t.principal),
            text(t.scope),
            text(_at(t.created_at)),
            text(_at(t.expires_at)),
            text(_at(t.last_used_at)),
            text(_state(t, now)),
        )
    print_table(out_console(), table)


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, name: str) -> None:
    """Revoke a token at once (yours, or as admin anyone's); gateways refuse it within a second."""
    token = svc(ctx).revoke_token(name)
    out_console().print(f"Token {esc(token.name)} of {esc(token.principal)} revoked.", highlight=False)


@principals_app.command("list")
def principals_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Everyone with roles; says where shipyard.yaml's principals differ from the server's."""
    service = svc(ctx)
    principals = service.principals()
    drift = service.principals_drift()
    if as_json:
        emit_json({"principals": [p.to_dict() for p in principals], "principals_drift": drift})
        return
    table = listing("Principals", "name", "roles", "created by", "created")
    for p in principals:
        table.add_row(ident(p.name), text(", ".join(p.roles)), ident(p.created_by or "shipyard.yaml"), text(_at(p.created_at)))
    print_table(out_console(), table)
    if drift:
        console = err_console()
        console.print("shipyard.yaml's principals differ from the server's (only the server's count):", highlight=False)
        for line in drift:
            console.print(f"  {esc(line)}", highlight=False)
        console.print("Change roles with `shipyard principals set NAME --role ROLE`.", highlight=False, markup=False)


@principals_app.command("set")
def principals_set(
    ctx: typer.Context,
    name: str,
    role: Annotated[list[str], typer.Option("--role", help="A role to hold (repeatable); the list replaces the old one.")],
    as_json: JsonFlag = False,
) -> None:
    """Create a principal or replace its roles (admin; team mode)."""
    principal = svc(ctx).set_principal(name, role)
    if as_json:
        emit_json(principal.to_dict())
    else:
        out_console().print(f"{esc(principal.name)} holds {esc(', '.join(principal.roles))}.", highlight=False)


@principals_app.command("remove")
def principals_remove(ctx: typer.Context, name: str) -> None:
    """Remove a principal and revoke its tokens (admin; team mode)."""
    svc(ctx).remove_principal(name)
    out_console().print(f"{esc(name)} removed; its tokens are revoked.", highlight=False)
