"""The audit log's full verification, kept fresh beside the server, so a page shows the latest without a walk.

A full `audit verify` (the chain, every signed checkpoint, the state replayed) reads every event: seconds
over a long log. The server runs it on its own thread when events have arrived and at most every
``every`` seconds; pages and the KPI tiles read the latest result and when it was made.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.domain.entities import AuditVerification
    from shipyard.service import Shipyard

log = logging.getLogger("shipyard.server")


@dataclass(frozen=True, slots=True)
class Verified:
    result: AuditVerification
    at: datetime


class Verifier:
    def __init__(self, service: Shipyard, *, every: float = 30.0) -> None:
        self.service = service
        self.every = every
        self._latest: Verified | None = None
        self._head: int | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shipyard audit verification", daemon=True)

    def latest(self) -> Verified | None:
        """The newest full verification; None until the first one ends (a page says it is running)."""
        return self._latest

    def start(self) -> Verifier:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        from shipyard.domain.errors import ShipyardError

        while not self._stop.is_set():
            try:
                head = self.service.audit_head()
                if head != self._head or self._latest is None:
                    result = self.service.audit_verify()
                    self._latest, self._head = Verified(result=result, at=datetime.now(UTC)), head
                    if not result.ok:
                        log.warning("audit verification failed: %s", result.problem)
            except ShipyardError as exc:
                log.warning("verifying the audit log failed: %s", exc.message)
            self._wake.wait(self.every)
            self._wake.clear()
