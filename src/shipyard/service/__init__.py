"""The Shipyard service: one object opened on a project.

The CLI, the HTTP API, the UI and the worker all call this; no face holds a business rule,
and nothing but the service writes the store. The object is split by concern across this
package's modules, each a layer of one class (base → mirror → versions → training → delivery →
loop → insight → audit, and drift views on the loop, identity beside them), so each module stays small while callers see one
`Shipyard`. Notifications (notify.py), what a principal may do (allowed.py) and retention with its legal holds
and costs (retention.py) stand beside that chain, on the base alone, and are mixed in here.
"""

from __future__ import annotations

from shipyard.service.allowed import Allowance, AllowedActions
from shipyard.service.audit import Audit
from shipyard.service.drift import DriftBin, DriftView, DriftViews
from shipyard.service.identity import Identity
from shipyard.service.loop import MonitorOutcome, RetrainingData
from shipyard.service.mirror import Reconciled
from shipyard.service.notify import Notifications, NotifyPass
from shipyard.service.retention import Retention
from shipyard.service.versions import GATED, PromotionOutcome, VersionDetail


class Shipyard(Audit, DriftViews, Identity, Notifications, AllowedActions, Retention):
    """Everything a user (or an automated principal) can do with a project, in one place."""


__all__ = [
    "GATED",
    "Allowance",
    "DriftBin",
    "DriftView",
    "MonitorOutcome",
    "NotifyPass",
    "PromotionOutcome",
    "Reconciled",
    "RetrainingData",
    "Shipyard",
    "VersionDetail",
]
