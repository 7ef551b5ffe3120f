"""The stage machine: candidate → staging → production → archived, plus rejected."""

from __future__ import annotations

from enum import StrEnum

from shipyard.domain.errors import Conflict, InvalidSpec


class Stage(StrEnum):
    CANDIDATE = "candidate"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"
    REJECTED = "rejected"

    @classmethod
    def parse(cls, value: str) -> Stage:
        try:
            return cls(value.strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise InvalidSpec(f"unknown stage {value!r}; expected one of: {names}") from None


# Archived → production is the way back to a previous champion (a rollback);
# it goes through the production gate like any other move to production.
TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.CANDIDATE: frozenset({Stage.STAGING, Stage.REJECTED, Stage.ARCHIVED}),
    Stage.STAGING: frozenset({Stage.PRODUCTION, Stage.REJECTED, Stage.ARCHIVED}),
    Stage.PRODUCTION: frozenset({Stage.ARCHIVED}),
    Stage.ARCHIVED: frozenset({Stage.STAGING, Stage.PRODUCTION}),
    Stage.REJECTED: frozenset(),
}

_ORDER = list(Stage)


def allowed_moves(current: Stage) -> list[Stage]:
    return sorted(TRANSITIONS[current], key=_ORDER.index)


def check_transition(subject: str, current: Stage, target: Stage) -> None:
    """Raise Conflict naming the allowed moves when current → target is illegal."""
    if target in TRANSITIONS[current]:
        return
    allowed = allowed_moves(current)
    options = ", ".join(s.value for s in allowed) if allowed else "none (it is final)"
    if current == target:
        raise Conflict(f"{subject} is already in stage {current.value}", hint=f"Allowed moves from {current.value}: {options}.")
    raise Conflict(
        f"{subject} cannot move from {current.value} to {target.value}",
        hint=f"Allowed moves from {current.value}: {options}.",
    )


# MLflow aliases that follow a stage: each names the newest version in it (@challenger belongs to rollouts).
STAGE_ALIASES: dict[str, Stage] = {"production": Stage.PRODUCTION, "champion": Stage.PRODUCTION, "staging": Stage.STAGING}
