"""The audit chain finds every kind of tampering, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from factories import forge, register
from shipyard.domain.stages import Stage
from shipyard.store.audit import GENESIS, event_hash
from shipyard.store.repository import Store


@pytest.fixture
def chained(store: Store) -> Store:
    """Five events: created, registered ×2, two stage changes."""
    for version in (1, 2):
        register(store, version)
    store.transition(actor="bob", model="churn", version=1, to=Stage.STAGING, reason="ok")
    store.transition(actor="bob", model="churn", version=1, to=Stage.PRODUCTION, reason="ok")
    assert [e.seq for e in store.audit_events()] == [1, 2, 3, 4, 5]
    return store


def sql(store: Store, statement: str, **params: object) -> None:
    forge(store, statement, **params)


def test_intact_chain_verifies(chained: Store) -> None:
    result = chained.verify_audit()
    assert result.ok and result.events == 5 and result.first_bad_seq is None


def test_hashes_link_and_cover_content(chained: Store) -> None:
    events = chained.audit_events()
    assert events[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    third = events[2]
    assert third.hash == event_hash(
        seq=third.seq,
        at=third.at,
        actor=third.actor,
        action=third.action,
        subject=third.subject,
        details=third.details,
        prev_hash=third.prev_hash,
    )


def test_edited_actor_is_named(chained: Store) -> None:
    sql(chained, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    result = chained.verify_audit()
    assert not result.ok and result.first_bad_seq == 3
    assert "edited" in (result.problem or "")


def test_edited_details_are_named(chained: Store) -> None:
    sql(
        chained,
        """UPDATE audit_events SET details = '{"from": "staging", "to": "production", "reason": "forged"}' WHERE seq = 5""",
    )
    result = chained.verify_audit()
    assert (result.ok, result.first_bad_seq) == (False, 5)


def test_edited_time_is_named(chained: Store) -> None:
    sql(chained, "UPDATE audit_events SET at = :at WHERE seq = 2", at=datetime(2020, 1, 1, tzinfo=UTC))
    assert chained.verify_audit().first_bad_seq == 2


def test_deleted_event_is_named(chained: Store) -> None:
    sql(chained, "DELETE FROM audit_events WHERE seq = 2")
    result = chained.verify_audit()
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "deleted" in (result.problem or "")


def test_events_cut_from_the_end_are_found(chained: Store) -> None:
    sql(chained, "DELETE FROM audit_events WHERE seq >= 4")
    result = chained.verify_audit()
    assert (result.ok, result.first_bad_seq) == (False, 4)


def test_inserted_event_is_named(chained: Store) -> None:
    # Make room after event 2 and forge an event there with a self-consistent hash.
    sql(chained, "UPDATE audit_events SET seq = seq + 100 WHERE seq >= 3")
    sql(chained, "UPDATE audit_events SET seq = seq - 99 WHERE seq >= 103")
    events = chained.audit_events()
    prev = events[1].hash
    at = datetime(2026, 1, 1, tzinfo=UTC)
    forged = event_hash(
        seq=3, at=at, actor="mallory", action="version.stage_changed", subject="churn/2", details={}, prev_hash=prev
    )
    sql(
        chained,
        "INSERT INTO audit_events (seq, at, actor, action, subject, details, prev_hash, hash) "
        "VALUES (3, :at, 'mallory', 'version.stage_changed', 'churn/2', '{}', :prev, :hash)",
        at=at,
        prev=prev,
        hash=forged,
    )
    result = chained.verify_audit()
    assert not result.ok
    assert result.first_bad_seq == 4  # the forged event links back, but the next one no longer does


def test_reordered_events_are_named(chained: Store) -> None:
    sql(chained, "UPDATE audit_events SET seq = 1000 WHERE seq = 3")
    sql(chained, "UPDATE audit_events SET seq = 3 WHERE seq = 4")
    sql(chained, "UPDATE audit_events SET seq = 4 WHERE seq = 1000")
    result = chained.verify_audit()
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_chain_continues_after_verify(chained: Store) -> None:
    chained.transition(actor="bob", model="churn", version=2, to=Stage.REJECTED, reason="worse")
    result = chained.verify_audit()
    assert result.ok and result.events == 6


def test_a_refused_action_leaves_a_denied_event_in_the_chain(store: Store) -> None:
    register(store, 1)
    event = store.record_denial(
        actor="mallory", action="promote", subject="churn/1", details={"to": "production", "reason": "not a deployer"}
    )
    assert (event.action, event.actor, event.subject) == ("promote.denied", "mallory", "churn/1")
    [stored] = store.audit_events(model="churn")[-1:]
    assert stored == event and stored.details == {"to": "production", "reason": "not a deployer"}
    assert store.record_denial(actor="eve", action="approval", subject="churn/1").action == "approval.denied"
    assert store.verify_audit().ok


@pytest.mark.parametrize("action", ["", " ", "promote.denied"])
def test_a_denial_needs_the_refused_action(store: Store, action: str) -> None:
    from shipyard.domain.errors import InvalidSpec

    before = len(store.audit_events())
    with pytest.raises(InvalidSpec, match="action that was refused"):
        store.record_denial(actor="eve", action=action, subject="churn")
    assert len(store.audit_events()) == before


@contextmanager
def write_during_verification(verifier: Store) -> Iterator[list[int]]:
    """Append one event through another connection right after ``verifier`` has read the chain's head.

    Deterministic interleaving: a cursor hook on the verifier's engine runs the write.
    """
    from sqlalchemy import event

    writer = Store.open(verifier.url, auto_migrate=False)
    written: list[int] = []

    def after_execute(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "audit_head" in statement and not written:
            written.append(writer.record_denial(actor="eve", action="promote", subject="churn").seq)

    event.listen(verifier.engine, "after_cursor_execute", after_execute)
    try:
        yield written
    finally:
        event.remove(verifier.engine, "after_cursor_execute", after_execute)
        writer.close()


def test_a_write_landing_during_verification_is_not_taken_for_tampering(chained: Store) -> None:
    """The head and the events are read from one snapshot, so an append in between is simply not seen yet."""
    with write_during_verification(chained) as written:
        result = chained.verify_audit()
    assert written == [6]
    assert (result.ok, result.events, result.problem) == (True, 5, None)
    assert chained.verify_audit().events == 6


def more_events(store: Store, count: int) -> None:
    for _ in range(count):
        store.record_denial(actor="eve", action="promote", subject="churn/1")


def test_incremental_verification_keeps_a_running_figure(chained: Store) -> None:
    first, checkpoint = chained.verify_audit_from(None)
    events = chained.audit_events()
    assert (first.ok, first.events, checkpoint) == (True, 5, (5, events[-1].hash))
    more_events(chained, 3)
    second, checkpoint = chained.verify_audit_from(checkpoint)
    assert (second.ok, second.events, checkpoint) == (True, 8, (8, chained.audit_events()[-1].hash))
    same, unchanged = chained.verify_audit_from(checkpoint)
    assert (same.ok, same.events, unchanged) == (True, 8, checkpoint)


@pytest.mark.parametrize(
    ("statement", "bad", "words"),
    [
        ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 7", 7, "edited"),
        ("DELETE FROM audit_events WHERE seq = 7", 7, "deleted"),
        ("DELETE FROM audit_events WHERE seq = 8", 8, "cut from the end"),
        ("UPDATE audit_events SET details = '{}' WHERE seq = 5", 5, "changed since it was verified"),
        ("DELETE FROM audit_events WHERE seq = 5", 5, "is gone"),
    ],
    ids=["new-edited", "new-deleted", "new-cut", "checkpoint-edited", "checkpoint-deleted"],
)
def test_incremental_verification_finds_tampering_after_the_checkpoint(
    chained: Store, statement: str, bad: int, words: str
) -> None:
    _, checkpoint = chained.verify_audit_from(None)
    more_events(chained, 3)
    sql(chained, statement)
    result, kept = chained.verify_audit_from(checkpoint)
    assert (result.ok, result.first_bad_seq) == (False, bad)
    assert words in (result.problem or "")
    assert kept == checkpoint  # the next call checks the same events again


def test_incremental_verification_reads_only_the_new_events(chained: Store) -> None:
    """O(new events): count the audit rows the ORM loads (the checkpoint's own event, then the new ones)."""
    from sqlalchemy import event

    from shipyard.store.tables import AuditRow

    more_events(chained, 40)
    _, checkpoint = chained.verify_audit_from(None)
    more_events(chained, 4)
    loaded: list[int] = []

    def on_load(row: AuditRow, _context: object) -> None:
        loaded.append(row.seq)

    event.listen(AuditRow, "load", on_load)
    try:
        result, _ = chained.verify_audit_from(checkpoint)
        incremental = sorted(loaded)
        loaded.clear()
        chained.verify_audit()
        full = len(loaded)
    finally:
        event.remove(AuditRow, "load", on_load)
    assert result.ok and result.events == 49
    assert incremental == [45, 46, 47, 48, 49]
    assert full == 49


def test_an_edit_before_the_checkpoint_is_left_to_the_full_verification(chained: Store) -> None:
    _, checkpoint = chained.verify_audit_from(None)
    sql(chained, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    assert chained.verify_audit_from(checkpoint)[0].ok
    assert chained.verify_audit().first_bad_seq == 2


def test_incremental_verification_during_a_write_stops_at_the_head_it_read(chained: Store) -> None:
    _, checkpoint = chained.verify_audit_from(None)
    more_events(chained, 2)
    with write_during_verification(chained) as written:
        result, checkpoint = chained.verify_audit_from(checkpoint)
    assert written == [8]
    assert (result.ok, result.events) == (True, 7) and checkpoint is not None and checkpoint[0] == 7
    later, checkpoint = chained.verify_audit_from(checkpoint)
    assert (later.ok, later.events, checkpoint[0] if checkpoint else None) == (True, 8, 8)
