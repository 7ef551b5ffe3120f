"""Where the notifier stands in the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyCursor:
    """The last audit event a notifier has handled (sent, or given up on), and how its next message fares."""

    name: str
    seq: int
    attempts: int = 0  # failed deliveries of the first message after ``seq``
    last_error: str | None = None
    updated_at: datetime | None = None
