"""Notifications for people: which audit events call for one, and the message (Slack-compatible JSON).

A gate that blocked a promotion leaves a ``gate.evaluated`` event that did not pass (and was not
overridden with break-glass); the stored gate report says which rules blocked. When every blocking
rule is an ``approvals`` rule, the version only waits for a sign-off: the message says so.

Everything in a message that users wrote (model names, rule names and messages, observed values,
approval comments, actors) is data: it is escaped as Slack asks (``&``, ``<``, ``>``), so it can
never become a link or a mention, and it goes in ``plain_text`` objects, where Slack applies no
formatting. The top-level ``text`` (what notifications and receivers without blocks show) is
escaped the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from shipyard.domain.governance import Outcome, RuleResult

if TYPE_CHECKING:
    from shipyard.config import ServerSpec
    from shipyard.domain.entities import AuditEvent

ACTIONS = ("gate.evaluated",)  # the audit events a notification can come from

# Slack's limits (Block Kit reference): characters per text object, blocks per message.
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
BUTTON_LIMIT = 75
RULES_SHOWN = 40  # with the other blocks, well under Slack's 50


def version_url(server: ServerSpec, model: str, version: int) -> str:
    """Where people look at a version: the web UI's page, on the server's public address."""
    base = (server.public_url or server.url).rstrip("/")
    return f"{base}/ui/models/{quote(model, safe='')}/versions/{version}"


def escape(text: str) -> str:
    """Text Slack shows as it is: its three control characters as the entities it asks for."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(text: str, limit: int) -> str:
    """``text`` escaped, cut (before escaping, so no entity is split) to at most ``limit`` characters."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    kept: list[str] = []
    room = limit - 1  # for the ellipsis
    for char in text:
        piece = escape(char)
        if len(piece) > room:
            break
        kept.append(piece)
        room -= len(piece)
    return "".join(kept) + "…"


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    """What one audit event tells people."""

    kind: Literal["approval", "blocked"]
    model: str
    version: int
    stage: str
    actor: str  # who asked for the move
    at: datetime
    seq: int  # the audit event
    rules: tuple[RuleResult, ...]  # the blocking rules
    report_id: int | None = None

    @property
    def headline(self) -> str:
        if self.kind == "approval":
            return f"{self.model} version {self.version} needs approval to enter {self.stage}"
        count = len(self.rules)
        failed = f"{count} rule{'s' if count != 1 else ''} failed" if count else "its gate did not pass"
        return f"A gate blocked {self.model} version {self.version} from {self.stage}: {failed}"


def _result(data: dict[str, Any]) -> RuleResult | None:
    try:
        return RuleResult(
            index=int(data.get("index", 0)),
            kind=str(data.get("kind", "")),
            name=str(data.get("name", "")),
            severity=str(data.get("severity", "block")),
            outcome=Outcome(data.get("outcome", "failed")),
            observed=data.get("observed"),
            expected=data.get("expected"),
            message=data.get("message"),
        )
    except ValueError:
        return None


def notice_for(event: AuditEvent, report: dict[str, Any] | None) -> Notice | None:
    """The notice a gate event calls for, from its stored report; None when it calls for none.

    Without the report (it could not be read) the event's own list of blocking rule names is used.
    """
    details = event.details
    if event.action != "gate.evaluated" or details.get("passed", True) or details.get("break_glass", False):
        return None
    model, _, number = event.subject.rpartition("/")
    rules: tuple[RuleResult, ...]
    if report is not None:
        results = (_result(r) for r in report.get("results", []) if isinstance(r, dict))
        rules = tuple(r for r in results if r is not None and r.blocking)
    else:
        rules = tuple(
            RuleResult(index=i, kind="", name=str(name), severity="block", outcome=Outcome.FAILED, observed=None, expected=None)
            for i, name in enumerate(details.get("blocking", []))
        )
    waits = bool(rules) and all(r.kind == "approvals" for r in rules)
    return Notice(
        kind="approval" if waits else "blocked",
        model=str(report.get("model", model)) if report else model,
        version=int(report.get("version", number)) if report else int(number),
        stage=str(details.get("stage", "")),
        actor=event.actor,
        at=event.at,
        seq=event.seq,
        rules=rules,
        report_id=details.get("report_id"),
    )


def _shown(value: Any) -> str:
    if value is None:
        return "not recorded"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _plain(text: str, limit: int = SECTION_LIMIT) -> dict[str, Any]:
    return {"type": "plain_text", "text": fit(text, limit), "emoji": False}


def _rule_text(rule: RuleResult) -> str:
    lines = [rule.name]
    if rule.observed is not None or rule.expected is not None:
        lines += [f"observed: {_shown(rule.observed)}", f"expected: {_shown(rule.expected)}"]
    if rule.message:
        lines.append(rule.message)
    return "\n".join(lines)


def slack_message(notice: Notice, *, link: str, project: str) -> dict[str, Any]:
    """A Slack-compatible webhook payload: ``text`` for notifications and plain receivers, ``blocks`` for Slack."""
    target = f"{notice.model} version {notice.version}"
    names = "; ".join(r.name for r in notice.rules)
    text = escape(f"{notice.headline} (asked by {notice.actor})." + (f" Blocking: {names}." if names else ""))
    text += f" <{escape(link)}|{escape('Open ' + target)}>"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(notice.headline, HEADER_LIMIT)},
        {
            "type": "section",
            "fields": [
                _plain(f"Model: {notice.model}", 2000),
                _plain(f"Version: {notice.version}", 2000),
                _plain(f"Target stage: {notice.stage}", 2000),
                _plain(f"Asked by: {notice.actor}", 2000),
            ],
        },
    ]
    for rule in notice.rules[:RULES_SHOWN]:
        blocks.append({"type": "section", "text": _plain(_rule_text(rule))})
    if len(notice.rules) > RULES_SHOWN:
        blocks.append({"type": "section", "text": _plain(f"… and {len(notice.rules) - RULES_SHOWN} more blocking rules")})
    blocks.append(
        {"type": "actions", "elements": [{"type": "button", "text": _plain(f"Open {target}", BUTTON_LIMIT), "url": link}]}
    )
    context = f"Shipyard · project {project} · audit event {notice.seq}"
    if notice.report_id is not None:
        context += f" · gate report {notice.report_id}"
    blocks.append({"type": "context", "elements": [_plain(context, 2000)]})
    return {"text": text, "blocks": blocks}


__all__ = ["ACTIONS", "Notice", "escape", "fit", "notice_for", "slack_message", "version_url"]
