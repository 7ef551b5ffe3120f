"""The rollout page under real traffic: opened once, it follows a canary from 25% to 50% to its promotion by
itself, while clients send predictions to a real gateway and the worker's controller (acting through the server's
hosted service, as team mode asks) moves the rollout on."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from server.conftest import Team, start_team
from serving.harness import Load, Server, customers, wait_for
from shipyard.worker import Worker

if TYPE_CHECKING:
    from playwright.sync_api import Page

STEPS = [25.0, 50.0, 100.0]
# Each step is judged after this many seconds of traffic: longer than the page's 2 s polling, so every step is
# on screen for at least one poll.
INTERVAL = 5.0
# Judged on a few hundred requests; the gateway shares this process (and its interpreter lock) with the load,
# the server and the browser's driver, so latency is allowed a wide margin: the challenger is the champion's twin.
CHECKS = {"min_requests": 60, "max_latency_factor": 20.0, "latency_slack_ms": 50.0}
TRAFFIC_SECONDS = 150.0  # the clients stop by themselves after this, whatever happens
DEADLINE_SECONDS = 120.0  # the page must show the promotion within this


@pytest.fixture
def team(trained_project: Path) -> Iterator[Team]:
    """The trained churn project in team mode; its worker's principal may drive rollouts."""
    config = trained_project / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["principals"]["shipyard.monitor"] = ["deployer"]
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    running = start_team(trained_project, env={})
    yield running
    running.server.stop()
    running.service.close()


def champion_and_candidate(team: Team) -> None:
    """churn/1 the champion; churn/2 approved for production, so it passes its production gate."""
    rui, vera = team.service.as_actor("rui"), team.service.as_actor("vera")
    rui.promote("churn", 1, "staging", reason="ready")
    vera.approve("churn", 1, "production", comment="fine")
    rui.promote("churn", 1, "production", reason="approved")
    rui.promote("churn", 2, "staging", reason="next")
    vera.approve("churn", 2, "production", comment="fine")


def shown(page: Page) -> tuple[str, str, str]:
    """What the page's live part shows now: the rollout's state, its challenger's weight and the weight as text."""
    live = page.get_by_test_id("live")
    state, weight = live.get_attribute("data-state") or "", live.get_attribute("data-weight") or ""
    return state, weight, page.get_by_test_id("weight").inner_text()


def test_the_page_follows_a_canary_to_its_promotion_while_traffic_flows(team: Team, page: Page) -> None:
    champion_and_candidate(team)
    worker = Worker(team.service, controller_seconds=0.5).start(tick_seconds=0.1)
    try:
        with Server(team.root, env=team.env) as gateway:
            team.service.as_actor("rui").start_rollout("churn", 2, steps=STEPS, interval=INTERVAL, checks=CHECKS)
            page.goto(f"{team.url}/ui/")
            page.get_by_label("Your API token").fill(team.tokens["val"])  # a viewer: watching needs no more
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{team.url}/ui/")
            page.goto(f"{team.url}/ui/models/churn/rollout")
            page.evaluate("window.shipyardMarker = 11")  # gone if the page were loaded anew
            # No request has come yet, so the first step cannot have been judged.
            first = shown(page)
            assert first[:2] == ("running", "0.25") and "25.0%" in first[2] and "step 1 of 3" in first[2]

            seen = [first]
            latencies: set[str] = set()  # the absolute p95 times the page showed beside the factors
            with Load(gateway.url, seconds=TRAFFIC_SECONDS, rows=customers(300, seed=5)) as load:
                deadline = time.monotonic() + DEADLINE_SECONDS
                while seen[-1][0] != "promoted":
                    assert time.monotonic() < deadline, f"the page did not show the promotion in time; it showed {seen}"
                    now = shown(page)
                    if now != seen[-1]:
                        seen.append(now)
                    if now[0] == "running":
                        latencies.update(t for t in page.get_by_test_id("p95").all_inner_texts() if t.strip())
                    page.wait_for_timeout(200)
                assert page.evaluate("window.shipyardMarker") == 11  # followed by polling, never reloaded
                wait_for(lambda: load.versions[-20:] == [2] * 20, timeout=30)  # and the gateway serves v2 alone
    finally:
        worker.stop(timeout=60)

    weights = [weight for _, weight, _ in seen]
    assert weights[:2] == ["0.25", "0.5"] and weights[-1] == "1.0", seen  # 25%, then 50%, then all of it
    assert [state for state, _, _ in seen[:-1]] == ["running"] * (len(seen) - 1), seen
    texts = [text for _, _, text in seen]
    assert "50.0%" in texts[1] and "step 2 of 3" in texts[1], seen
    assert page.get_by_test_id("live").get_attribute("hx-trigger") is None  # a finished rollout is not polled
    history = page.get_by_test_id("history").inner_text()
    assert "promote" in history and "next" in history
    status, _ = team.service.rollout_status("churn", judge=False)
    assert status is not None and status.state == "promoted"
    assert [e["event"] for e in status.history] == ["started", "next", "next", "promote"]
    assert any(re.fullmatch(r"[\d.,]+ / [\d.,]+ ms", text.strip()) for text in latencies), latencies
    assert load.statuses and set(load.statuses) == {200} and 1 in load.versions and 2 in load.versions
