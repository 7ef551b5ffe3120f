"""Telling people: a Slack-compatible webhook when a version waits for approval or a gate blocks it.

Team mode only (``server.notify_url``). The worker calls ``notify`` on its ticks: it reads the audit
log after the store's cursor, sends one message per event that calls for one, and moves the
cursor past each message delivered. A message that cannot be delivered holds the ones after it
(they keep their order) and is tried again on a later pass; after ``attempts`` tries, or at once
when the receiver refuses it for good (a 4xx answer), it is given up with a ``notify.failed`` audit
event, so no message is lost without a trace.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shipyard.domain.errors import ShipyardError
from shipyard.service.base import ServiceBase

if TYPE_CHECKING:
    from shipyard.config import ServerSpec
    from shipyard.domain.entities import AuditEvent

log = logging.getLogger("shipyard.notify")
CURSOR = "notify"  # the cursor's name in the store


@dataclass(slots=True)
class NotifyPass:
    """What one pass sent, gave up, and left waiting."""

    enabled: bool
    sent: list[int] = field(default_factory=list)  # audit events whose message was delivered
    given_up: list[int] = field(default_factory=list)  # audit events recorded as notify.failed
    waiting: int | None = None  # the audit event whose message is tried again next time
    attempts: int = 0  # its failed deliveries so far
    error: str | None = None


def _receiver(url: str) -> str:
    """A webhook's address without its path: a Slack webhook's path is its secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


def _problem(delivery: dict[str, Any]) -> str:
    status = delivery.get("status")
    error = str(delivery.get("error") or "no answer").strip()
    return f"HTTP {status}: {error}" if status is not None else error


class Notifications(ServiceBase):
    """Mixed into ``Shipyard``: the notifications of team mode."""

    def version_url(self, model: str, version: int) -> str | None:
        """The web UI's page of a version, in team mode; None without a server."""
        from shipyard.monitoring.notify import version_url

        server = self.settings.spec.server
        return version_url(server, model, version) if server is not None else None

    def notify(self, *, attempts: int = 6, batch: int = 20, timeout: float = 5.0) -> NotifyPass:
        """Send the messages the audit log calls for since the last pass (at most ``batch``), one try each."""
        from shipyard.monitoring.notify import ACTIONS
        from shipyard.monitoring.webhook import post

        server = self.settings.spec.server
        if server is None or not server.notify_url:
            return NotifyPass(enabled=False)
        url = server.notify_url
        cursor = self.store.notify_cursor(CURSOR) or self.store.start_notify_cursor(actor=self.actor, name=CURSOR)
        events, head = self.store.notify_backlog(cursor.seq, actions=ACTIONS, limit=batch)
        done = NotifyPass(enabled=True)
        seen, failures = cursor.seq, cursor.attempts
        for event in events:
            try:
                message = self._message(event, server)
            except Exception as exc:  # a message that cannot be written is given up, never retried forever
                log.exception("the notification for audit event %s could not be written", event.seq)
                problem = f"the message could not be written: {type(exc).__name__}: {exc}"
                if not self._give_up(event, seen, {"attempts": 0, "error": problem}, done):
                    return done
                seen, failures = event.seq, 0
                continue
            if message is None:
                continue
            delivery = post(url, message, timeout=timeout, retries=0, user_agent="shipyard-notify")
            if delivery.get("delivered"):
                if not self.store.advance_notify_cursor(actor=self.actor, name=CURSOR, seen=seen, to=event.seq):
                    return done  # another worker moved the cursor: it goes on from there
                done.sent.append(event.seq)
                seen, failures = event.seq, 0
                continue
            failures += 1
            problem = _problem(delivery)
            status = delivery.get("status")
            refused = isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)
            if refused or failures >= attempts:
                details = {"attempts": failures, "error": problem, "status": status, "receiver": _receiver(url)}
                if not self._give_up(event, seen, details, done):
                    return done
                seen, failures = event.seq, 0
                continue
            log.warning(
                "notification for audit event %s not delivered to %s (attempt %s of %s): %s",
                event.seq,
                _receiver(url),
                failures,
                attempts,
                problem,
            )
            self.store.note_notify_failure(actor=self.actor, name=CURSOR, seen=seen, to=event.seq - 1, error=problem)
            done.waiting, done.attempts, done.error = event.seq, failures, problem
            return done
        # Every event up to here is handled: past the batch's last one, or (a short batch) the whole log read.
        last = events[-1].seq if len(events) == batch else head
        if last > seen:
            self.store.advance_notify_cursor(actor=self.actor, name=CURSOR, seen=seen, to=last)
        return done

    def _message(self, event: AuditEvent, server: ServerSpec) -> dict[str, Any] | None:
        from shipyard.monitoring.notify import notice_for, slack_message, version_url

        report = None
        report_id = event.details.get("report_id")
        model, _, number = event.subject.rpartition("/")
        if report_id is not None and model and number.isdigit():
            try:
                report = next((r for r in self.store.gate_reports(model, int(number)) if r.get("id") == report_id), None)
            except ShipyardError as exc:
                log.warning("gate report %s could not be read; its notification names the rules only: %s", report_id, exc.message)
        notice = notice_for(event, report)
        if notice is None:
            return None
        link = version_url(server, notice.model, notice.version)
        return slack_message(notice, link=link, project=self.settings.spec.project)

    def _give_up(self, event: AuditEvent, seen: int, details: dict[str, Any], done: NotifyPass) -> bool:
        """Record the message as not delivered (``notify.failed``) and move past it; False if another worker moved on."""
        recorded = self.store.give_up_notification(actor=self.actor, name=CURSOR, seen=seen, event=event, details=details)
        if recorded is None:
            return False
        log.error(
            "notification for audit event %s given up after %s attempt(s): %s (audit event %s)",
            event.seq,
            details.get("attempts"),
            details.get("error"),
            recorded.seq,
        )
        done.given_up.append(event.seq)
        return True


__all__ = ["CURSOR", "Notifications", "NotifyPass"]
