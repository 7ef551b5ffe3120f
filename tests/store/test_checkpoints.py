"""Audit keys and signed checkpoints in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from factories import register
from shipyard.domain.checkpoints import Checkpoint
from shipyard.domain.errors import Conflict, NotFound
from shipyard.store.repository import Store


def test_listing_keys_is_audited_and_a_rotation_retires_the_old_one(store: Store) -> None:
    first = store.add_audit_key(actor="server", key_id="a" * 16, public_key="0a" * 32)
    second = store.add_audit_key(actor="ada", key_id="b" * 16, public_key="0b" * 32, retire=first.key_id)
    keys = store.audit_keys()
    assert [(k.key_id, k.retired_at is not None) for k in keys] == [("a" * 16, True), ("b" * 16, False)]
    assert keys[1] == second and keys[1].raw == bytes.fromhex("0b" * 32)
    events = store.audit_events()
    assert [(e.action, e.subject, e.actor) for e in events] == [
        ("audit.key_created", "audit", "server"),
        ("audit.key_rotated", "audit", "ada"),
    ]
    assert events[1].details == {"key_id": "b" * 16, "public_key": "0b" * 32, "retired": "a" * 16}
    assert store.verify_audit().ok


def test_a_key_is_listed_once_and_only_a_listed_key_is_retired(store: Store) -> None:
    store.add_audit_key(actor="server", key_id="a" * 16, public_key="0a" * 32)
    with pytest.raises(Conflict, match="is listed already"):
        store.add_audit_key(actor="server", key_id="a" * 16, public_key="0a" * 32)
    with pytest.raises(NotFound, match="is not listed in the store"):
        store.add_audit_key(actor="server", key_id="b" * 16, public_key="0b" * 32, retire="c" * 16)
    assert len(store.audit_events()) == 1


def test_checkpoints_are_kept_without_an_event_and_read_back_in_order(store: Store) -> None:
    register(store, 1)
    register(store, 2)
    events = store.audit_events()
    at = datetime(2026, 12, 3, 10, 0, 0, 654321, tzinfo=UTC)
    later = Checkpoint(project="p", seq=3, head_hash=events[2].hash, signed_at=at, key_id="a" * 16, signature="01" * 64)
    earlier = Checkpoint(project="p", seq=1, head_hash=events[0].hash, signed_at=at, key_id="a" * 16, signature="02" * 64)
    store.record_checkpoint(actor="server", checkpoint=later)
    store.record_checkpoint(actor="server", checkpoint=earlier)
    assert store.audit_checkpoints() == [earlier, later]  # the time comes back to the microsecond: the signature covers it
    assert len(store.audit_events()) == 3 and store.verify_audit().ok
    with pytest.raises(Conflict):
        store.record_checkpoint(actor="server", checkpoint=later)  # one row per signature


def test_the_hashes_checkpoints_are_held_against(store: Store) -> None:
    assert store.audit_hashes([1]) == ({}, 0)
    register(store, 1)
    register(store, 2)
    events = store.audit_events()
    hashes, last = store.audit_hashes([1, 3, 7])
    assert hashes == {1: events[0].hash, 3: events[2].hash} and last == 3
    many, _ = store.audit_hashes(range(1, 1200))
    assert sorted(many) == [1, 2, 3]


def test_the_newest_checkpoints_of_one_key(store: Store) -> None:
    at = datetime(2026, 12, 3, tzinfo=UTC)
    for seq, key in ((1, "a"), (2, "b"), (3, "a"), (4, "a")):
        checkpoint = Checkpoint(
            project="p", seq=seq, head_hash="00" * 32, signed_at=at, key_id=key * 16, signature=f"{seq:02d}" * 64
        )
        store.record_checkpoint(actor="server", checkpoint=checkpoint)
    assert [c.seq for c in store.audit_checkpoints()] == [1, 2, 3, 4]
    assert [c.seq for c in store.audit_checkpoints(key_id="a" * 16, newest=2)] == [3, 4]
    assert [c.seq for c in store.audit_checkpoints(newest=1)] == [4]
