"""The rollout page shows one moment: a controller step taken between its read of the rollout and its read of
the deployment is read again, never shown as one step beside the next step's weight."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import PRINCIPALS
from shipyard.domain.stages import Stage
from shipyard.server.ui.pages import rollout_snapshot
from shipyard.service import Shipyard


class StepBetweenReads:
    """The real service, except that the controller takes a real step just before the page reads the deployment
    the first time (what a worker did while the page rendered, made certain)."""

    def __init__(self, service: Shipyard) -> None:
        self.service, self.stepped = service, False

    def rollout_status(self, model: str, *, judge: bool = True) -> Any:
        return self.service.rollout_status(model, judge=judge)

    def deployments(self) -> Any:
        if not self.stepped:
            self.stepped = True
            self.service.store.advance_rollout(actor="shipyard.monitor", model="churn", action="next")
        return self.service.deployments()


def test_a_step_taken_between_the_page_s_reads_is_read_again(trained_project: Path) -> None:
    assert "rui" in PRINCIPALS
    with Shipyard.open(trained_project, actor="rui", env={}) as service:
        for version, stages in ((1, (Stage.STAGING, Stage.PRODUCTION)), (2, (Stage.STAGING,))):
            for stage in stages:  # the gates are not under test here
                service.store.transition(actor="ada", model="churn", version=version, to=stage, reason="setup")
        service.store.start_rollout(
            actor="rui", model="churn", version=2, strategy="canary", steps=[25.0, 50.0, 100.0], interval_seconds=60.0,
            checks={}, failure_limit=2, gate=None,
        )  # fmt: skip
        acting = StepBetweenReads(service)
        rollout, _, share = rollout_snapshot(acting, "churn")  # type: ignore[arg-type]
    assert acting.stepped and rollout is not None
    assert (rollout.step_index, share) == (1, 0.5)  # step 2 of 3 with its own weight, not step 1 beside 50%
