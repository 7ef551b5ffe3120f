"""The audit log: reading, verifying (chain, signed checkpoints, state replay), exporting, and the signing key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

from shipyard.domain.checkpoints import AuditKey, Checkpoint
from shipyard.domain.entities import AuditEvent, AuditVerification
from shipyard.domain.errors import InvalidSpec, NotFound
from shipyard.service import signer
from shipyard.service.insight import Insight


class Audit(Insight):
    # -- reading ---------------------------------------------------------------------

    def audit_log(self, model: str | None = None) -> list[AuditEvent]:
        if model is not None:
            self.store.get_model(model)
        return self.store.audit_events(model=model)

    def audit_head(self) -> int:
        """The audit log's last sequence number: whether anything happened since a caller last looked."""
        head: int = self.store.audit_head_seq()
        return head

    def audit_page(
        self,
        *,
        model: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[AuditEvent], int, int]:
        """A page of the log, newest first, filtered by the store: (events, matching, total)."""
        if model is not None:
            self.store.get_model(model)
        page: tuple[list[AuditEvent], int, int] = self.store.audit_page(
            model=model, actor=actor, action=action, offset=offset, limit=limit
        )
        return page

    def audit_export(self, out: IO[str], *, fmt: str = "jsonl") -> int:
        if fmt != "jsonl":
            raise InvalidSpec(f"unknown export format {fmt!r}; expected jsonl")
        count = 0
        for event in self.store.audit_events():
            out.write(json.dumps(event.to_dict(), sort_keys=True, default=str) + "\n")
            count += 1
        return count

    # -- verifying -------------------------------------------------------------------

    def audit_verify(self, public_keys: list[bytes] | None = None) -> AuditVerification:
        """The chain, then every signed checkpoint (store and checkpoint file), then the state rows replayed.

        ``public_keys``: PEM documents (or raw 32-byte keys) the caller holds; without them the keys
        listed in the store are used, which is weaker: whoever can write the store can list a key.
        """
        from shipyard import signing
        from shipyard.service import attestation

        # The signed side first, so a checkpoint signed meanwhile names no event the chain read lacks; the file
        # before the store, as the server writes the store first: what the file holds, the store then holds too.
        path = self.checkpoint_file()
        filed, unreadable = signing.read_checkpoints(path) if path is not None and path.is_file() else ([], [])
        stored = self.store.audit_checkpoints()
        source: str | None
        if public_keys is not None:
            raws = [
                raw
                for i, data in enumerate(public_keys, 1)
                for raw in signing.read_public_keys(data, where=f"public key {i} given")
            ]
            keys, source = {signing.key_id(raw): raw for raw in raws}, "given"
        else:
            listed = self.store.audit_keys()
            keys = {key.key_id: key.raw for key in listed}
            source = "store" if listed or stored or filed else None
        chain = self.store.verify_audit()
        hashes, last = self.store.audit_hashes({c.seq for c in (*stored, *filed)})
        report = attestation.check(
            project=self.settings.spec.project,
            stored=stored,
            filed=filed,
            keys=keys,
            key_source=source or "store",
            hashes=hashes,
            last_seq=last,
        )
        unexplained = tuple(self.store.unexplained_state())
        findings = [attestation.Finding(chain.first_bad_seq, chain.problem or "")] if not chain.ok else []
        findings += report.findings + [attestation.Finding(None, problem) for problem in unreadable]
        # Earliest first; those that name no event after those that do, in the order they were found.
        findings.sort(key=lambda f: (f.seq is None, f.seq or 0))
        first = next((f.seq for f in findings if f.seq is not None), None)
        problem = findings[0].message if findings else (unexplained[0] if unexplained else None)
        return AuditVerification(
            ok=not findings and not unexplained,
            events=chain.events,
            first_bad_seq=first,
            problem=problem,
            problems=tuple(f.message for f in findings),
            unexplained=unexplained,
            checkpoints=report.checked,
            key_source=source,
            checkpoint_file=str(path) if path is not None and path.is_file() else None,
            signed_through=report.signed_through,
            unsigned_tail=report.unsigned_tail,
            replayed=True,
        )

    def audit_verify_from(self, checkpoint: tuple[int, str] | None) -> tuple[AuditVerification, tuple[int, str] | None]:
        """Verify only the events after ``checkpoint`` (a verified event's seq and hash) and the head; returns the
        verification of the whole chain so far and the checkpoint to start from next time."""
        return self.store.verify_audit_from(checkpoint)

    def checkpoint_file(self) -> Path | None:
        """Where the server appends its checkpoints (team mode), whether or not it exists here."""
        server = self.settings.spec.server
        return self.settings.resolve(server.checkpoint_file) if server is not None else None

    # -- signing (the server) ------------------------------------------------------------

    def checkpoint_audit(self, *, force: bool = False) -> Checkpoint | None:
        """Sign the chain's head when events arrived since the last checkpoint and it is due (or ``force``);
        None when there is nothing to sign. Only the server (``settings.hosted``) may."""
        return signer.sign_checkpoint(self, force=force)

    def rotate_audit_key(self) -> AuditKey:
        """Start a new signing key (admins, on the server); the old public key stays listed to verify what it signed."""
        return signer.rotate_key(self)

    # -- the public keys -----------------------------------------------------------------

    def audit_keys(self) -> list[AuditKey]:
        return self.store.audit_keys()

    def audit_public_key(self) -> str:
        """The current signing key's public key, PEM, as the store lists it."""
        from shipyard import signing

        current = [key for key in self.store.audit_keys() if key.retired_at is None]
        if not current:
            raise NotFound(
                "no audit signing key is listed yet",
                hint="The Shipyard server makes one when it signs its first checkpoint (team mode).",
            )
        return signing.public_pem(current[-1].raw)

    def export_checkpoints(self, out: IO[str]) -> tuple[int, int]:
        """Every public key, then every checkpoint, one JSON object per line; returns (checkpoints, keys).

        The checkpoint lines are the checkpoint file's, so the export reads back as one."""
        from shipyard import signing

        keys = self.store.audit_keys()
        for key in keys:
            line = {"kind": "key", **key.to_dict(), "public_key_pem": signing.public_pem(key.raw)}
            out.write(json.dumps(line, sort_keys=True) + "\n")
        checkpoints = self.store.audit_checkpoints()
        for checkpoint in checkpoints:
            out.write(json.dumps({"kind": "checkpoint", **checkpoint.to_dict()}, sort_keys=True) + "\n")
        return len(checkpoints), len(keys)


__all__ = ["Audit"]
