"""A page of the audit log, filtered and counted by the database rather than by reading every event."""

from __future__ import annotations

from factories import register
from shipyard.store.repository import Store


def test_a_page_is_newest_first_filtered_and_counted(store: Store) -> None:
    register(store, 1)
    register(store, 2)
    store.record_denial(actor="mallory", action="approval", subject="churn/2", details={"reason": "no role"})
    store.record_denial(actor="mallory", action="promote", subject="other", details={"reason": "no role"})
    everything = store.audit_events()

    page, matching, total = store.audit_page(limit=2)
    assert total == matching == len(everything)
    assert [e.seq for e in page] == [everything[-1].seq, everything[-2].seq]

    by_model, matching, _ = store.audit_page(model="churn")
    assert {e.subject for e in by_model} <= {"churn", "churn/1", "churn/2"} and matching == len(by_model) == 4

    denied, matching, _ = store.audit_page(actor="mallory", action="approval")
    assert matching == 1 and [(e.action, e.subject) for e in denied] == [("approval.denied", "churn/2")]

    beyond, matching, _ = store.audit_page(offset=100)
    assert beyond == [] and matching == len(everything)
