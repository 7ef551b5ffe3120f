"""Legal holds on SQLite and PostgreSQL: added and lifted with their audit events, never twice."""

from __future__ import annotations

import pytest

from factories import register
from shipyard.domain.errors import Conflict, InvalidSpec, NotFound
from shipyard.store.repository import Store


def test_a_hold_is_added_listed_and_lifted_with_audit_events(store: Store) -> None:
    register(store, 1)
    register(store, 2)
    held = store.add_hold(actor="ada", model="churn", version=2, reason="case 2026-114")
    assert (held.subject, held.reason, held.actor) == ("churn/2", "case 2026-114", "ada")
    assert [h.subject for h in store.holds()] == ["churn/2"] and store.holds("other") == []
    with pytest.raises(Conflict, match="already under legal hold"):
        store.add_hold(actor="ada", model="churn", version=2, reason="again")
    lifted = store.remove_hold(actor="ada", model="churn", version=2, reason="case closed")
    assert lifted.subject == "churn/2" and store.holds() == []
    events = [e for e in store.audit_events() if e.action.startswith("hold.")]
    assert [(e.action, e.subject, e.actor, e.details["reason"]) for e in events] == [
        ("hold.added", "churn/2", "ada", "case 2026-114"),
        ("hold.removed", "churn/2", "ada", "case closed"),
    ]
    assert store.verify_audit().ok


def test_holds_refuse_unknown_versions_and_empty_reasons(store: Store) -> None:
    register(store, 1)
    before = len(store.audit_events())
    with pytest.raises(NotFound, match="no version 7"):
        store.add_hold(actor="ada", model="churn", version=7, reason="r")
    with pytest.raises(InvalidSpec, match="needs a reason"):
        store.add_hold(actor="ada", model="churn", version=1, reason="  ")
    with pytest.raises(NotFound, match="not under legal hold"):
        store.remove_hold(actor="ada", model="churn", version=1, reason="r")
    assert len(store.audit_events()) == before  # nothing refused was recorded as done


def test_a_retention_action_is_one_audit_event(store: Store) -> None:
    store.record_retention(actor="robot", action="compact", subject="churn/date=2026-01-01", details={"files": 3})
    event = store.audit_events()[-1]
    assert (event.action, event.subject, event.details) == ("retention.compact", "churn/date=2026-01-01", {"files": 3})
