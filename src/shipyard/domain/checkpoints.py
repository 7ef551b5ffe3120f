"""Signed audit checkpoints and the public keys that verify them.

A checkpoint is the server's signature over the chain's head at one moment: with it,
someone who edits an event and recomputes every later hash no longer goes unnoticed,
because the recomputed hash at the checkpoint's sequence number differs from the signed one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shipyard.domain.errors import InvalidSpec

# Names what is signed, so a signature over a checkpoint is never valid for any other document.
DOCUMENT_TYPE = "shipyard.audit-checkpoint/1"


def signing_time(value: datetime) -> str:
    """The one spelling of a time inside a signed document: UTC, microseconds."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """The chain's head (``seq``, ``head_hash``) signed at ``signed_at`` by the key ``key_id``."""

    project: str
    seq: int
    head_hash: str
    signed_at: datetime
    key_id: str
    signature: str  # hex of the 64-byte Ed25519 signature over ``document()``

    def document(self) -> bytes:
        """The canonical bytes the signature covers: every field but the signature itself."""
        return document(
            project=self.project, seq=self.seq, head_hash=self.head_hash, signed_at=self.signed_at, key_id=self.key_id
        )

    @property
    def label(self) -> str:
        """How a message names it: its sequence number and when it was signed."""
        return f"checkpoint of seq {self.seq} (signed at {signing_time(self.signed_at)})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "seq": self.seq,
            "head_hash": self.head_hash,
            "signed_at": signing_time(self.signed_at),
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Any, *, where: str) -> Checkpoint:
        """Read one back (a line of the checkpoint file); ``where`` names it in the error."""
        try:
            if not isinstance(data, dict):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            seq, head_hash, signature = data["seq"], data["head_hash"], data["signature"]
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
                raise ValueError(f"seq must be a positive integer, got {seq!r}")
            if not (isinstance(head_hash, str) and isinstance(signature, str)):
                raise ValueError("head_hash and signature must be strings")
            signed_at = datetime.fromisoformat(str(data["signed_at"]).replace("Z", "+00:00"))
            return cls(
                project=str(data["project"]),
                seq=seq,
                head_hash=head_hash,
                signed_at=signed_at.astimezone(UTC),
                key_id=str(data["key_id"]),
                signature=signature,
            )
        except (KeyError, TypeError, ValueError) as exc:
            missing = f"the key {exc} is missing" if isinstance(exc, KeyError) else str(exc)
            raise InvalidSpec(
                f"{where} is not a checkpoint: {missing}",
                hint="Each line holds project, seq, head_hash, signed_at, key_id and signature, as the server writes them.",
            ) from None


def document(*, project: str, seq: int, head_hash: str, signed_at: datetime, key_id: str) -> bytes:
    fields = {
        "type": DOCUMENT_TYPE,
        "project": project,
        "seq": seq,
        "head_hash": head_hash,
        "signed_at": signing_time(signed_at),
        "key_id": key_id,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditKey:
    """A public key listed in the store; a retired one stays listed to verify the checkpoints it signed."""

    key_id: str
    public_key: str  # hex of the raw 32-byte Ed25519 public key
    created_at: datetime
    created_by: str
    retired_at: datetime | None = None

    @property
    def raw(self) -> bytes:
        return bytes.fromhex(self.public_key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "public_key": self.public_key,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "retired_at": self.retired_at.isoformat() if self.retired_at else None,
        }
