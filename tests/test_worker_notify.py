"""Team-mode notifications from the worker, to a real HTTP receiver: what is sent, once, and what is never lost."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import PRINCIPALS
from shipyard.config import load_settings
from shipyard.domain.errors import GateBlocked
from shipyard.scaffold import commit_all
from shipyard.service import Shipyard
from shipyard.worker import NOTIFY_ATTEMPTS, Worker

ROBOT = "shipyard.monitor"
SERVER = "http://127.0.0.1:8700"
LINK = f"{SERVER}/ui/models/churn/versions/1"


@dataclass
class Hook:
    """A webhook receiver: answers the statuses in ``answers`` in turn (then 200) and keeps every request."""

    url: str
    answers: list[int] = field(default_factory=list)
    requests: list[tuple[int, dict[str, Any], str]] = field(default_factory=list)  # status answered, body, user agent

    @property
    def delivered(self) -> list[dict[str, Any]]:
        return [body for status, body, _ in self.requests if status == 200]


@pytest.fixture
def hook() -> Iterator[Hook]:
    received = Hook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            status = received.answers.pop(0) if received.answers else 200
            received.requests.append((status, body, self.headers["user-agent"]))
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"receiver trouble")

        def log_message(self, *_args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.url = f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/secret-path"
    yield received
    server.shutdown()
    server.server_close()
    thread.join()


def team(project: Path, notify_url: str | None, *, production_rules: list[dict[str, Any]] | None = None) -> None:
    """Declare the server (team mode) with its webhook, the worker's principal, and extra production rules."""
    config = project / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["server"] = {"url": SERVER, **({"notify_url": notify_url} if notify_url else {})}
    data["principals"] = {**PRINCIPALS, ROBOT: ["scientist", "deployer"]}
    data["worker"] = {"actor": ROBOT}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    if production_rules:
        policy = project / "policies" / "churn.yaml"
        rules = yaml.safe_load(policy.read_text())
        rules["production"] = production_rules + rules["production"]
        policy.write_text(yaml.safe_dump(rules, sort_keys=False, allow_unicode=True))
    commit_all(project, "Team mode with notifications")


