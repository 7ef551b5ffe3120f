"""``allowed_actions`` says what the service would say: every refusal it predicts is the one the action gives,
every action it allows is not refused for a role or a state, and asking audits nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import PRINCIPALS, declare_principals
from shipyard.domain.errors import GateBlocked, ShipyardError
from shipyard.service import Shipyard

PEOPLE = ("alice", "bob", "rui", "vera", "ada", "val")


def act(service: Shipyard, action: str, model: str, version: int) -> None:
    """Take the action as a face would: through the service method the API and the UI call."""
    kind, _, argument = action.partition(":")
    if kind in ("approve", "reject"):
        service.approve(model, version, argument, comment="checking", decision=kind)
    elif kind == "promote":
        service.promote(model, version, argument, reason="checking")
    elif action == "rollout:start":
        service.start_rollout(model, version)
    else:
        service.rollout_action(model, argument, reason="checking")


def assert_refusals_agree(root: Path, version: int) -> dict[str, dict[str, bool]]:
    """For everyone, each refusal allowed_actions predicts is the service's own; returns who may do what."""
    verdicts: dict[str, dict[str, bool]] = {}
    for who in PEOPLE:
        with Shipyard.open(root, actor=who, env={}) as service:
            events = len(service.audit_log())
            allowed = service.allowed_actions("churn", version)
            assert len(service.audit_log()) == events, "asking what one may do must not audit anything"
            verdicts[who] = {action: a.allowed for action, a in allowed.items()}
            for action, allowance in allowed.items():
                if allowance.allowed:
                    continue
                with pytest.raises(ShipyardError) as refused:
                    act(service, action, "churn", version)
                if isinstance(refused.value, GateBlocked):
                    # The service judges the gate before the rollout's state; allowed_actions judges no gate.
                    assert action == "rollout:start" and "may not" not in (allowance.reason or ""), (who, action)
                    continue
                assert refused.value.message == allowance.reason, (who, action)
                assert refused.value.hint == allowance.hint, (who, action)
    return verdicts


def test_a_candidates_refusals_are_the_services(trained_project: Path) -> None:
    declare_principals(trained_project, {**PRINCIPALS, "alice": ["scientist", "deployer", "approver"]})
    verdicts = assert_refusals_agree(trained_project, 1)
    assert verdicts["val"] == dict.fromkeys(verdicts["val"], False)  # a viewer may only look
    assert verdicts["vera"]["approve:production"] and verdicts["vera"]["reject:staging"]
    assert not verdicts["vera"]["promote:staging"]
    assert not verdicts["alice"]["approve:production"] and verdicts["alice"]["reject:production"]  # she registered it
    assert verdicts["rui"]["promote:staging"] and not verdicts["rui"]["promote:production"]  # the stage machine
    assert not verdicts["bob"]["promote:archived"] and verdicts["bob"]["promote:rejected"]
    assert verdicts["ada"]["approve:production"] and not verdicts["rui"]["rollout:start"]  # no champion yet
    with Shipyard.open(trained_project, actor="alice", env={}) as alice:
        allowed = alice.allowed_actions("churn", 1)
    assert allowed["approve:production"].reason == (
        "separation of duties: alice registered this version and so may not approve it for production"
    )
    assert allowed["approve:production"].roles == ("admin", "approver")
    assert allowed["promote:production"].roles == ("admin", "deployer")
    assert "rollout:pause" not in allowed  # nothing is rolling out


@pytest.mark.parametrize(
    ("who", "action"),
    [
        ("vera", "approve:production"),
        ("ada", "approve:staging"),
        ("rui", "promote:staging"),
        ("bob", "promote:rejected"),
        ("walt", "reject:production"),
    ],
)
def test_what_it_allows_the_service_does(trained_project: Path, who: str, action: str) -> None:
    with Shipyard.open(trained_project, actor=who, env={}) as service:
        assert service.allowed_actions("churn", 1)[action].allowed
        act(service, action, "churn", 1)


def test_a_rollouts_actions_follow_its_state(trained_project: Path) -> None:
    with Shipyard.open(trained_project, actor="rui", env={}) as rui, Shipyard.open(trained_project, actor="vera", env={}) as vera:
        rui.promote("churn", 1, "staging", reason="ready")
        vera.approve("churn", 1, "production", comment="fine")
        rui.promote("churn", 1, "production", reason="approved")
        rui.promote("churn", 2, "staging", reason="next")
        vera.approve("churn", 2, "production", comment="fine")
        assert rui.allowed_actions("churn", 2)["rollout:start"].allowed
        assert rui.allowed_actions("churn", 1)["rollout:start"].reason == "churn/1 is already the champion"
        rui.start_rollout("churn", 2)
        allowed = rui.allowed_actions("churn", 2)
    assert allowed["rollout:pause"].allowed and allowed["rollout:abort"].allowed and not allowed["rollout:resume"].allowed
    assert allowed["rollout:start"].reason == "churn already has a running rollout of version 2"
    verdicts = assert_refusals_agree(trained_project, 2)
    assert not verdicts["val"]["rollout:abort"] and not verdicts["bob"]["rollout:pause"]
    with Shipyard.open(trained_project, actor="rui", env={}) as rui:
        rui.rollout_action("churn", "pause")
        paused = rui.allowed_actions("churn", 2)
    assert paused["rollout:resume"].allowed and paused["rollout:pause"].reason == (
        "the rollout of churn/2 is paused; only a running rollout can pause"
    )
