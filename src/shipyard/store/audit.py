"""The tamper-evident audit chain.

Each event's hash covers its own fields and the previous event's hash, so an
edited, deleted, inserted or reordered event breaks the chain at that point,
and the head row (last seq + hash) catches events cut from the end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from shipyard.domain.entities import AuditEvent, AuditVerification

GENESIS = "0" * 64


def canonical_time(value: datetime) -> str:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_sha256(value: Any) -> str:
    """Digest of a JSON document that does not depend on key order or whitespace."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def event_hash(*, seq: int, at: datetime, actor: str, action: str, subject: str, details: dict[str, Any], prev_hash: str) -> str:
    payload = {
        "seq": seq,
        "at": canonical_time(at),
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": details,
        "prev_hash": prev_hash,
    }
    return canonical_sha256(payload)


def holds(event: AuditEvent) -> bool:
    """Whether the event's content still matches its own hash."""
    recomputed = event_hash(
        seq=event.seq,
        at=event.at,
        actor=event.actor,
        action=event.action,
        subject=event.subject,
        details=event.details,
        prev_hash=event.prev_hash,
    )
    return recomputed == event.hash


def verify_chain(
    events: Iterable[AuditEvent], head: tuple[int, str] | None, *, start: tuple[int, str] | None = None
) -> AuditVerification:
    """Walk events in stored order; report the first sequence number that does not hold.

    ``start``: an already verified (seq, hash); ``events`` then begin right after it.
    """
    expected_seq, prev = (start[0] + 1, start[1]) if start is not None else (1, GENESIS)
    count = 0
    for event in events:
        count += 1
        if event.seq != expected_seq:
            if event.seq > expected_seq:
                problem = f"event {expected_seq} is missing (the next stored event is {event.seq}): an event was deleted"
                return AuditVerification(ok=False, events=count, first_bad_seq=expected_seq, problem=problem)
            problem = f"event {event.seq} appears where {expected_seq} was expected: events were inserted or reordered"
            return AuditVerification(ok=False, events=count, first_bad_seq=event.seq, problem=problem)
        if event.prev_hash != prev:
            problem = (
                f"event {event.seq} does not link to event {event.seq - 1} (previous hash differs): "
                "an event before it was deleted, inserted or reordered"
            )
            return AuditVerification(ok=False, events=count, first_bad_seq=event.seq, problem=problem)
        if not holds(event):
            problem = f"event {event.seq} was edited: its content no longer matches its hash"
            return AuditVerification(ok=False, events=count, first_bad_seq=event.seq, problem=problem)
        prev = event.hash
        expected_seq += 1
    last_seq = expected_seq - 1
    head_seq, head_hash = head if head is not None else (0, GENESIS)
    if head_seq != last_seq or head_hash != prev:
        if head_seq > last_seq:
            problem = f"the chain ends at event {last_seq} but its head records event {head_seq}: events were cut from the end"
            return AuditVerification(ok=False, events=count, first_bad_seq=last_seq + 1, problem=problem)
        problem = f"the chain's head (event {head_seq}) does not match its last event {last_seq}"
        return AuditVerification(ok=False, events=count, first_bad_seq=min(head_seq, last_seq) or 1, problem=problem)
    return AuditVerification(ok=True, events=count)
