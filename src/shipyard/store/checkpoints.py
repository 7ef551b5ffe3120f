"""Signed checkpoints of the audit chain, and the public keys that verify them, in the store.

The store keeps what was signed; it never signs. The server (the only holder of the private
key) signs, and lists each key it starts here with an audited event, so the key list itself
is part of the history the checkpoints protect.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select

from shipyard.domain.checkpoints import AuditKey, Checkpoint
from shipyard.domain.errors import Conflict, NotFound
from shipyard.store.base import StoreBase
from shipyard.store.tables import AuditCheckpointRow, AuditKeyRow, AuditRow

KEY_SUBJECT = "audit"


class CheckpointRecords(StoreBase):
    """Mixed into ``Store``: audit keys, signed checkpoints, and the chain's hashes they are held against."""

    def audit_keys(self) -> list[AuditKey]:
        with self.read() as session:
            return [row.to_entity() for row in session.scalars(select(AuditKeyRow).order_by(AuditKeyRow.created_at))]

    def add_audit_key(self, *, actor: str, key_id: str, public_key: str, retire: str | None = None) -> AuditKey:
        """List a new public key; with ``retire``, the key it replaces is marked retired (and stays listed).

        One audited event: ``audit.key_created`` for the first key, ``audit.key_rotated`` for a replacement.
        """
        with self.write(actor) as tx:
            if tx.session.get(AuditKeyRow, key_id) is not None:
                raise Conflict(f"audit key {key_id} is listed already")
            if retire is not None:
                old = tx.session.get(AuditKeyRow, retire)
                if old is None:
                    raise NotFound(f"audit key {retire} is not listed in the store, so it cannot be retired")
                if old.retired_at is None:
                    old.retired_at = tx.now
            row = AuditKeyRow(key_id=key_id, public_key=public_key, created_at=tx.now, created_by=actor)
            tx.session.add(row)
            details = {"key_id": key_id, "public_key": public_key}
            if retire is not None:
                tx.audit("audit.key_rotated", KEY_SUBJECT, {**details, "retired": retire})
            else:
                tx.audit("audit.key_created", KEY_SUBJECT, details)
            tx.session.flush()
            return row.to_entity()

    def record_checkpoint(self, *, actor: str, checkpoint: Checkpoint) -> Checkpoint:
        """Keep a checkpoint the server signed. No event: a checkpoint vouches for events, it is not one."""
        with self.write(actor) as tx:
            tx.session.add(
                AuditCheckpointRow(
                    project=checkpoint.project,
                    seq=checkpoint.seq,
                    head_hash=checkpoint.head_hash,
                    signed_at=checkpoint.signed_at,
                    key_id=checkpoint.key_id,
                    signature=checkpoint.signature,
                )
            )
        return checkpoint

    def audit_checkpoints(self, *, key_id: str | None = None, newest: int | None = None) -> list[Checkpoint]:
        """Checkpoints in the order of the events they sign; only ``key_id``'s, only the ``newest`` few, when asked."""
        with self.read() as session:
            query = select(AuditCheckpointRow).order_by(AuditCheckpointRow.seq.desc(), AuditCheckpointRow.id.desc())
            if key_id is not None:
                query = query.where(AuditCheckpointRow.key_id == key_id)
            if newest is not None:
                query = query.limit(newest)
            return [row.to_entity() for row in reversed(session.scalars(query).all())]

    def audit_hashes(self, seqs: Collection[int]) -> tuple[dict[int, str], int]:
        """The stored hash of each event in ``seqs`` that exists, and the last event's sequence number."""
        with self.read() as session:
            found: dict[int, str] = {}
            wanted = sorted(set(seqs))
            for start in range(0, len(wanted), 500):  # stay under every database's parameter limit
                chunk = wanted[start : start + 500]
                query = select(AuditRow.seq, AuditRow.hash).where(AuditRow.seq.in_(chunk))
                found.update({seq: digest for seq, digest in session.execute(query)})
            last = session.scalars(select(AuditRow.seq).order_by(AuditRow.seq.desc()).limit(1)).first()
            return found, last or 0


__all__ = ["KEY_SUBJECT", "CheckpointRecords"]
