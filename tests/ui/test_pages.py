"""The UI's pages and forms over plain HTTP against a real server: what they show, what they refuse, and that
user text stays text."""

from __future__ import annotations

import pytest

from server.conftest import Team
from shipyard.domain.stages import Stage
from ui.helpers import browser_for, hidden, log_in

HOSTILE = '<script>alert("owned")</script><img src=x onerror=alert(1)>'


def blocked_for_approval(team: Team) -> None:
    """churn/1 in staging, then refused at the production gate for want of an approval (the report is stored)."""
    rui = team.service.as_actor("rui")
    rui.promote("churn", 1, "staging", reason=HOSTILE)
    with pytest.raises(Exception, match="may not enter production"):
        rui.promote("churn", 1, "production", reason="go")


def test_every_page_renders_for_a_viewer(team: Team) -> None:
    blocked_for_approval(team)
    with browser_for(team.url) as browser:
        log_in(browser, team.tokens["val"])
        overview = browser.get("/ui/")
        model = browser.get("/ui/models/churn")
        staging = browser.get("/ui/models/churn", params={"stage": "staging"})
        version = browser.get("/ui/models/churn/versions/1")
        audit = browser.get("/ui/audit", params={"action": "gate"})
        trace = browser.get("/ui/trace", params={"request_id": "no-such-request"})
        unknown_model = browser.get("/ui/models/nope")
        bad_stage = browser.get("/ui/models/churn", params={"stage": "heaven"})
    assert overview.status_code == 200 and 'href="/ui/models/churn"' in overview.text and "Deployments" in overview.text
    assert model.status_code == 200 and model.text.count("data-version=") == 2
    assert staging.text.count("data-version=") == 1 and 'data-version="1"' in staging.text
    assert version.status_code == 200
    for section in ("Holdout metrics", "By contract_type", "Fairness", "Data validation", "Robustness", "Lineage", "Artifacts"):
        assert section in version.text, section
    assert 'data-rule="approvals" data-outcome="failed"' in version.text and "≥ 1 approval by approver" in version.text
    assert 'data-testid="approve-production" disabled aria-describedby="approve-production-why"' in version.text
    assert "val may not approve churn/1 for production" in version.text
    assert audit.status_code == 200 and audit.text.count('data-action="gate.evaluated"') == 2
    assert 'data-ok="yes"' in audit.text
    assert trace.status_code == 404 and "no prediction with request id" in trace.text
    assert unknown_model.status_code == 404 and "unknown model" in unknown_model.text
    assert bad_stage.status_code == 422 and "unknown stage" in bad_stage.text


def test_user_text_is_shown_as_text(team: Team) -> None:
    blocked_for_approval(team)  # the promotion's reason is hostile markup
    team.service.as_actor("vera").approve("churn", 1, "production", comment=HOSTILE)
    with browser_for(team.url) as browser:
        log_in(browser, team.tokens["val"])
        pages = [browser.get("/ui/models/churn/versions/1").text, browser.get("/ui/audit").text]
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in page


