"""The MLflow mirror's backlog: what the store changed that MLflow may not show yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

KINDS = ("stages", "registration")


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingMirror:
    """One piece of mirror work Shipyard has not seen finish.

    ``stages``: the store changed a model's stages after MLflow's aliases were last
    made to match; ``seq`` is the audit event the mark goes up to. ``registration``:
    a version was being registered in MLflow for ``run_id`` and the store has not
    recorded it, so MLflow may hold an orphan version (or the registration is
    still under way: look at ``since``).
    """

    kind: str
    model: str
    reason: str
    since: datetime
    seq: int | None = None
    run_id: str | None = None
    registration: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "reason": self.reason,
            "since": self.since.isoformat(),
            "seq": self.seq,
            "run_id": self.run_id,
            "registration": self.registration,
        }
