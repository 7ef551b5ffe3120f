"""The monitoring page: monitor runs, each feature's statistics, and charts of the reference against the live
window drawn in a real browser — asserted on the data the drawn Vega view holds and the bars it rendered."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from server.conftest import Team
from shipyard.domain.errors import NotFound
from shipyard.predlog import PredictionLog
from ui.helpers import browser_for, log_in

if TYPE_CHECKING:
    from playwright.sync_api import Page


def champion(team: Team, version: int = 1) -> None:
    rui, vera = team.service.as_actor("rui"), team.service.as_actor("vera")
    rui.promote("churn", version, "staging", reason="ready")
    vera.approve("churn", version, "production", comment="fine")
    rui.promote("churn", version, "production", reason="approved")


def traffic(team: Team, version: int, *, rows: int, shifted: bool, seed: int = 5) -> None:
    """Log ``rows`` answered requests as the gateway would, scored by the real model."""
    from shipyard.examples.churn.generator import generate

    knobs: dict[str, Any] = {"price_rise": 0.3, "month_to_month_share": 0.85} if shifted else {}
    frame = generate(rows, seed=seed, **knobs)
    features = frame.drop(columns=["customer_id", "signup_date", "churned"])
    model = team.service.registry.load_sklearn(team.service.store.get_version("churn", version).source)
    scores = model.predict_proba(features)[:, 1]
    with PredictionLog(team.root / ".shipyard" / "predictions") as log:
        log.append(
            model="churn",
            version=version,
            request_ids=[f"req-{seed}-{i}" for i in range(rows)],
            received_at=[time.time()] * rows,
            routing=["champion"] * rows,
            features={c: features[c].tolist() for c in features.columns},
            predictions=(scores >= 0.5).astype(int),
            scores=scores,
            latency_ms=[2.0] * rows,
            status=[200] * rows,
        )


@pytest.fixture
def monitored(team: Team) -> Team:
    """churn/1 in production, 600 shifted requests logged, one monitor run over them (its alerts not acted on)."""
    champion(team)
    traffic(team, 1, rows=600, shifted=True)
    team.service.as_actor("rui").monitor("churn", last=600, act=False)
    return team


def test_a_drift_view_is_the_runs_window_against_the_reference(monitored: Team) -> None:
    service = monitored.service
    [run] = service.monitor_runs("churn")
    features = run.report["drift"]["features"]
    for name in ("monthly_charges", "contract_type"):
        view = service.drift_view("churn", name)
        assert (view.run, view.version) == (run.id, 1)
        assert view.live_rows == features[name]["rows"] == 600  # the very rows the run compared
        assert sum(b.live_count for b in view.bins) == 600
        assert sum(b.reference for b in view.bins) == pytest.approx(1.0) and sum(b.live for b in view.bins) == pytest.approx(1.0)
    contract = service.drift_view("churn", "contract_type")
    assert contract.kind == "categorical" and contract.bins[0].label == "month-to-month"
    assert contract.bins[0].live > contract.bins[0].reference + 0.2  # the injected shift, seen bar by bar
    score = service.drift_view("churn")
    assert score.kind == "numeric" and score.feature is None and score.live_rows == 600
    with pytest.raises(NotFound, match="has no feature 'shoe_size'"):
        service.drift_view("churn", "shoe_size")
    with pytest.raises(NotFound, match="no monitor run 999"):
        service.drift_view("churn", "contract_type", run=999)


def test_no_monitor_run_yet_is_said_on_the_page(team: Team) -> None:
    with pytest.raises(NotFound, match="churn has no monitor run yet"):
        team.service.drift_view("churn", "contract_type")
    with browser_for(team.url) as browser:
        log_in(browser, team.tokens["val"])
        shown = browser.get("/ui/models/churn/monitoring")
        unknown = browser.get("/ui/models/nope/monitoring")
    assert shown.status_code == 200 and "No monitor run yet" in shown.text
    assert unknown.status_code == 404


def drawn(page: Page, chart: str, feature: str) -> list[dict[str, Any]]:
    """The rows the drawn Vega view holds for the chart of ``feature`` (its data set 'drift')."""
    # This feature's chart, not the one htmx is replacing (which may show the same feature: see `stale`).
    figure = page.locator(f'figure[data-testid="{chart}"][data-feature="{feature}"]:not([data-stale])')
    figure.locator('[data-drawn="yes"]').wait_for()
    return list(page.evaluate(f"window.shipyardCharts[{chart!r}].data('drift')"))


def test_the_drift_chart_draws_the_reference_and_the_live_window(monitored: Team, page: Page, screenshot: Any) -> None:
    page.goto(f"{monitored.url}/ui/")
    page.get_by_label("Your API token").fill(monitored.tokens["val"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{monitored.url}/ui/")
    page.get_by_role("link", name="monitoring").first.click()
    page.wait_for_url("**/ui/models/churn/monitoring")
    [run] = monitored.service.monitor_runs("churn")
    assert page.locator(f'tr[data-run="{run.id}"]').count() == 1
    drifted = page.locator('[data-testid="features"] tr[data-verdict="drift"]:not([data-score])')
    assert drifted.count() == len(run.report["drift"]["drifted"]) >= 1
    first = drifted.first.get_attribute("data-feature")
    score_verdict = "drift" if run.report["drift"]["score"]["drifted"] else "no drift"
    assert page.locator('tr[data-score="yes"]').get_attribute("data-verdict") == score_verdict

    assert first is not None
    rows = drawn(page, "chart-feature", first)
    view = monitored.service.drift_view("churn", first)
    assert {r["series"] for r in rows} == {"reference", "live"}
    live = {r["bin"]: r["share"] for r in rows if r["series"] == "live"}
    reference = {r["bin"]: r["share"] for r in rows if r["series"] == "reference"}
    assert live == pytest.approx({b.label: b.live for b in view.bins})
    assert reference == pytest.approx({b.label: b.reference for b in view.bins})
    bars = page.locator('[data-chart-name="chart-feature"] svg .mark-rect path')
    assert bars.count() == len(rows) == 2 * len(view.bins)
    assert len(drawn(page, "chart-score", "score")) == 2 * len(monitored.service.drift_view("churn").bins)
    screenshot(page, "monitoring")

    page.evaluate("window.shipyardMarker = 3")  # gone if the page were loaded anew
    # The chart shown may already be contract_type's (the first drifted feature): mark it, so `drawn` waits for
    # the one the click brings, not the one it replaces.
    page.evaluate("document.querySelectorAll('figure[data-testid=chart-feature]').forEach(f => f.dataset.stale = 'yes')")
    page.get_by_test_id("show-contract_type").click()
    rows = drawn(page, "chart-feature", "contract_type")
    bars_by_series = {s: {r["bin"]: r["share"] for r in rows if r["series"] == s} for s in ("reference", "live")}
    assert bars_by_series["live"]["month-to-month"] > bars_by_series["reference"]["month-to-month"] + 0.2
    bars = page.locator('[data-chart-name="chart-feature"] svg .mark-rect path')
    assert bars.count() == len(rows), page.locator("#feature-chart").inner_html()[:3000]
    assert "month-to-month; share of rows: 87%; series: live" in bars.nth(1).get_attribute("aria-label")
    assert page.evaluate("window.shipyardMarker") == 3
    screenshot(page, "monitoring-category")
