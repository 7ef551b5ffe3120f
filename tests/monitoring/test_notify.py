"""Notification messages: which gate events call for one, what they say, and that users' text stays data."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from shipyard.config import ServerSpec
from shipyard.domain.entities import AuditEvent
from shipyard.monitoring.notify import escape, fit, notice_for, slack_message, version_url

AT = datetime(2026, 12, 1, tzinfo=UTC)


def rule(kind: str, name: str, outcome: str = "failed", **extra: Any) -> dict[str, Any]:
    base = {"index": 0, "kind": kind, "name": name, "severity": "block", "outcome": outcome, "observed": 0, "expected": 1}
    return {**base, **extra}


def gate_event(*, passed: bool = False, break_glass: bool = False, subject: str = "churn/3", **details: Any) -> AuditEvent:
    return AuditEvent(
        seq=42,
        at=AT,
        actor="rui",
        action="gate.evaluated",
        subject=subject,
        details={"stage": "production", "passed": passed, "break_glass": break_glass, "report_id": 7, **details},
        prev_hash="0" * 64,
        hash="1" * 64,
    )


def report(*results: dict[str, Any], model: str = "churn", version: int = 3) -> dict[str, Any]:
    return {"id": 7, "model": model, "version": version, "stage": "production", "results": list(results)}


def strings(value: Any) -> list[str]:
    """Every string in a JSON document."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def test_the_link_is_the_ui_page_of_the_version_on_the_public_address() -> None:
    server = ServerSpec(url="http://10.0.0.5:8700/")
    assert version_url(server, "churn", 3) == "http://10.0.0.5:8700/ui/models/churn/versions/3"
    public = ServerSpec(url="http://10.0.0.5:8700", public_url="https://shipyard.example.com/")
    assert version_url(public, "churn", 3) == "https://shipyard.example.com/ui/models/churn/versions/3"
    assert version_url(public, "a/b c?", 1) == "https://shipyard.example.com/ui/models/a%2Fb%20c%3F/versions/1"


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (gate_event(passed=True), "a gate that passed"),
        (gate_event(break_glass=True), "a blocked gate overridden with break-glass"),
        (replace(gate_event(), action="approval.approve"), "not a gate event"),
    ],
)
def test_only_a_gate_that_blocked_calls_for_a_notice(event: AuditEvent, why: str) -> None:
    assert notice_for(event, report(rule("metric", "roc_auc"))) is None, why


def test_a_version_blocked_only_by_approvals_waits_for_approval_and_any_other_rule_makes_it_blocked() -> None:
    approvals = rule("approvals", "approvals (approver)", observed="0", expected="≥ 1 approval by approver")
    passed = rule("metric", "roc_auc ≥ 0.7", outcome="passed")
    warned = {**rule("metric", "slice", outcome="warned"), "severity": "warn"}
    waiting = notice_for(gate_event(), report(approvals, passed, warned))
    assert waiting is not None and waiting.kind == "approval"
    assert [r.name for r in waiting.rules] == ["approvals (approver)"]
    assert waiting.headline == "churn version 3 needs approval to enter production"
    error = rule("fairness", "fairness gender", outcome="error")
    blocked = notice_for(gate_event(), report(approvals, error))
    assert blocked is not None and blocked.kind == "blocked"
    assert [r.name for r in blocked.rules] == ["approvals (approver)", "fairness gender"]
    assert blocked.headline == "A gate blocked churn version 3 from production: 2 rules failed"


def test_without_its_report_a_notice_names_the_rules_the_event_lists() -> None:
    notice = notice_for(gate_event(blocking=["roc_auc ≥ 0.9", "approvals (approver)"]), None)
    assert notice is not None and notice.kind == "blocked" and (notice.model, notice.version) == ("churn", 3)
    assert [r.name for r in notice.rules] == ["roc_auc ≥ 0.9", "approvals (approver)"]
    message = slack_message(notice, link="http://x/ui/models/churn/versions/3", project="p")
    assert "roc_auc ≥ 0.9" in message["text"] and "not recorded" not in json.dumps(message)


def test_the_message_names_model_version_rules_and_link() -> None:
    notice = notice_for(
        gate_event(),
        report(rule("metric", "roc_auc ≥ 0.9", observed=0.8123, expected="≥ 0.9", message="Too weak for production.")),
    )
    assert notice is not None
    link = "https://shipyard.example.com/ui/models/churn/versions/3"
    message = slack_message(notice, link=link, project="churn-demo")
    assert message["text"].startswith("A gate blocked churn version 3 from production: 1 rule failed (asked by rui).")
    assert "Blocking: roc_auc ≥ 0.9." in message["text"] and f"<{link}|Open churn version 3>" in message["text"]
    header, facts, ruled, actions, context = message["blocks"]
    assert header["type"] == "header" and header["text"]["text"] == notice.headline
    assert [f["text"] for f in facts["fields"]] == ["Model: churn", "Version: 3", "Target stage: production", "Asked by: rui"]
    assert ruled["text"] == {
        "type": "plain_text",
        "text": "roc_auc ≥ 0.9\nobserved: 0.8123\nexpected: ≥ 0.9\nToo weak for production.",
        "emoji": False,
    }
    assert actions["elements"][0]["url"] == link and actions["elements"][0]["type"] == "button"
    assert context["elements"][0]["text"] == "Shipyard · project churn-demo · audit event 42 · gate report 7"


def test_users_text_never_becomes_a_mention_a_link_or_markup() -> None:
    hostile = "<!channel> <https://evil.example|click> & <@U123>"
    notice = notice_for(
        gate_event(subject="<!here>/3"),
        report(
            rule("expr", f"rule {hostile}", observed={"comment": hostile}, expected=hostile, message=f"*bold* {hostile}"),
            model="<!here>",
        ),
    )
    assert notice is not None
    message = slack_message(notice, link=version_url(ServerSpec(url="http://h:1"), notice.model, 3), project="p")
    texts = strings(message)
    assert not [s for s in texts if "<!" in s or "<@" in s or "<https://evil" in s]
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; &lt;@U123&gt;" in message["text"]
    assert message["text"].count("<") == 1  # only the link Shipyard made: <url|label>
    # Users' text goes in plain_text objects, where Slack applies no formatting (no *bold*).
    blocks = message["blocks"]
    text_objects = [b["text"] for b in blocks if "text" in b] + [f for b in blocks for f in b.get("fields", [])]
    assert {t["type"] for t in text_objects} == {"plain_text"}
    assert "http://h:1/ui/models/%3C%21here%3E/versions/3" in texts


def test_long_text_is_cut_to_slacks_limits_without_splitting_an_entity() -> None:
    assert escape("a<b>&c") == "a&lt;b&gt;&amp;c"
    cut = fit("&" * 100, 50)
    assert len(cut) <= 50 and cut.endswith("…") and cut[:-1] == "&amp;" * 9
    assert fit("short", 50) == "short"
    notice = notice_for(gate_event(), report(*[rule("metric", f"rule {i}", message="x" * 5000) for i in range(60)]))
    assert notice is not None
    message = slack_message(notice, link="http://x", project="p")
    assert len(message["blocks"]) <= 50
    assert message["blocks"][-3]["text"]["text"] == "… and 20 more blocking rules"
    assert all(len(s) <= 3000 for s in strings(message["blocks"]))
