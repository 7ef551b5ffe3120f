"""The tamper-evident audit log: log, verify, export, and the signing key's public side."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.render import esc, free, ident, listing, print_table, summarize, text
from shipyard.cli.root import JsonFlag, emit_json, err_console, noun_app, out_console, svc
from shipyard.domain.errors import InvalidSpec

if TYPE_CHECKING:
    from shipyard.domain.entities import AuditVerification

audit_app = noun_app("The tamper-evident audit log.")


@audit_app.command("log")
def audit_log(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", help="Only events about this model.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every audited state change, oldest first."""
    events = svc(ctx).audit_log(model)
    if as_json:
        emit_json({"events": [e.to_dict() for e in events]})
        return
    table = listing("Audit log", "seq", "at", "action", "subject", "actor", "details")
    for e in events:
        table.add_row(
            str(e.seq),
            text(f"{e.at:%m-%d %H:%M:%S}"),
            ident(e.action),
            ident(e.subject),
            ident(e.actor),
            free(summarize(e.details)),
        )
    print_table(out_console(), table)


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    public_keys: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="PEM file of a public key you hold (`shipyard audit public-key`); repeat for older keys. "
            "Default: the keys listed in the store, which whoever can write the store could change.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check the hash chain, the signed checkpoints and the state rows; exit 1 naming the first bad event."""
    keys = [_read(path, "public key") for path in public_keys] if public_keys else None
    result = svc(ctx).audit_verify(keys)
    if as_json:
        emit_json(result.to_dict())
    else:
        _print_verification(result)
    if not result.ok:
        raise typer.Exit(1)


def _print_verification(result: AuditVerification) -> None:
    out, err = out_console(), err_console()
    chain_broken = result.problems and result.first_bad_seq is not None
    if not result.problems:
        out.print(f"[green]audit chain verified[/]: {result.events} events, no gap, no edit", highlight=False)
    elif chain_broken:
        err.print(f"[bold red]audit chain broken at event {result.first_bad_seq}[/]: {esc(result.problems[0])}", highlight=False)
    else:
        err.print(f"[bold red]audit checkpoints do not hold[/]: {esc(result.problems[0])}", highlight=False)
    for problem in result.problems[1:]:
        err.print(f"[red]- {esc(problem)}[/]", highlight=False)
    out.print(f"checkpoints: {esc(_checkpoints_line(result))}", highlight=False)
    if result.unexplained:
        err.print(f"[bold red]state rows no audit event explains[/] ({len(result.unexplained)}):", highlight=False)
        for row in result.unexplained:
            err.print(f"[red]- {esc(row)}[/]", highlight=False)
    elif result.replayed:
        out.print(
            "state replayed: every stage, approval, deployment, rollout, token and audit key row has its event", highlight=False
        )


def _checkpoints_line(result: AuditVerification) -> str:
    if result.key_source is None and not result.checkpoints:
        return "none (no server has signed this log); its hashes alone protect it"
    keys = (
        "the public keys given"
        if result.key_source == "given"
        else "the keys listed in the store (weaker: whoever can write the store can list a key; pass --public-key FILE)"
    )
    where = "the store" + (f" and {result.checkpoint_file}" if result.checkpoint_file else "")
    line = f"{result.checkpoints} checked in {where} with {keys}"
    plural = "s" if result.unsigned_tail > 1 else ""
    if result.signed_through is not None:
        line += f"; signed through event {result.signed_through}"
        if result.unsigned_tail:
            line += f"; {result.unsigned_tail} event{plural} after it not signed yet"
    elif result.unsigned_tail:
        line += f"; none of the {result.unsigned_tail} event{plural} is signed"
    return line


@audit_app.command("rotate-key")
def audit_rotate_key(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Start a new audit signing key (admins, on the server); the old public key stays listed, retired."""
    key = svc(ctx).rotate_audit_key()
    if as_json:
        emit_json(key.to_dict())
        return
    out_console().print(f"new audit signing key [bold]{esc(key.key_id)}[/]; the previous one is retired", highlight=False)


@audit_app.command("public-key")
def audit_public_key(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (default: standard output).")] = None,
) -> None:
    """Print the current signing key's public key (PEM), for a verifier to hold and pass to `audit verify --public-key`."""
    pem = svc(ctx).audit_public_key()
    if out is None:
        sys.stdout.write(pem)
        return
    _write(out, pem)
    err_console().print(f"wrote the public key to {esc(out)}", highlight=False)


checkpoints_app = noun_app("Signed checkpoints of the audit log.")
audit_app.add_typer(checkpoints_app, name="checkpoints")


@checkpoints_app.command("export")
def checkpoints_export(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (default: standard output).")] = None,
) -> None:
    """Write every public key, then every checkpoint, one JSON object per line."""
    service = svc(ctx)
    if out is None:
        service.export_checkpoints(sys.stdout)
        return
    buffer = io.StringIO()
    checkpoints, keys = service.export_checkpoints(buffer)
    _write(out, buffer.getvalue())
    err_console().print(f"wrote {checkpoints} checkpoints and {keys} public keys to {esc(out)}", highlight=False)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidSpec(f"cannot read the {what} file {path}: {exc.strerror or exc}") from None


def _write(path: Path, content: str) -> None:
    try:
        path.write_text(content, encoding="utf-8")
    except OSError as exc:
        raise InvalidSpec(f"cannot write {path}: {exc.strerror or exc}") from None


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="Export format.")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: standard output).")] = None,
) -> None:
    """Write every audit event, one JSON object per line."""
    service = svc(ctx)
    if output is None:
        service.audit_export(sys.stdout, fmt=fmt)
        return
    with output.open("w", encoding="utf-8") as handle:
        count = service.audit_export(handle, fmt=fmt)
    err_console().print(f"wrote {count} events to {esc(output)}")
