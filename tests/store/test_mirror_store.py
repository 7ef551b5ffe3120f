"""The MLflow mirror's backlog in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from factories import register
from shipyard.domain.errors import Conflict, InvalidSpec
from shipyard.domain.stages import Stage
from shipyard.store.repository import Store


def pending(store: Store, model: str | None = None) -> list[tuple[str, str, str]]:
    return [(p.kind, p.model, p.reason) for p in store.mirror_pending(model)]


def test_every_stage_change_marks_the_model_in_its_own_transaction(store: Store) -> None:
    register(store, 1)
    [mark] = store.mirror_pending("churn")
    assert (mark.kind, mark.reason, mark.seq) == ("stages", "version 1 registered", store.audit_events()[-1].seq)
    assert store.clear_mirror_pending("churn") and store.mirror_pending() == []

    store.transition(actor="rui", model="churn", version=1, to=Stage.STAGING, reason="r")
    assert pending(store) == [("stages", "churn", "version 1 moved from candidate to staging")]
    first = store.mirror_pending()[0]
    store.transition(actor="rui", model="churn", version=1, to=Stage.PRODUCTION, reason="r")
    [again] = store.mirror_pending()
    # One mark per model: the newest reason, the first time it fell behind.
    assert (again.reason, again.since) == ("version 1 moved from staging to production", first.since)
    assert again.seq is not None and first.seq is not None and again.seq > first.seq


def test_a_change_that_fails_leaves_no_mark(store: Store) -> None:
    register(store, 1)
    store.clear_mirror_pending("churn")
    with pytest.raises(Conflict, match="cannot move"):
        store.transition(actor="rui", model="churn", version=1, to=Stage.PRODUCTION, reason="r")
    assert store.mirror_pending() == []


def test_a_clear_keeps_a_mark_set_after_the_stages_were_read(store: Store) -> None:
    register(store, 1)
    seen = store.mirror_pending("churn")[0].seq
    # The mirror read the stages, then another change landed before it cleared.
    store.transition(actor="rui", model="churn", version=1, to=Stage.STAGING, reason="r")
    assert not store.clear_mirror_pending("churn", seq=seen)
    assert pending(store) == [("stages", "churn", "version 1 moved from candidate to staging")]
    assert store.clear_mirror_pending("churn", seq=store.mirror_pending()[0].seq)
    assert not store.clear_mirror_pending("churn")


def test_rollout_promotion_marks_and_other_rollout_actions_do_not(store: Store) -> None:
    for version in (1, 2):
        register(store, version)
        store.transition(actor="rui", model="churn", version=version, to=Stage.STAGING, reason="r")
    store.transition(actor="rui", model="churn", version=1, to=Stage.PRODUCTION, reason="r")
    store.clear_mirror_pending("churn")

    def start() -> None:
        store.start_rollout(
            actor="rui",
            model="churn",
            version=2,
            strategy="canary",
            steps=[10.0, 100.0],
            interval_seconds=1.0,
            checks={},
            failure_limit=2,
            gate=None,
        )

    start()
    store.advance_rollout(actor="controller", model="churn", action="next")
    store.advance_rollout(actor="controller", model="churn", action="abort")
    assert store.mirror_pending() == []
    start()
    rollout = store.advance_rollout(actor="controller", model="churn", action="promote")
    assert pending(store) == [("stages", "churn", f"rollout {rollout.id} promoted version 2")]


def test_a_registration_begun_is_listed_until_the_store_records_it(store: Store) -> None:
    first = store.begin_registration(actor="alice", model="churn", run_id="run1")
    [begun] = store.mirror_pending()
    assert (begun.kind, begun.model, begun.run_id, begun.registration) == ("registration", "churn", "run1", first)
    assert "alice" in begun.reason and "run1" in begun.reason
    assert store.audit_events() == []  # bookkeeping, not history

    register(store, 1)  # the factory registers version 1 for run1
    assert pending(store) == [("stages", "churn", "version 1 registered")]


def test_an_earlier_attempt_for_the_same_run_stays_listed(store: Store) -> None:
    """A crash after MLflow registered the first attempt may have left an orphan there."""
    crashed = store.begin_registration(actor="alice", model="churn", run_id="run1")
    store.begin_registration(actor="alice", model="churn", run_id="run1")
    other = store.begin_registration(actor="bob", model="other", run_id="run9")
    register(store, 1)
    left = [(p.model, p.registration) for p in store.mirror_pending() if p.kind == "registration"]
    assert left == [("churn", crashed), ("other", other)]
    assert [p.model for p in store.mirror_pending("other")] == ["other"]
    assert store.end_registration(crashed) and not store.end_registration(crashed)
    assert [p.model for p in store.mirror_pending() if p.kind == "registration"] == ["other"]


def test_a_registration_needs_a_run_id(store: Store) -> None:
    with pytest.raises(InvalidSpec, match="needs the MLflow run id"):
        store.begin_registration(actor="alice", model="churn", run_id=" ")
