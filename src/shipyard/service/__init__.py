"""The Shipyard service: one object opened on a project.

The CLI, the HTTP API, the UI and the worker all call this; no face holds a business rule,
and nothing but the service writes the store. The object is split by concern across this
package's modules, each a layer of one class (base → mirror → versions → training → delivery →
loop → insight → audit), so each module stays small while callers see one `Shipyard`.
"""

from __future__ import annotations

from shipyard.service.audit import Audit
from shipyard.service.loop import MonitorOutcome, RetrainingData
from shipyard.service.mirror import Reconciled
from shipyard.service.versions import GATED, PromotionOutcome, VersionDetail


class Shipyard(Audit):
    """Everything a user (or an automated principal) can do with a project, in one place."""


__all__ = ["GATED", "MonitorOutcome", "PromotionOutcome", "Reconciled", "RetrainingData", "Shipyard", "VersionDetail"]