def test_approve_by_form_then_the_gate_passes(team: Team) -> None:
    blocked_for_approval(team)
    with browser_for(team.url) as browser:
        log_in(browser, team.tokens["vera"])
        page = browser.get("/ui/models/churn/versions/1")
        done = browser.post(
            "/ui/models/churn/versions/1/approvals",
            data={"csrf": hidden(page.text, "csrf"), "stage": "production", "decision": "approve", "comment": "evidence read"},
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/ui/models/churn/versions/1?done=approve&stage=production&gate=production#gates"
        after = browser.get(done.headers["location"])
    assert "Your approval for production is recorded." in after.text
    live = after.text.split('data-testid="live-gate"')[1].split('data-testid="gate-report"')[0]
    assert 'data-passed="yes"' in live and 'data-rule="approvals" data-outcome="passed"' in live
    [approval] = team.service.approvals("churn", 1)
    assert (approval.actor, approval.decision, approval.comment) == ("vera", "approve", "evidence read")


def test_a_refused_form_shows_the_services_refusal_with_its_status(team: Team) -> None:
    blocked_for_approval(team)
    with browser_for(team.url) as browser:
        log_in(browser, team.tokens["rui"])
        csrf = hidden(browser.get("/ui/models/churn/versions/1").text, "csrf")
        gate = browser.post("/ui/models/churn/versions/1/promote", data={"csrf": csrf, "to": "production", "reason": "go"})
        stage_machine = browser.post(
            "/ui/models/churn/versions/2/promote", data={"csrf": csrf, "to": "production", "reason": "r"}
        )
        no_role = browser.post("/ui/models/churn/versions/1/approvals", data={"csrf": csrf, "stage": "production"})
    assert gate.status_code == 409 and "may not enter production: 1 blocking rule failed" in gate.text
    assert "- approvals (approver): observed 0; expected ≥ 1 approval" in gate.text
    assert stage_machine.status_code == 409 and "cannot move from candidate to production" in stage_machine.text
    assert no_role.status_code == 403 and "rui may not approve churn/1 for production" in no_role.text
    assert team.service.version("churn", 1).stage is Stage.STAGING
    denied = [e for e in team.service.audit_log() if e.action == "approval.denied"]
    assert denied[-1].actor == "rui"


def test_a_post_without_the_csrf_token_changes_nothing(team: Team) -> None:
    with browser_for(team.url) as browser:
        log_in(browser, team.tokens["rui"])
        forged = browser.post("/ui/models/churn/versions/1/promote", data={"to": "staging", "reason": "forged"})
        wrong = browser.post("/ui/models/churn/versions/1/promote", data={"to": "staging", "reason": "r", "csrf": "0" * 64})
    for response in (forged, wrong):
        assert response.status_code == 403 and "no valid CSRF token" in response.text
    assert team.service.version("churn", 1).stage is Stage.CANDIDATE
    denied = [e for e in team.service.audit_log() if e.action == "csrf.denied"]
    assert [(e.actor, e.subject) for e in denied] == [("rui", "/models/churn/versions/1/promote")] * 2


def test_a_partial_update_after_the_session_ended_reloads_the_page(team: Team) -> None:
    with browser_for(team.url) as browser:
        browser.cookies.set("shipyard_session", "stale")
        partial = browser.get("/ui/models/churn", params={"stage": "staging"}, headers={"hx-request": "true"})
    assert partial.status_code == 401 and partial.headers["hx-refresh"] == "true"


def test_a_bug_is_a_page_naming_no_detail(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug cannot be produced on purpose, so one is planted: the service's model listing raises."""
    from shipyard.service import Shipyard

    def broken(self: Shipyard) -> list[object]:
        raise RuntimeError("planted")

    monkeypatch.setattr(Shipyard, "models", broken)
    with browser_for(team.url) as browser:
        log_in(browser, team.tokens["val"])
        page = browser.get("/ui/")
    assert page.status_code == 500 and "planted" not in page.text and "bug in Shipyard" in page.text


def test_the_overview_draws_each_figure_over_five_day_windows(team: Team) -> None:
    """The KPI tiles carry their trend: the windows split the thirty days, so their deployments add up to the tile's."""
    import json
    import re

    rui, vera = team.service.as_actor("rui"), team.service.as_actor("vera")
    rui.promote("churn", 1, "staging", reason="ready")
    vera.approve("churn", 1, "production", comment="ok")
    rui.promote("churn", 1, "production", reason="ship")
    with browser_for(team.url) as browser:
        log_in(browser, team.tokens["val"])
        overview = browser.get("/ui/").text
    found = re.search(r'data-testid="trend-deployments" data-values="([^"]*)"', overview)
    assert found is not None, overview[:2000]
    values = json.loads(found.group(1).replace("&#34;", '"'))
    assert len(values) == 6 and sum(values) == 1 and values[-1] == 1  # the one deployment, in the newest window
    assert "Deployments in each five-day window of the last 30 days, oldest first: 0, 0, 0, 0, 0, 1" in overview
    approved = re.search(r'data-testid="trend-approved" data-values="([^"]*)"', overview)
    assert approved is not None and json.loads(approved.group(1).replace("&#34;", '"'))[-1] == 1.0
    assert "<polyline" in overview
