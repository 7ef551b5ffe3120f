"""The rollout page: it follows the rollout by itself (htmx polling every 2 s) and steers it through the service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from server.conftest import Team
from ui.helpers import browser_for, hidden, log_in

if TYPE_CHECKING:
    from playwright.sync_api import Page


def rolling_out(team: Team) -> None:
    """churn/1 the approved champion, churn/2 approved and rolling out by canary from 5%."""
    rui, vera = team.service.as_actor("rui"), team.service.as_actor("vera")
    rui.promote("churn", 1, "staging", reason="ready")
    vera.approve("churn", 1, "production", comment="fine")
    rui.promote("churn", 1, "production", reason="approved")
    rui.promote("churn", 2, "staging", reason="next")
    vera.approve("churn", 2, "production", comment="fine")
    rui.start_rollout("churn", 2)


def test_the_rollout_page_shows_the_step_and_refuses_whom_the_service_refuses(team: Team) -> None:
    with browser_for(team.url) as browser:
        log_in(browser, team.tokens["val"])
        nothing = browser.get("/ui/models/churn/rollout")
        rolling_out(team)
        page = browser.get("/ui/models/churn/rollout")
        csrf = hidden(page.text, "csrf")
        refused = browser.post("/ui/models/churn/rollout/abort", data={"csrf": csrf, "reason": "viewer"})
        forged = browser.post("/ui/models/churn/rollout/abort", data={"reason": "no token"})
    assert nothing.status_code == 200 and "has never been rolled out" in nothing.text
    assert page.status_code == 200 and 'data-state="running"' in page.text and 'data-weight="0.05"' in page.text
    assert 'hx-trigger="every 2s"' in page.text and "step 1 of 4" in page.text
    assert 'data-check="challenger requests"' in page.text  # judged live: waiting for traffic
    assert 'class="danger" disabled aria-describedby="rollout-abort-why"' in page.text
    assert "val may not abort the rollout of churn" in page.text
    assert refused.status_code == 403 and "val may not abort the rollout of churn" in refused.text
    assert forged.status_code == 403 and "CSRF" in forged.text
    status, _ = team.service.rollout_status("churn", judge=False)
    assert status is not None and status.state == "running"
    assert [e.actor for e in team.service.audit_log() if e.action == "promote.denied"] == ["val"]


def test_the_page_follows_the_rollout_by_itself_and_steers_it(team: Team, page: Page, screenshot: Any) -> None:
    rolling_out(team)
    page.goto(f"{team.url}/ui/")
    page.get_by_label("Your API token").fill(team.tokens["rui"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{team.url}/ui/")
    page.goto(f"{team.url}/ui/models/churn/rollout")
    live = page.get_by_test_id("live")
    assert live.get_attribute("data-state") == "running" and live.get_attribute("data-weight") == "0.05"
    screenshot(page, "rollout")
    page.evaluate("window.shipyardMarker = 7")  # gone if the page were loaded anew
    with team.client("ada") as other:
        other.post("/api/v1/models/churn/rollout/pause", json={"reason": "someone else"}).raise_for_status()
    page.wait_for_selector('[data-testid="live"][data-state="paused"]', timeout=15_000)  # polled, not reloaded
    assert page.evaluate("window.shipyardMarker") == 7
    assert "someone else" in page.get_by_test_id("history").inner_text()

    page.get_by_test_id("reason").fill("enough for today")
    page.get_by_test_id("rollout-abort").click()
    page.wait_for_url("**/ui/models/churn/rollout?done=abort")
    live = page.get_by_test_id("live")
    assert live.get_attribute("data-state") == "aborted" and live.get_attribute("data-weight") == "0.0"
    assert live.get_attribute("hx-trigger") is None  # a finished rollout is not polled
    assert "enough for today" in page.get_by_test_id("history").inner_text()
    status, _ = team.service.rollout_status("churn", judge=False)
    assert status is not None and status.state == "aborted"