class Clock:
    """The worker's own clock: it paces the retries of a notification."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def hosted(project: Path, actor: str) -> Shipyard:
    """The project as its server opens it (in team mode only the server changes the store), acting as ``actor``."""
    return Shipyard(dataclasses.replace(load_settings(project, actor=actor, env={}), hosted=True))


def worker_on(service: Shipyard, clock: Clock) -> Worker:
    return Worker(service, clock=clock, notify_seconds=0.0, holder=f"worker-{id(service)}")


def refused_production(project: Path, version: int = 1) -> GateBlocked:
    """Stage the version, then ask for production without a sign-off: the gate blocks it."""
    with hosted(project, "alice") as alice:
        alice.promote("churn", version, "staging", reason="ready")
    with hosted(project, "rui") as rui, pytest.raises(GateBlocked) as refused:
        rui.promote("churn", version, "production", reason="ship it")
    return refused.value


def test_a_blocked_promotion_sends_one_message_naming_the_rules_and_the_link(trained_project: Path, hook: Hook) -> None:
    rule = {"kind": "metric", "metric": "roc_auc", "op": ">=", "value": 0.99, "message": "<!channel> Too weak & *bold*."}
    team(trained_project, hook.url, production_rules=[rule])
    clock = Clock()
    with hosted(trained_project, "ada") as service:
        worker = worker_on(service, clock)
        assert worker.tick().held and hook.requests == []  # it starts from now: nothing to tell yet
        refused = refused_production(trained_project)
        done = worker.tick()
        assert "notifications" in done.done
        worker.tick()
        clock.now += 600
        worker.tick()
    (message,) = hook.delivered
    assert len(hook.requests) == 1 and hook.requests[0][2] == "shipyard-notify"
    text = message["text"]
    assert text.startswith("A gate blocked churn version 1 from production: 2 rules failed (asked by rui).")
    assert f"<{LINK}|Open churn version 1>" in text
    blocking = [line.split(":")[0].removeprefix("- ") for line in (refused.hint or "").splitlines()]
    assert len(blocking) == 2 and all(name in text for name in blocking)
    rules = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b]
    metric = next(r for r in rules if "0.99" in r)
    assert "observed: 0." in metric and "&lt;!channel&gt; Too weak &amp; *bold*." in metric
    assert "<!channel>" not in json.dumps(message)
    assert any(r.startswith("approvals (approver)\nobserved: 0\n") for r in rules)
    (button,) = next(b for b in message["blocks"] if b["type"] == "actions")["elements"]
    assert button["url"] == LINK


def test_an_approval_waiting_version_sends_one_message_and_a_restarted_worker_neither_resends_nor_misses(
    trained_project: Path, hook: Hook
) -> None:
    team(trained_project, hook.url)
    clock = Clock()
    with hosted(trained_project, "ada") as service:
        first = worker_on(service, clock)
        first.tick()
        refused_production(trained_project)
        first.tick()
        (message,) = hook.delivered
        assert message["text"].startswith("churn version 1 needs approval to enter production (asked by rui).")
        assert "Blocking: approvals (approver)." in message["text"] and LINK in message["text"]
        # A sign-off and the promotion that passes call for nothing more.
        with hosted(trained_project, "vera") as vera:
            vera.approve("churn", 1, "production", comment="fine")
        with hosted(trained_project, "rui") as rui:
            rui.promote("churn", 1, "production", reason="ship it")
        first.tick()
        first.release()
    refused_production(trained_project, 2)  # while no worker runs
    with hosted(trained_project, "ada") as again:
        restarted = worker_on(again, clock)
        assert restarted.tick().held
        clock.now += 600
        restarted.tick()
        cursor = again.store.notify_cursor("notify")
        assert cursor is not None and cursor.seq == again.audit_log()[-1].seq  # it read everything
    # Nothing sent again, nothing missed while it was down.
    assert len(hook.requests) == 2 and hook.delivered[0] == message
    assert "churn version 2" in hook.delivered[1]["text"]


def test_a_receiver_that_fails_twice_then_succeeds_gets_exactly_one_delivery(trained_project: Path, hook: Hook) -> None:
    team(trained_project, hook.url)
    hook.answers = [500, 503]
    clock = Clock()
    with hosted(trained_project, "ada") as service:
        worker = worker_on(service, clock)
        worker.tick()
        refused_production(trained_project)
        worker.tick()
        assert [status for status, _, _ in hook.requests] == [500]
        cursor = service.store.notify_cursor("notify")
        assert cursor is not None and cursor.attempts == 1 and cursor.last_error == "HTTP 500: receiver trouble"
        worker.tick()  # too soon: the next try waits for its pause
        assert len(hook.requests) == 1
        for _ in range(4):
            clock.now += 600
            worker.tick()
        events = [e.action for e in service.audit_log()]
    assert [status for status, _, _ in hook.requests] == [500, 503, 200]
    assert len(hook.delivered) == 1 and hook.requests[0][1] == hook.requests[2][1]  # the same message each time
    assert "notify.failed" not in events


@pytest.mark.parametrize(("answers", "attempts"), [([500] * NOTIFY_ATTEMPTS, NOTIFY_ATTEMPTS), ([404], 1)])
def test_a_message_that_cannot_be_delivered_is_given_up_with_an_audit_event_and_the_next_goes_out(
    trained_project: Path, hook: Hook, answers: list[int], attempts: int
) -> None:
    """Retried up to the limit (a 4xx refusal is final at once); then notify.failed, and later messages still go."""
    team(trained_project, hook.url)
    hook.answers = list(answers)
    clock = Clock()
    with hosted(trained_project, "ada") as service:
        worker = worker_on(service, clock)
        worker.tick()
        refused_production(trained_project, 1)
        for _ in range(NOTIFY_ATTEMPTS + 2):
            worker.tick()
            clock.now += 600
        assert len(hook.requests) == attempts and hook.delivered == []
        (failed,) = [e for e in service.audit_log() if e.action == "notify.failed"]
        (gate,) = [e for e in service.audit_log() if e.action == "gate.evaluated" and not e.details["passed"]]
        refused_production(trained_project, 2)
        worker.tick()
        assert service.audit_verify().ok
    assert (failed.actor, failed.subject, failed.details["event"]) == (ROBOT, "churn/1", gate.seq)
    assert failed.details["attempts"] == attempts and failed.details["status"] == answers[-1]
    assert failed.details["error"] == f"HTTP {answers[-1]}: receiver trouble"
    assert failed.details["receiver"] == hook.url.split("/services")[0]
    assert "secret-path" not in json.dumps(failed.details)  # a Slack webhook's path is its secret
    (message,) = hook.delivered
    assert message["text"].startswith("churn version 2 needs approval")


@pytest.mark.parametrize("server", ["none", "no notify_url"])
def test_without_a_notify_url_the_worker_sends_nothing_and_keeps_no_cursor(project: Path, server: str) -> None:
    if server == "no notify_url":
        team(project, None)
    with hosted(project, "ada") as service:
        worker = Worker(service, notify_seconds=0.0)
        assert not worker.notifying
        assert worker.tick().held
        assert service.notify().enabled is False
        assert service.store.notify_cursor("notify") is None
        assert service.version_url("churn", 1) == (None if server == "none" else LINK)
