"""Delivery and governance KPIs from real store state, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from factories import register
from shipyard import kpis
from shipyard.domain.durations import parse_duration
from shipyard.domain.errors import InvalidSpec
from shipyard.domain.governance import Approval, GateReport, Outcome, RuleResult
from shipyard.domain.stages import Stage
from shipyard.store import repository
from shipyard.store.monitoring import SignalReading
from shipyard.store.repository import Store

T0 = datetime(2025, 3, 1, tzinfo=UTC)
DAY = 86400.0
COMPLETE = {
    "metrics": {"holdout": {"roc_auc": 0.9}, "slices": {}},
    "lineage": {"data_fingerprint": "ab" * 32, "git_commit": "c0ffee"},
    "data_validation": {"passed": True},
    "fairness": {},
    "robustness": {"probes": {}},
    "comparison": None,
}


class Clock:
    """The store stamps every write with ``utcnow()``; tests set the time each write gets."""

    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at

    def set(self, offset: timedelta) -> None:
        self.at = T0 + offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(repository, "utcnow", fake)
    return fake


def move(store: Store, version: int, to: Stage, *, model: str = "churn", reason: str = "ok", break_glass: bool = False) -> None:
    store.transition(actor="rui", model=model, version=version, to=to, reason=reason, break_glass=break_glass)


def approve(store: Store, version: int, *, model: str = "churn", decision: str = "approve", actor: str = "vera") -> None:
    store.record_approval(
        Approval(
            model=model,
            version=version,
            stage="production",
            actor=actor,
            roles=("approver",),
            decision=decision,
            comment="",
            at=datetime.now(UTC),
        )
    )


def break_glass_gate(model: str, version: int) -> GateReport:
    failed = RuleResult(
        index=0, kind="metric", name="metric roc_auc", severity="block", outcome=Outcome.FAILED, observed=0.8, expected=">= 0.9"
    )
    return GateReport(
        model=model,
        version=version,
        stage="production",
        results=(failed,),
        evaluated_at=datetime.now(UTC),
        actor="ada",
        break_glass=True,
    )


def gauges(found: kpis.Kpis) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    series = {(name, tuple(sorted(labels.items()))): value for name, _, labels, value in found.gauges()}
    assert len(series) == len(found.gauges()), "every series is emitted once"
    assert all(math.isfinite(v) for v in series.values())
    return series


def names(found: kpis.Kpis) -> set[str]:
    return {name for name, *_ in found.gauges()}


# -- parse_since ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text_", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        (" 7D ", timedelta(days=7)),
        ("45s", timedelta(seconds=45)),
        ("1.5d", timedelta(hours=36)),
    ],
)
def test_a_duration_is_a_number_and_a_unit(text_: str, expected: timedelta) -> None:
    assert parse_duration(text_, unit_required=True) == expected.total_seconds()


@pytest.mark.parametrize("text_", ["", "30", "d", "-1d", "0d", "0.0h", "30 days", "3y", "d30", "1e3s"])
def test_anything_else_is_refused_naming_value_and_form(text_: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_duration(text_, unit_required=True)
    assert repr(text_) in caught.value.message and "30d" in caught.value.message


def test_a_bare_number_is_seconds_where_no_unit_is_required() -> None:
    assert parse_duration("30") == 30.0 and parse_duration("2.5") == 2.5 and parse_duration("5m") == 300.0
    with pytest.raises(InvalidSpec, match="a bare number is seconds"):
        parse_duration("soon")


def test_percentile_interpolates_between_ranks() -> None:
    assert kpis.percentile([], 0.9) is None
    assert kpis.percentile([5.0], 0.9) == 5.0
    assert kpis.percentile([1.0, 2.0, 4.0], 0.9) == pytest.approx(3.6)


# -- compute -------------------------------------------------------------------


def test_an_empty_store_leaves_undefined_figures_out(store: Store) -> None:
    found = kpis.compute(store, since=T0, now=T0 + timedelta(days=30))
    assert (found.deployments, found.deployment_frequency_per_day, found.changes, found.open_alerts) == (0, 0.0, 0, 0)
    assert found.change_failure_rate is None and found.lead_time.median is None and found.restore_time.p90 is None
    assert found.audit_chain_valid and found.audit_events == 0
    assert found.production_versions == 0 and found.evidence_complete_share is None and found.approved_share is None
    data = found.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["delivery"]["change_failure_rate"] is None and data["since"] == T0.isoformat()
    assert data["window_seconds"] == 30 * DAY
    present = names(found)
    assert {"shipyard_kpi_audit_chain_valid", "shipyard_kpi_deployments_per_second", "shipyard_kpi_open_alerts"} <= present
    undefined = {
        "shipyard_kpi_lead_time_median_seconds",
        "shipyard_kpi_lead_time_p90_seconds",
        "shipyard_kpi_change_failure_rate",
        "shipyard_kpi_time_to_restore_median_seconds",
        "shipyard_kpi_time_to_restore_p90_seconds",
        "shipyard_kpi_production_evidence_complete_ratio",
        "shipyard_kpi_production_lineage_ratio",
        "shipyard_kpi_production_approved_ratio",
        "shipyard_kpi_deployments",
    }
    assert not present & undefined
    assert gauges(found)[("shipyard_kpi_audit_chain_valid", ())] == 1.0


def test_a_window_must_end_after_it_starts(store: Store) -> None:
    with pytest.raises(InvalidSpec, match="not before its end"):
        kpis.compute(store, since=T0, now=T0)


def test_deployments_lead_times_and_governance_shares(store: Store, clock: Clock) -> None:
    # churn/1: registered at T0, in production at T0+2d (lead 2d), approved, full evidence.
    register(store, 1, evidence=COMPLETE)
    clock.set(timedelta(hours=1))
    move(store, 1, Stage.STAGING)
    approve(store, 1)
    clock.set(timedelta(days=2))
    move(store, 1, Stage.PRODUCTION)
    # fraud/1: registered at T0+4d, in production at T0+5d (lead 1d), approved, full evidence.
    clock.set(timedelta(days=4))
    register(store, 1, model="fraud", evidence=COMPLETE)
    move(store, 1, Stage.STAGING, model="fraud")
    approve(store, 1, model="fraud")
    clock.set(timedelta(days=5))
    move(store, 1, Stage.PRODUCTION, model="fraud")
    # churn/2: registered at T0+3d without commit or evidence, forced into production at T0+7d (lead 4d).
    clock.set(timedelta(days=3))
    register(store, 2, git_commit=None)
    move(store, 2, Stage.STAGING)
    approve(store, 2, actor="vera")
    approve(store, 2, actor="walt", decision="reject")
    clock.set(timedelta(days=7))
    store.transition(
        actor="ada",
        model="churn",
        version=2,
        to=Stage.PRODUCTION,
        reason="hotfix",
        gate=break_glass_gate("churn", 2),
        break_glass=True,
    )

    commits = {"c0ffee": T0 - timedelta(days=1)}
    found = kpis.compute(store, since=T0 + timedelta(days=1), now=T0 + timedelta(days=10), commit_time=commits.get)

    assert found.deployments == 3 and found.deployments_by_model == {"churn": 2, "fraud": 1}
    assert found.deployment_frequency_per_day == pytest.approx(3 / 9)
    assert found.lead_time.count == 3
    assert found.lead_time.median == pytest.approx(2 * DAY)  # of 1d, 2d, 4d
    assert found.lead_time.p90 == pytest.approx(3.6 * DAY)
    # Commit c0ffee at T0-1d: churn/1 deployed 3d later, fraud/1 6d later; churn/2 has no commit.
    assert found.commit_lead_time.count == 2 and found.commit_lead_time.median == pytest.approx(4.5 * DAY)
    assert (found.changes, found.failed_changes, found.rollbacks, found.change_failure_rate) == (3, 0, 0, 0.0)
    # Production now: churn/2 (no evidence, no commit, rejected by walt) and fraud/1 (all in order).
    assert found.production_versions == 2
    assert found.incomplete_evidence == found.missing_lineage == found.unapproved == ("churn/2",)
    assert found.evidence_complete_share == found.lineage_share == found.approved_share == 0.5
    assert found.break_glass_promotions == 1
    assert found.audit_chain_valid and found.audit_events == len(store.audit_events())

    series = gauges(found)
    assert series[("shipyard_kpi_deployments", (("model", "churn"),))] == 2
    assert series[("shipyard_kpi_lead_time_median_seconds", (("from", "registration"),))] == pytest.approx(2 * DAY)
    assert series[("shipyard_kpi_lead_time_p90_seconds", (("from", "commit"),))] == pytest.approx(5.7 * DAY)
    # base units: a frequency per second, not per day; no `quantile` label on a gauge
    assert series[("shipyard_kpi_deployments_per_second", ())] == pytest.approx(found.deployment_frequency_per_day / DAY)
    assert not any("quantile" in labels for _, _, labels, _ in found.gauges())
    assert series[("shipyard_kpi_audit_events_total", ())] == found.audit_events
    assert series[("shipyard_kpi_production_approved_ratio", ())] == 0.5
    assert series[("shipyard_kpi_break_glass_promotions", ())] == 1
    helps = {name: help_text for name, help_text, _, _ in found.gauges()}
    assert all(helps.values())
    json.dumps(found.to_dict(), allow_nan=False)

    # A later window leaves out churn/1's deployment, and without a commit lookup there is no commit lead time.
    later = kpis.compute(store, since=T0 + timedelta(days=3), now=T0 + timedelta(days=10))
    assert later.deployments_by_model == {"churn": 1, "fraud": 1} and later.commit_lead_time.count == 0
    assert ("shipyard_kpi_lead_time_median_seconds", (("from", "commit"),)) not in gauges(later)
    # A window that ends before the break-glass move does not see it, nor churn/2's deployment.
    earlier = kpis.compute(store, since=T0, now=T0 + timedelta(days=6))
    assert earlier.deployments == 2 and earlier.break_glass_promotions == 0


def test_rolled_back_rollouts_and_rolled_back_deployments_are_failed_changes(store: Store, clock: Clock) -> None:
    for version in (1, 2, 3, 4):
        register(store, version)
        move(store, version, Stage.STAGING)
    clock.set(timedelta(days=1))
    move(store, 1, Stage.PRODUCTION)  # a change that held: the next deployment is no rollback
    clock.set(timedelta(days=2))
    store.start_rollout(
        actor="rui",
        model="churn",
        version=2,
        strategy="canary",
        steps=[10.0, 100.0],
        interval_seconds=60.0,
        checks={},
        failure_limit=2,
        gate=None,
    )
    clock.set(timedelta(days=2, hours=1))
    rolled_back = store.advance_rollout(actor="shipyard.rollout", model="churn", action="rollback")
    assert rolled_back.state == "rolled_back"
    clock.set(timedelta(days=3))
    move(store, 3, Stage.PRODUCTION)  # a failed change: the automated rollback replaced it
    clock.set(timedelta(days=4))
    move(store, 1, Stage.PRODUCTION, reason="rollback: alert 1: error_rate")
    clock.set(timedelta(days=5))
    store.start_rollout(
        actor="rui",
        model="churn",
        version=4,
        strategy="canary",
        steps=[50.0, 100.0],
        interval_seconds=60.0,
        checks={},
        failure_limit=2,
        gate=None,
    )
    clock.set(timedelta(days=5, hours=2))
    promoted = store.advance_rollout(actor="shipyard.rollout", model="churn", action="promote")
    assert promoted.state == "promoted" and promoted.finished_at is not None

    found = kpis.compute(store, since=T0 + timedelta(hours=12), now=T0 + timedelta(days=6))
    # Production moves: 1 (T0+1d), 3 (T0+3d), 1 again (rollback, T0+4d), 4 (rollout, T0+5d2h).
    assert (found.deployments, found.rollbacks, found.failed_rollouts) == (4, 1, 1)
    assert (found.changes, found.failed_changes) == (4, 2)  # three deployments and the rolled-back rollout
    assert found.change_failure_rate == pytest.approx(0.5)
    assert found.lead_time.count == 3  # the rollback is no delivery
    assert found.lead_time.median == pytest.approx(3 * DAY)  # of 1d, 3d, 5d2h
    assert gauges(found)[("shipyard_kpi_change_failure_rate", ())] == pytest.approx(0.5)
    assert found.rollout_time.count == 1 and found.rollout_time.median == pytest.approx(2 * 3600)  # started 5d, full traffic 5d2h
    # The rollout ended before this window, and churn/3's rollback lies after its end.
    narrow = kpis.compute(store, since=T0 + timedelta(days=2, hours=12), now=T0 + timedelta(days=3, hours=12))
    assert (narrow.deployments, narrow.changes, narrow.failed_changes, narrow.failed_rollouts) == (1, 1, 0, 0)


def test_time_to_restore_counts_only_restores(store: Store, clock: Clock) -> None:
    """An alert that clears by itself restored nothing; a rollback while an alert is open did."""
    for version in (1, 2):
        register(store, version)
        move(store, version, Stage.STAGING)
        move(store, version, Stage.PRODUCTION)

    def monitor(*readings: SignalReading) -> None:
        store.record_monitor_run(
            actor="shipyard.monitor",
            model="churn",
            version=2,
            window=(None, None),
            rows=100,
            dataset_drift=False,
            report={},
            readings=list(readings),
        )

    def reading(signal: str, fired: bool) -> SignalReading:
        return SignalReading(signal=signal, observed=0.3 if fired else 0.01, threshold=0.1, fired=fired, action="none")

    clock.set(timedelta(hours=1))
    monitor(reading("prediction_drift", True))
    clock.set(timedelta(hours=2))
    monitor(reading("prediction_drift", False), reading("error_rate", True))  # the drift passed; errors began
    found = kpis.compute(store, since=T0, now=T0 + timedelta(hours=2, minutes=30))
    assert found.restore_time.count == 0 and found.open_alerts == 1  # a drift that passed restored nothing
    clock.set(timedelta(hours=5))
    move(store, 1, Stage.PRODUCTION, reason="rollback: errors")  # back to the previous champion

    found = kpis.compute(store, since=T0, now=T0 + timedelta(days=1))
    assert found.restore_time.count == 1 and found.restore_time.median == found.restore_time.p90 == 3 * 3600
    series = gauges(found)
    assert series[("shipyard_kpi_time_to_restore_median_seconds", ())] == 3 * 3600
    assert found.to_dict()["delivery"]["time_to_restore"] == {"count": 1, "median_seconds": 10800.0, "p90_seconds": 10800.0}
    # The restore happened after this window ended: not counted.
    assert kpis.compute(store, since=T0, now=T0 + timedelta(hours=4)).restore_time.count == 0


def test_a_tampered_audit_chain_is_flagged(store: Store) -> None:
    register(store, 1)
    now = datetime.now(UTC)
    assert kpis.compute(store, since=now - timedelta(days=1), now=now + timedelta(minutes=1)).audit_chain_valid
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1"))
    found = kpis.compute(store, since=now - timedelta(days=1), now=now + timedelta(minutes=1))
    assert not found.audit_chain_valid and "edited" in (found.audit_problem or "")
    assert gauges(found)[("shipyard_kpi_audit_chain_valid", ())] == 0.0
    assert found.to_dict()["governance"]["audit_chain_valid"] is False
