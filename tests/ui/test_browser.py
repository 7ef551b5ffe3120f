"""The UI in a real browser (Debian's Chromium through Playwright) against a real server on a loopback port:
an approver approves a blocked version, the registrant cannot, a revoked token's session ends, and every page
is photographed for a reviewer (under the test's tmp_path, and in $SHIPYARD_SCREENSHOTS when set)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from server.conftest import Team
from shipyard.domain.errors import GateBlocked
from shipyard.domain.stages import Stage

if TYPE_CHECKING:
    from playwright.sync_api import Page


def blocked_for_approval(team: Team) -> None:
    """churn/1 in staging, then refused at the production gate for want of an approval (the report is stored)."""
    rui = team.service.as_actor("rui")
    rui.promote("churn", 1, "staging", reason="ready for review")
    with pytest.raises(GateBlocked, match="1 blocking rule failed"):
        rui.promote("churn", 1, "production", reason="go")


def log_in(page: Page, team: Team, secret: str) -> None:
    page.goto(f"{team.url}/ui/")
    page.get_by_label("Your API token").fill(secret)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{team.url}/ui/")


def rule(page: Page, report: str, kind: str) -> Any:
    return page.locator(f'[data-testid="{report}"]').first.locator(f'tr[data-rule="{kind}"]')


def test_the_approver_approves_the_blocked_version_and_the_gate_passes(team: Team, page: Page, screenshot: Any) -> None:
    blocked_for_approval(team)
    log_in(page, team, team.tokens["vera"])
    assert page.get_by_test_id("viewer").inner_text() == "vera"
    screenshot(page, "overview")
    page.get_by_role("link", name="churn", exact=True).click()
    page.get_by_role("link", name="v1", exact=True).click()
    page.wait_for_url(f"{team.url}/ui/models/churn/versions/1")

    approvals = rule(page, "gate-report", "approvals")  # the newest stored report: production, blocked
    assert approvals.get_attribute("data-outcome") == "failed"
    assert approvals.locator("td.observed").inner_text().strip() == "0"
    assert "≥ 1 approval by approver, not the registrant or trainer" in approvals.locator("td.expected").inner_text()
    screenshot(page, "version-blocked")

    page.get_by_test_id("comment-production").fill("Evidence read: AUC 0.84, fairness within bounds.")
    page.get_by_test_id("approve-production").click()
    page.wait_for_url("**/versions/1?done=approve*")
    assert page.get_by_test_id("done").inner_text() == "Your approval for production is recorded."
    live = page.get_by_test_id("live-gate").locator("section.gate")
    assert live.get_attribute("data-passed") == "yes" and live.get_attribute("data-stage") == "production"
    assert rule(page, "live-gate", "approvals").get_attribute("data-outcome") == "passed"
    assert "Evidence read: AUC 0.84" in page.get_by_test_id("approvals").inner_text()
    screenshot(page, "version-approved")
    [approval] = team.service.approvals("churn", 1)
    assert (approval.actor, approval.decision) == ("vera", "approve")


def test_the_registrant_cannot_approve_and_a_forged_post_is_refused(team: Team, page: Page, screenshot: Any) -> None:
    blocked_for_approval(team)
    with team.client("ada") as ada:  # alice registered both versions; now she holds the approver role too
        ada.put("/api/v1/principals/alice", json={"roles": ["scientist", "deployer", "approver"]}).raise_for_status()
    log_in(page, team, team.token_for("alice"))
    page.goto(f"{team.url}/ui/models/churn/versions/1")
    approve = page.get_by_test_id("approve-production")
    assert approve.is_disabled() and page.get_by_test_id("reject-production").is_enabled()
    why = page.get_by_test_id("approve-production-why").inner_text()
    assert why == "separation of duties: alice registered this version and so may not approve it for production"
    screenshot(page, "version-registrant")

    events = len(team.service.audit_log())
    url = f"{team.url}/ui/models/churn/versions/1/approvals"
    csrf = page.locator('form[data-testid="sign-off-production"] input[name="csrf"]').get_attribute("value")
    form = {"csrf": csrf or "", "stage": "production", "decision": "approve", "comment": "my own work"}
    forged = page.request.post(url, form=form)  # her own session cookie and CSRF token: only the service stands in the way
    assert forged.status == 403 and "separation of duties: alice registered this version" in forged.text()
    without_csrf = page.request.post(url, form={k: v for k, v in form.items() if k != "csrf"})
    assert without_csrf.status == 403 and "no valid CSRF token" in without_csrf.text()

    added = team.service.audit_log()[events:]
    assert [(e.action, e.actor) for e in added] == [("approval.denied", "alice"), ("csrf.denied", "alice")]
    assert added[0].details["asked"] == "approve churn/1 for production"
    assert team.service.approvals("churn", 1) == [] and team.service.version("churn", 1).stage is Stage.STAGING


def test_a_revoked_tokens_session_ends_at_the_next_page(team: Team, page: Page, screenshot: Any) -> None:
    _, secret = team.service.as_actor("ada").create_token("val-browser", principal="val")
    log_in(page, team, secret)
    page.goto(f"{team.url}/ui/models/churn")
    assert page.get_by_test_id("viewer").inner_text() == "val"
    with team.client("ada") as ada:
        ada.delete("/api/v1/tokens/val-browser").raise_for_status()
    response = page.goto(f"{team.url}/ui/models/churn/versions/2")
    assert response is not None and response.status == 401
    assert page.get_by_label("Your API token").is_visible()
    assert "token val-browser was revoked" in page.get_by_test_id("login-reason").inner_text()
    screenshot(page, "login-after-revocation")
    assert "shipyard_session" not in {cookie["name"] for cookie in page.context.cookies()}  # the server cleared it


def test_every_page_for_a_reviewer_and_the_stage_filter_without_a_reload(team: Team, page: Page, screenshot: Any) -> None:
    blocked_for_approval(team)
    page.goto(f"{team.url}/ui/")
    screenshot(page, "login")
    log_in(page, team, team.tokens["rui"])
    page.goto(f"{team.url}/ui/models/churn")
    page.evaluate("window.shipyardMarker = 42")  # gone if the page were loaded anew
    page.get_by_test_id("stage-filter").select_option("staging")
    page.wait_for_url("**/ui/models/churn?stage=staging")
    assert page.locator("tr[data-version]").count() == 1 and page.evaluate("window.shipyardMarker") == 42
    screenshot(page, "model")
    page.goto(f"{team.url}/ui/models/churn/versions/2")
    screenshot(page, "version")
    page.goto(f"{team.url}/ui/audit")
    assert page.get_by_test_id("verification").get_attribute("data-ok") == "yes"
    page.get_by_test_id("filter-action").fill("gate")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/ui/audit?*action=gate*")
    assert page.locator('tr[data-action="gate.evaluated"]').count() == 2 and page.locator("tr[data-action]").count() == 2
    screenshot(page, "audit")
    page.goto(f"{team.url}/ui/trace")
    page.get_by_test_id("request-id").fill("a-request-nobody-sent")
    page.get_by_role("button", name="Trace").click()
    assert "no prediction with request id 'a-request-nobody-sent'" in page.locator("[role=alert]").inner_text()
    screenshot(page, "trace")
