"""Monitor runs and alerts in the store: one open alert per model and signal, audited, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

import pytest

from factories import register
from shipyard.domain.errors import Conflict
from shipyard.domain.stages import Stage
from shipyard.store.monitoring import SignalReading
from shipyard.store.repository import Store
from shipyard.store.tables import AlertRow


def reading(fired: bool, observed: float = 0.5, signal: str = "feature_drift_share") -> SignalReading:
    return SignalReading(signal=signal, observed=observed, threshold=0.25, fired=fired, action="retrain")


def run(store: Store, *readings: SignalReading, rows: int = 500) -> object:
    return store.record_monitor_run(
        actor="monitor",
        model="churn",
        version=1,
        window=(None, None),
        rows=rows,
        dataset_drift=any(r.fired for r in readings),
        report={"rows": rows},
        readings=list(readings),
    )


def test_a_lasting_signal_opens_one_alert_until_it_clears(store: Store) -> None:
    register(store, 1)
    first = run(store, reading(True))
    assert [a.signal for a in first.opened] == ["feature_drift_share"]  # type: ignore[attr-defined]
    assert first.opened[0].action_state == "pending"  # type: ignore[attr-defined]
    again = run(store, reading(True, 0.6))
    assert again.opened == () and len(again.ongoing) == 1  # type: ignore[attr-defined]
    assert again.ongoing[0].seen == 2 and again.ongoing[0].observed == 0.6  # type: ignore[attr-defined]
    cleared = run(store, reading(False, 0.1))
    assert [a.id for a in cleared.resolved] == [first.opened[0].id]  # type: ignore[attr-defined]
    assert cleared.resolved[0].resolved_at is not None  # type: ignore[attr-defined]
    back = run(store, reading(True))
    assert len(back.opened) == 1 and back.opened[0].id != first.opened[0].id  # type: ignore[attr-defined]
    assert [a.state for a in store.alerts(model="churn")] == ["resolved", "open"]
    assert len(store.monitor_runs("churn")) == 4
    actions = [e.action for e in store.audit_events(model="churn")]
    assert actions.count("alert.opened") == 2 and actions.count("alert.resolved") == 1 and actions.count("monitor.run") == 4
    assert store.verify_audit().ok


def test_signals_are_independent_and_a_run_without_readings_changes_nothing(store: Store) -> None:
    register(store, 1)
    run(store, reading(True), reading(True, 0.4, "prediction_drift"))
    assert len(store.alerts(state="open")) == 2
    run(store)  # too little traffic to judge: open alerts stay open
    assert len(store.alerts(state="open")) == 2


def test_the_latest_run_of_each_model_is_read_again_only_when_a_newer_one_comes(store: Store) -> None:
    register(store, 1)
    register(store, 1, model="fraud")
    assert store.latest_monitor_runs(["churn", "fraud"]) == {}
    run(store, reading(True))
    second = run(store, reading(False, 0.1))
    latest = store.latest_monitor_runs(["churn", "fraud", "unknown"])
    assert list(latest) == ["churn"] and latest["churn"].id == second.run.id  # type: ignore[attr-defined]
    assert latest["churn"].report == {"rows": 500}
    # A run already known is handed back as it was given, not read again.
    known = {"churn": replace(latest["churn"], report={"kept": True})}
    assert store.latest_monitor_runs(["churn"], known=known)["churn"].report == {"kept": True}
    third = run(store, reading(True, 0.7))
    assert store.latest_monitor_runs(["churn"], known=known)["churn"].id == third.run.id  # type: ignore[attr-defined]
    assert store.latest_monitor_runs(["fraud"], known=known) == {}  # a model not asked for is not answered


def test_action_results_are_recorded_and_audited(store: Store) -> None:
    register(store, 1)
    (alert,) = run(store, reading(True)).opened  # type: ignore[attr-defined]
    done = store.record_alert_action(actor="monitor", alert_id=alert.id, state="done", result={"version": 2})
    assert done.action_state == "done" and done.action_result == {"version": 2}
    assert store.audit_events(model="churn")[-1].action == "alert.retrain"


def test_the_database_refuses_a_second_open_alert_for_a_signal(store: Store) -> None:
    """The partial unique index backs the deduplication even against a writer that skips the store's check."""
    register(store, 1)
    (alert,) = run(store, reading(True)).opened  # type: ignore[attr-defined]
    with pytest.raises(Conflict, match="alerts"), store.write("intruder") as tx:
        row = tx.session.get(AlertRow, alert.id)
        assert row is not None
        copy = {c.name: getattr(row, c.name) for c in AlertRow.__table__.columns if c.name != "id"}
        tx.session.add(AlertRow(**copy))
        tx.session.flush()


