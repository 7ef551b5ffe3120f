"""Every page scanned with axe-core (vendored for the tests: tests/ui/assets) in a real browser: no violation of
serious or critical impact. Each page is photographed as it is scanned, for a reviewer."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.conftest import Team
from ui.test_monitoring_page import traffic
from ui.test_rollout_page import rolling_out

if TYPE_CHECKING:
    from playwright.sync_api import Page

ASSETS = Path(__file__).parent / "assets"
AXE = ASSETS / "axe.min.js"


def test_the_vendored_axe_is_the_one_recorded() -> None:
    recorded = re.search(r"\| axe\.min\.js \|.*\| ([0-9a-f]{64}) \|", (ASSETS / "README.md").read_text())
    assert recorded is not None and hashlib.sha256(AXE.read_bytes()).hexdigest() == recorded[1]


def violations(page: Page) -> list[dict[str, Any]]:
    """axe's serious and critical violations on the page as it is now (axe is evaluated in the page, past its CSP)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    found = page.evaluate("axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)")
    return [
        {"rule": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def test_no_page_has_a_serious_or_critical_accessibility_violation(team: Team, page: Page, screenshot: Any) -> None:
    rolling_out(team)  # churn/1 the champion, churn/2 rolling out
    traffic(team, 1, rows=400, shifted=True)
    team.service.as_actor("rui").monitor("churn", last=400, act=False)
    found: dict[str, list[dict[str, Any]]] = {}

    page.goto(f"{team.url}/ui/")
    found["login"] = violations(page)
    screenshot(page, "a11y-login")
    page.get_by_label("Your API token").fill(team.tokens["vera"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{team.url}/ui/")
    pages = {
        "overview": "/ui/",
        "model": "/ui/models/churn",
        "version": "/ui/models/churn/versions/2?gate=production",
        "rollout": "/ui/models/churn/rollout",
        "monitoring": "/ui/models/churn/monitoring",
        "audit": "/ui/audit?action=promote",
        "trace": "/ui/trace?request_id=req-5-0",
        "trace-unknown": "/ui/trace?request_id=nobody-sent-this",
        "error": "/ui/models/nope",
    }
    for name, path in pages.items():
        page.goto(team.url + path)
        if name == "monitoring":
            page.locator('[data-chart-name="chart-feature"][data-drawn="yes"]').wait_for()
            page.locator('[data-chart-name="chart-score"][data-drawn="yes"]').wait_for()
        found[name] = violations(page)
        screenshot(page, f"a11y-{name}")
    assert {name: v for name, v in found.items() if v} == {}
    # The scan can fail: a button with no name on the last page is a critical violation it reports.
    page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<button type=button></button>')")
    assert [v["rule"] for v in violations(page)] == ["button-name"]
