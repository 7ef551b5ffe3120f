"""The store's behaviour, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from factories import register
from shipyard.domain.errors import Conflict, NotFound
from shipyard.domain.stages import Stage
from shipyard.store.repository import Store


def to_production(store: Store, version: int, actor: str = "bob") -> None:
    store.transition(actor=actor, model="churn", version=version, to=Stage.STAGING, reason="review")
    store.transition(actor=actor, model="churn", version=version, to=Stage.PRODUCTION, reason="ship")


def test_register_creates_model_and_candidate(store: Store) -> None:
    register(store, 1)
    [model] = store.list_models()
    assert (model.name, model.owner, model.created_by) == ("churn", "team@example.com", "alice")
    version = store.get_version("churn", 1)
    assert version.stage is Stage.CANDIDATE
    assert version.metrics == {"roc_auc": pytest.approx(0.81)}
    assert version.registered_by == "alice"
    assert version.registered_at.tzinfo is not None
    actions = [(e.action, e.subject, e.actor) for e in store.audit_events()]
    assert actions == [("model.created", "churn", "alice"), ("version.registered", "churn/1", "alice")]


def test_register_twice_is_a_conflict_and_changes_nothing(store: Store) -> None:
    register(store, 1)
    with pytest.raises(Conflict, match="already registered"):
        register(store, 1)
    assert len(store.audit_events()) == 2
    assert store.verify_audit().ok


def test_promotion_to_production_archives_the_champion(store: Store) -> None:
    register(store, 1)
    register(store, 2)
    to_production(store, 1)
    store.transition(actor="bob", model="churn", version=2, to=Stage.STAGING, reason="review")
    promotion = store.transition(actor="carol", model="churn", version=2, to=Stage.PRODUCTION, reason="better")
    assert promotion.from_stage is Stage.STAGING
    assert promotion.version.stage is Stage.PRODUCTION
    assert [v.version for v in promotion.archived] == [1]
    stages = {v.version: v.stage for v in store.list_versions("churn")}
    assert stages == {1: Stage.ARCHIVED, 2: Stage.PRODUCTION}
    history = [(h.from_stage, h.to_stage, h.actor) for h in store.stage_history("churn", 1)]
    assert history[-1] == (Stage.PRODUCTION, Stage.ARCHIVED, "carol")
    last = store.audit_events()[-2:]
    assert [(e.subject, e.details["from"], e.details["to"], e.actor) for e in last] == [
        ("churn/1", "production", "archived", "carol"),
        ("churn/2", "staging", "production", "carol"),
    ]


def test_illegal_move_is_refused_without_any_write(store: Store) -> None:
    register(store, 1)
    before = len(store.audit_events())
    with pytest.raises(Conflict) as caught:
        store.transition(actor="bob", model="churn", version=1, to=Stage.PRODUCTION, reason="skip")
    assert "staging, archived, rejected" in (caught.value.hint or "")
    assert store.get_version("churn", 1).stage is Stage.CANDIDATE
    assert len(store.audit_events()) == before


def test_unknown_model_and_version_name_the_known_ones(store: Store) -> None:
    register(store, 1)
    register(store, 3)
    with pytest.raises(NotFound, match="unknown model 'nope'") as caught:
        store.get_version("nope", 1)
    assert caught.value.hint == "Known models: churn."
    with pytest.raises(NotFound, match="has no version 2") as caught:
        store.transition(actor="bob", model="churn", version=2, to=Stage.STAGING, reason="x")
    assert caught.value.hint == "Known versions: 1, 3."
    with pytest.raises(NotFound):
        store.list_versions("nope")


def test_database_refuses_two_production_versions(store: Store) -> None:
    """The partial unique index holds even against writes that bypass the stage machine."""
    register(store, 1)
    register(store, 2)
    to_production(store, 1)
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(text("UPDATE model_versions SET stage = 'production' WHERE version = 2"))


def test_audit_filter_by_model(store: Store) -> None:
    register(store, 1)
    register(store, 1, model="churn_v2")
    register(store, 1, model="fraud")
    subjects = {e.subject for e in store.audit_events(model="churn")}
    assert subjects == {"churn", "churn/1"}


def test_failed_transaction_leaves_no_audit_event(store: Store) -> None:
    register(store, 1)
    with pytest.raises(RuntimeError), store.write("mallory") as tx:
        tx.audit("something", "churn", {})
        raise RuntimeError("boom")
    assert [e.actor for e in store.audit_events()] == ["alice", "alice"]
    assert store.verify_audit().ok


def test_a_version_number_beyond_the_column_is_not_found(store: Store) -> None:
    """On PostgreSQL such a number made the query itself fail (an unavailable store, not an unknown version)."""
    register(store, version=1)
    for number in (2**31, 2**40, 0, -(2**63)):
        with pytest.raises(NotFound, match="has no version"):
            store.get_version("churn", number)