def champion_with_alert(store: Store, champion: int = 1, *others: int) -> int:
    """``champion`` in production with an open drift alert raised on it; ``others`` in staging."""
    for version in (champion, *others):
        register(store, version)
        store.transition(actor="rui", model="churn", version=version, to=Stage.STAGING, reason="r")
    store.transition(actor="rui", model="churn", version=champion, to=Stage.PRODUCTION, reason="r")
    (alert,) = run(store, reading(True)).opened  # type: ignore[attr-defined]
    return int(alert.id)


def left_production_events(store: Store) -> list[tuple[str, dict[str, object]]]:
    return [(e.subject, e.details) for e in store.audit_events() if e.action == "alert.resolved"]


def test_resolutions_say_how_an_alert_closed(store: Store) -> None:
    register(store, 1)
    (drift,) = run(store, reading(True)).opened  # type: ignore[attr-defined]
    (cleared,) = run(store, reading(False, 0.1)).resolved  # type: ignore[attr-defined]
    assert (cleared.id, cleared.resolution) == (drift.id, "cleared")
    (errors,) = run(store, reading(True, signal="error_rate")).opened  # type: ignore[attr-defined]
    closed = store.resolve_alert(actor="rui", alert_id=errors.id, reason="false alarm")
    assert (closed.state, closed.resolution) == ("resolved", "manual")
    assert [(a.signal, a.resolution) for a in store.alerts(model="churn")] == [
        ("feature_drift_share", "cleared"),
        ("error_rate", "manual"),
    ]
    assert [d["resolution"] for _, d in left_production_events(store)] == ["cleared", "manual"]


def test_a_new_champion_closes_the_alerts_of_the_one_it_replaced(store: Store) -> None:
    alert_id = champion_with_alert(store, 1, 2)
    before = len(store.audit_events())
    store.transition(actor="rui", model="churn", version=2, to=Stage.PRODUCTION, reason="better")
    [alert] = store.alerts(model="churn")
    assert (alert.id, alert.state, alert.resolution) == (alert_id, "resolved", "left_production")
    assert alert.resolved_at is not None
    actions = [(e.action, e.subject) for e in store.audit_events()[before:]]
    # Archived, then its alert closed, then the new champion in: one transaction, one chain.
    assert actions == [
        ("version.stage_changed", "churn/1"),
        ("alert.resolved", "churn/1"),
        ("version.stage_changed", "churn/2"),
    ]
    assert left_production_events(store)[-1][1]["reason"] == "version 1 left production"
    assert store.verify_audit().ok


def test_archiving_the_champion_closes_its_alerts_and_other_moves_do_not(store: Store) -> None:
    champion_with_alert(store, 1, 2)
    store.transition(actor="rui", model="churn", version=2, to=Stage.ARCHIVED, reason="not needed")
    assert [a.state for a in store.alerts(model="churn")] == ["open"]
    store.transition(actor="rui", model="churn", version=1, to=Stage.ARCHIVED, reason="retired")
    assert [(a.state, a.resolution) for a in store.alerts(model="churn")] == [("resolved", "left_production")]


def test_an_alert_on_the_incoming_version_stays_open(store: Store) -> None:
    register(store, 1)
    store.transition(actor="rui", model="churn", version=1, to=Stage.STAGING, reason="r")
    store.transition(actor="rui", model="churn", version=1, to=Stage.PRODUCTION, reason="r")
    register(store, 2)
    store.transition(actor="rui", model="churn", version=2, to=Stage.STAGING, reason="r")
    store.record_monitor_run(
        actor="monitor",
        model="churn",
        version=2,
        window=(None, None),
        rows=500,
        dataset_drift=True,
        report={},
        readings=[reading(True)],
    )
    store.transition(actor="rui", model="churn", version=2, to=Stage.PRODUCTION, reason="r")
    assert [(a.version, a.state) for a in store.alerts(model="churn")] == [(2, "open")]


def test_a_promoted_rollout_closes_the_old_champions_alerts(store: Store) -> None:
    alert_id = champion_with_alert(store, 1, 2)
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
    assert store.alerts(model="churn")[0].open  # a rollout in progress leaves the champion's alerts alone
    store.advance_rollout(actor="controller", model="churn", action="promote")
    [alert] = store.alerts(model="churn")
    assert (alert.id, alert.resolution) == (alert_id, "left_production")
    assert [e.action for e in store.audit_events()][-4:] == [
        "version.stage_changed",
        "alert.resolved",
        "version.stage_changed",
        "rollout.promote",
    ]
    assert store.verify_audit().ok
