"""Signing audit checkpoints: what only the control-plane server does.

The server holds the private key (``server.key_file``, mode 0600). It signs the chain's head
when events arrived since its last checkpoint, keeps the checkpoint in the store and appends it
to its checkpoint file. Before signing it checks the events since its own last checkpoint, so it
never vouches for a chain that was rewritten underneath it.
"""

from __future__ import annotations

import dataclasses
import logging

from shipyard import signing
from shipyard.config import ServerSpec
from shipyard.domain.checkpoints import AuditKey, Checkpoint
from shipyard.domain.errors import Conflict, InvalidSpec, PermissionDenied, ShipyardError
from shipyard.domain.stages import Stage
from shipyard.service.base import ServiceBase
from shipyard.store.tables import utcnow

log = logging.getLogger("shipyard")
# How many of its newest checkpoints the server tries as the point to verify from; past them (all forged?) it verifies
# the whole chain, which is slower but as sure.
ANCHOR_CANDIDATES = 20


def require_server(service: ServiceBase, what: str) -> ServerSpec:
    """The server's settings, when this process is the server; otherwise a refusal naming who may."""
    server = service.settings.spec.server
    if server is None:
        raise InvalidSpec(
            f"cannot {what}: {service.settings.root / 'shipyard.yaml'} declares no server, "
            "and only a Shipyard server signs audit checkpoints",
            hint="Declare `server: {url: ...}` for team mode; in the embedded default the chain's hashes protect the log.",
        )
    if not service.settings.hosted:
        raise PermissionDenied(
            f"cannot {what} here: the Shipyard server holds the audit signing key ({server.key_file}), "
            "and this process is not the server",
            hint="The server signs checkpoints on its own; `shipyard audit verify` checks them from anywhere.",
        )
    return server


def signing_key(service: ServiceBase, server: ServerSpec) -> signing.SigningKey:
    """The server's key, made on first use and listed in the store (audited) the first time it is seen."""
    path = service.settings.resolve(server.key_file)
    key, _ = signing.load_or_create(path)
    listed = {k.key_id: k for k in service.store.audit_keys()}
    entry = listed.get(key.key_id)
    if entry is None:
        # A key the store has not seen: the first one, or one made after the old file was lost (which it then retires).
        current = [k for k in listed.values() if k.retired_at is None]
        service.store.add_audit_key(
            actor=service.actor, key_id=key.key_id, public_key=key.public_hex, retire=current[-1].key_id if current else None
        )
    elif entry.retired_at is not None:
        raise Conflict(
            f"the audit signing key in {path} ({key.key_id}) was retired at {entry.retired_at:%Y-%m-%d %H:%M:%S} UTC; "
            "the server signs nothing with it",
            hint=f"Move {path} away: the server then makes a new key and lists it.",
        )
    return key


def sign_checkpoint(service: ServiceBase, *, force: bool = False) -> Checkpoint | None:
    """Sign the chain's head when events arrived since the last checkpoint and (``force`` or) it is due."""
    server = require_server(service, "sign an audit checkpoint")
    key = signing_key(service, server)
    # Only a checkpoint this key verifies is trusted as the starting point: a row anyone could insert is not.
    recent = service.store.audit_checkpoints(key_id=key.key_id, newest=ANCHOR_CANDIDATES)
    anchor = next((c for c in reversed(recent) if signing.verify(key.public_raw, c)), None)
    result, head = service.store.verify_audit_from((anchor.seq, anchor.head_hash) if anchor is not None else None)
    if not result.ok:
        raise Conflict(
            f"the audit chain does not hold at event {result.first_bad_seq}: {result.problem}; "
            "the server signs no checkpoint over it",
            hint="Run `shipyard audit verify` to see what changed.",
        )
    if head is None or head[0] == 0 or (anchor is not None and head[0] <= anchor.seq):
        return None  # nothing arrived since the last checkpoint
    now = utcnow()
    if not force and anchor is not None and (now - anchor.signed_at).total_seconds() < server.checkpoint_seconds:
        return None
    unsigned = Checkpoint(
        project=service.settings.spec.project, seq=head[0], head_hash=head[1], signed_at=now, key_id=key.key_id, signature=""
    )
    checkpoint = dataclasses.replace(unsigned, signature=key.sign(unsigned.document()))
    service.store.record_checkpoint(actor=service.actor, checkpoint=checkpoint)
    signing.append_checkpoint(service.settings.resolve(server.checkpoint_file), checkpoint)
    return checkpoint


def checkpoint_promotion(service: ServiceBase, target: Stage) -> None:
    """Sign right after a version reaches production, on the server. The promotion has happened, so a
    failure to sign is logged, not raised; the next checkpoint covers it."""
    if target is not Stage.PRODUCTION or not service.settings.hosted:
        return
    try:
        sign_checkpoint(service, force=True)
    except ShipyardError as exc:
        log.warning("no audit checkpoint after the promotion: %s", exc.message)


def rotate_key(service: ServiceBase) -> AuditKey:
    """Start a new signing key; the old private key is replaced (gone), its public key stays listed, retired."""
    server = require_server(service, "rotate the audit signing key")  # first: elsewhere no role would help
    service.authorize_role("admin", what="rotate the audit signing key", subject="audit", action="audit.rotate_key")
    current = [k for k in service.store.audit_keys() if k.retired_at is None]
    key = signing.new_key()
    # The file first: should the store then fail, the next checkpoint lists this key (retiring the old) itself.
    signing.write_key(service.settings.resolve(server.key_file), key)
    listed = service.store.add_audit_key(
        actor=service.actor, key_id=key.key_id, public_key=key.public_hex, retire=current[-1].key_id if current else None
    )
    try:
        sign_checkpoint(service, force=True)  # the new key vouches for the history up to its own start at once
    except ShipyardError as exc:
        log.warning("the new audit key signed no checkpoint yet: %s", exc.message)
    return listed


__all__ = ["checkpoint_promotion", "require_server", "rotate_key", "sign_checkpoint", "signing_key"]
