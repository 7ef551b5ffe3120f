from __future__ import annotations

import pytest

from shipyard.domain.errors import Conflict, InvalidSpec
from shipyard.domain.stages import TRANSITIONS, Stage, allowed_moves, check_transition

LEGAL = [(a, b) for a, targets in TRANSITIONS.items() for b in sorted(targets)]  # sorted: every test worker collects one order
ILLEGAL = [(a, b) for a in Stage for b in Stage if b not in TRANSITIONS[a]]


@pytest.mark.parametrize(("current", "target"), LEGAL)
def test_legal_moves_pass(current: Stage, target: Stage) -> None:
    check_transition("m/1", current, target)


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_illegal_moves_name_the_allowed_ones(current: Stage, target: Stage) -> None:
    with pytest.raises(Conflict) as caught:
        check_transition("m/1", current, target)
    assert caught.value.hint is not None
    for allowed in allowed_moves(current):
        assert allowed.value in caught.value.hint
    if not allowed_moves(current):
        assert "final" in caught.value.hint


def test_main_path_and_shortcuts() -> None:
    check_transition("m/1", Stage.CANDIDATE, Stage.STAGING)
    check_transition("m/1", Stage.STAGING, Stage.PRODUCTION)
    check_transition("m/1", Stage.PRODUCTION, Stage.ARCHIVED)
    with pytest.raises(Conflict, match="cannot move from candidate to production"):
        check_transition("m/1", Stage.CANDIDATE, Stage.PRODUCTION)
    assert allowed_moves(Stage.REJECTED) == []


def test_parse_stage() -> None:
    assert Stage.parse(" Production ") is Stage.PRODUCTION
    with pytest.raises(InvalidSpec, match="expected one of: candidate, staging, production, archived, rejected"):
        Stage.parse("prod")
