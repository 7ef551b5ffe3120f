"""What the acting principal may do with a version now, and why not: the answer a face shows before a button is pressed.

Each action is judged by the checks its own service method runs before it changes anything, in the same order,
with the same messages — roles (``Access.require``, ``require_role``), separation of duties
(``require_separation``), the stage machine (``check_transition``) and the state a rollout needs — but nothing is
audited, no evidence is collected again and no gate is evaluated: a promotion or a rollout the roles allow may
still be blocked by its gate, which the action itself reports with every blocking rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import Conflict, ShipyardError
from shipyard.domain.rollouts import check_rollout_start
from shipyard.domain.stages import Stage, check_transition
from shipyard.policy.access import PERMISSIONS, require_separation
from shipyard.service.base import ServiceBase
from shipyard.service.versions import GATED

if TYPE_CHECKING:
    from shipyard.domain.entities import ModelVersion
    from shipyard.domain.rollouts import Rollout

ROLLOUT_ACTIONS = {"pause": "running", "resume": "paused", "abort": None}  # the state each needs, if any


@dataclass(frozen=True, slots=True, kw_only=True)
class Allowance:
    """One action: allowed, or the refusal the service would give (its message and hint), and who may take it."""

    allowed: bool
    reason: str | None = None
    hint: str | None = None
    roles: tuple[str, ...] = ()  # any one of these roles may take the action (admin may take every action)

    def to_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "reason": self.reason, "hint": self.hint, "roles": list(self.roles)}


class AllowedActions(ServiceBase):
    """Mixed into ``Shipyard``: ``allowed_actions``."""

    def allowed_actions(self, model: str, version: int) -> dict[str, Allowance]:
        """For the acting principal, each action on a version, keyed ``approve:STAGE``, ``reject:STAGE`` (each gated
        stage), ``promote:STAGE`` (every stage but its own and candidate), ``rollout:start``, and ``rollout:pause|resume|abort``
        while the model has an active rollout. Changes nothing and audits nothing."""
        found = self.store.get_version(model, version)
        actions: dict[str, Allowance] = {}
        for stage in GATED:
            role = self._approval_role(model, stage)
            for decision in ("approve", "reject"):
                check = partial(self._may_sign_off, found, stage, decision, role)
                actions[f"{decision}:{stage.value}"] = _judge(check, roles=tuple(sorted({role, "admin"})))
        for target in Stage:
            action = f"promote:{target.value}"
            if target is not found.stage and action in PERMISSIONS:  # no move leads back to candidate
                actions[action] = _judge(partial(self._may_promote, found, target), roles=_roles(action))
        rollouts = self.store.rollouts(model)
        active = next((r for r in reversed(rollouts) if r.active), None)
        operators = _roles("promote:production")
        actions["rollout:start"] = _judge(partial(self._may_start_rollout, found, active), roles=operators)
        if active is not None:
            for name, needs in ROLLOUT_ACTIONS.items():
                actions[f"rollout:{name}"] = _judge(partial(self._may_steer, active, name, needs), roles=operators)
        return actions

    # -- the checks, each in its service method's order ------------------------------------------------

    def _may(self, action: str, what: str) -> None:
        """``authorize`` without the audit: the server-only rule of team mode, then the roles."""
        self._only_through_server(what)
        self.access.require(self.actor, action, what=what)

    def _approval_role(self, model: str, stage: Stage) -> str:
        from shipyard.policy.spec import ApprovalsRule, policy_for

        try:
            rules = policy_for(self.settings, model).rules_for(stage.value)
        except ShipyardError:
            return "approver"  # a policy that does not load: the sign-off itself reports it
        rule = next((r for r in rules if isinstance(r, ApprovalsRule)), None)
        return rule.role if rule is not None else "approver"

    def _may_sign_off(self, found: ModelVersion, stage: Stage, decision: str, role: str) -> None:
        """As ``Versions.approve``: a final stage, then the policy's role, then (to approve) separation of duties."""
        if found.stage in (Stage.REJECTED, Stage.ARCHIVED):
            raise Conflict(f"{found.subject} is {found.stage.value}; there is nothing to sign off")
        what = f"{decision} {found.subject} for {stage.value}"
        self._only_through_server(what)
        self.access.require_role(self.actor, role, what=what)
        if decision == "approve":
            evidence = self.store.evidence(found.model, found.version) or {}
            trained_by = (evidence.get("lineage") or {}).get("trained_by")
            involved = {"registered": found.registered_by, "trained": trained_by}
            require_separation(self.actor, involved, what=f"approve it for {stage.value}")

    def _may_promote(self, found: ModelVersion, target: Stage) -> None:
        """As ``Versions.promote``: the role for the target stage, then the stage machine (the gate comes after)."""
        self._may(f"promote:{target.value}", f"move {found.subject} to {target.value}")
        check_transition(found.subject, found.stage, target)

    def _may_start_rollout(self, found: ModelVersion, active: Rollout | None) -> None:
        """As ``Delivery.start_rollout`` and the store's refusals, in their order (the gate comes between them)."""
        model, version = found.model, found.version
        self._may("promote:production", f"roll out {found.subject}")
        champion = next((v.version for v in self.store.list_versions(model) if v.stage is Stage.PRODUCTION), None)
        pending = (active.state, active.version) if active is not None else None
        check_rollout_start(model, version, found.stage, active=pending, champion=champion)

    def _may_steer(self, active: Rollout, action: str, needs: str | None) -> None:
        """As ``Delivery.rollout_action`` and the store's ``advance_rollout``."""
        self._may("promote:production", f"{action} the rollout of {active.model}")
        if needs is not None and active.state != needs:
            raise Conflict(
                f"the rollout of {active.model}/{active.version} is {active.state}; only a {needs} rollout can {action}"
            )


def _roles(action: str) -> tuple[str, ...]:
    return tuple(sorted(PERMISSIONS[action]))


def _judge(check: Callable[[], None], *, roles: tuple[str, ...]) -> Allowance:
    try:
        check()
    except ShipyardError as exc:
        return Allowance(allowed=False, reason=exc.message, hint=exc.hint, roles=roles)
    return Allowance(allowed=True, roles=roles)
