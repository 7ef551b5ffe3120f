"""Entities: frozen, typed, keyword-built, no I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from shipyard.domain.stages import Stage


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Model:
    name: str
    owner: str
    created_at: datetime
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": _iso(self.created_at)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersion:
    model: str
    version: int
    stage: Stage
    run_id: str | None
    source: str
    data_uri: str | None
    data_fingerprint: str | None
    git_commit: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    files_sha256: dict[str, str] | None = None
    registered_by: str
    registered_at: datetime
    updated_at: datetime

    @property
    def subject(self) -> str:
        return f"{self.model}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stage"] = self.stage.value
        data["registered_at"] = _iso(self.registered_at)
        data["updated_at"] = _iso(self.updated_at)
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class StageChange:
    model: str
    version: int
    from_stage: Stage | None
    to_stage: Stage
    actor: str
    reason: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "from_stage": self.from_stage.value if self.from_stage else None,
            "to_stage": self.to_stage.value,
            "actor": self.actor,
            "reason": self.reason,
            "at": _iso(self.at),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Promotion:
    """What one promote call changed: the version moved and any version it displaced."""

    version: ModelVersion
    from_stage: Stage
    archived: tuple[ModelVersion, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.to_dict(),
            "from_stage": self.from_stage.value,
            "archived": [v.to_dict() for v in self.archived],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": _iso(self.at)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """Which versions of a model get traffic: the champion, and a challenger during a rollout."""

    model: str
    champion: int | None
    challenger: int | None = None
    mode: str = "single"  # single | canary | shadow | bluegreen
    challenger_weight: float = 0.0
    routing_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditVerification:
    """What `audit verify` found. ``problem`` and ``first_bad_seq`` name the earliest problem; the rest say what was checked.

    The chain alone catches an edit whose later hashes were left as they were; signed checkpoints catch a
    history rewritten with every hash recomputed; the replay catches state rows written around the audit log.
    """

    ok: bool
    events: int
    first_bad_seq: int | None = None
    problem: str | None = None
    problems: tuple[str, ...] = ()  # every problem with the chain and its checkpoints, earliest first
    unexplained: tuple[str, ...] = ()  # state rows (stages, approvals, deployments, rollouts, tokens) no event explains
    checkpoints: int = 0  # distinct signed checkpoints checked (from the store and the checkpoint file)
    key_source: str | None = None  # "given" (--public-key) or "store" (listed there: weaker), None when nothing was signed
    checkpoint_file: str | None = None  # the checkpoint file read, when it exists here
    signed_through: int | None = None  # the last event a valid checkpoint vouches for
    unsigned_tail: int = 0  # events after it that no checkpoint signs yet
    replayed: bool = False  # the state tables were replayed against the events

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"], data["unexplained"] = list(self.problems), list(self.unexplained)
        return data
