"""Notification cursors on SQLite and PostgreSQL: where a notifier stands, moved only from where it was seen."""

from __future__ import annotations

from datetime import UTC, datetime

from factories import register
from shipyard.domain.governance import GateReport, Outcome, RuleResult
from shipyard.store.repository import Store

GATES = ("gate.evaluated",)


def blocked(store: Store, version: int) -> int:
    """Record a blocked production gate for churn/``version``; its audit event's seq."""
    rule = RuleResult(
        index=0, kind="approvals", name="approvals", severity="block", outcome=Outcome.FAILED, observed="0", expected="1"
    )
    report = GateReport(
        model="churn", version=version, stage="production", results=(rule,), evaluated_at=datetime.now(UTC), actor="rui"
    )
    store.record_gate(report)
    return store.audit_events()[-1].seq


def test_a_new_cursor_starts_at_the_end_of_the_log_and_reads_only_what_follows(store: Store) -> None:
    register(store, 1)
    before = blocked(store, 1)
    assert store.notify_cursor("notify") is None
    cursor = store.start_notify_cursor(actor="robot", name="notify")
    assert (cursor.seq, cursor.attempts) == (before, 0)
    assert store.start_notify_cursor(actor="robot", name="notify") == cursor  # a second start changes nothing
    assert store.notify_backlog(cursor.seq, actions=GATES, limit=10) == ([], before)
    register(store, 2)
    first, second = blocked(store, 2), blocked(store, 2)
    events, head = store.notify_backlog(cursor.seq, actions=GATES, limit=10)
    assert [e.seq for e in events] == [first, second] and head == second
    assert [e.seq for e in store.notify_backlog(cursor.seq, actions=GATES, limit=1)[0]] == [first]
    assert [e.seq for e in store.notify_backlog(first, actions=GATES, limit=10)[0]] == [second]
    assert store.verify_audit().ok and len(store.audit_events()) == second  # cursors write no audit event


def test_a_cursor_moves_only_from_where_it_was_seen(store: Store) -> None:
    register(store, 1)
    start = store.start_notify_cursor(actor="robot", name="notify").seq
    register(store, 2)  # events that call for no message come between
    event = blocked(store, 1)
    assert event - 1 > start
    failing = store.note_notify_failure(actor="robot", name="notify", seen=start, to=event - 1, error="HTTP 500: down")
    assert failing is not None and (failing.seq, failing.attempts, failing.last_error) == (event - 1, 1, "HTTP 500: down")
    again = store.note_notify_failure(actor="robot", name="notify", seen=event - 1, to=event - 1, error="HTTP 502: still")
    assert again is not None and again.attempts == 2
    # A second worker that still saw the old position moves nothing.
    assert store.note_notify_failure(actor="robot", name="notify", seen=start, to=event - 1, error="late") is None
    assert not store.advance_notify_cursor(actor="robot", name="notify", seen=start, to=event)
    assert store.advance_notify_cursor(actor="robot", name="notify", seen=event - 1, to=event)
    moved = store.notify_cursor("notify")
    assert moved is not None and (moved.seq, moved.attempts, moved.last_error) == (event, 0, None)
    assert not store.advance_notify_cursor(actor="robot", name="other", seen=0, to=event)  # no such cursor


def test_giving_a_message_up_is_audited_with_the_move_in_one_transaction(store: Store) -> None:
    register(store, 1)
    start = store.start_notify_cursor(actor="robot", name="notify").seq
    event = blocked(store, 1)
    (gate,) = [e for e in store.audit_events() if e.seq == event]
    assert store.give_up_notification(actor="robot", name="notify", seen=start + 99, event=gate, details={}) is None
    failed = store.give_up_notification(
        actor="robot", name="notify", seen=start, event=gate, details={"attempts": 6, "error": "HTTP 500: down"}
    )
    assert failed is not None
    assert (failed.action, failed.actor, failed.subject) == ("notify.failed", "robot", "churn/1")
    assert failed.details == {"notifier": "notify", "event": event, "attempts": 6, "error": "HTTP 500: down"}
    cursor = store.notify_cursor("notify")
    assert cursor is not None and cursor.seq == event
    assert store.verify_audit().ok
    # The notify.failed event itself calls for no message.
    assert store.notify_backlog(cursor.seq, actions=GATES, limit=10) == ([], failed.seq)
