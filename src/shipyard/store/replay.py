"""Replaying the audit log against the state tables.

Every writer in the store changes a state row and audits it in one transaction (governance.py,
versions.py, delivery.py, checkpoints.py). So the events, replayed in order, say what each row
must hold; a row they do not explain was written around Shipyard, e.g. an approval inserted
with SQL. The chain's hashes cannot see that (no event was touched); this can.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from shipyard.domain.entities import AuditEvent
from shipyard.domain.governance import Approval
from shipyard.store.tables import (
    ApiTokenRow,
    ApprovalRow,
    AuditKeyRow,
    AuditRow,
    DeploymentRow,
    RolloutRow,
    VersionRow,
    as_utc,
)

ApprovalPrint = tuple[str, str, str, datetime, str | None, tuple[str, ...], str | None, str | None]

STATE_ACTIONS = (
    "version.registered",
    "version.stage_changed",
    "deployment.changed",
    "token.created",
    "audit.key_created",
    "audit.key_rotated",
    "approval.approve",
    "approval.reject",
    "approval.revoked",
)
# Rollout events are ``rollout.<what the controller or an operator did>``; each entry: the state it leaves.
ROLLOUT_STATES = {
    "pause": "paused",
    "resume": "running",
    "next": "running",
    "rollback": "rolled_back",
    "abort": "aborted",
    "promote": "promoted",
    "wait": None,
    "fail": None,
}


def approval_print(row: ApprovalRow) -> ApprovalPrint:
    """What an approvals row says, in the shape its ``approval.<decision>`` event says it."""
    return (
        f"{row.model_name}/{row.version}",
        row.decision,
        row.actor,
        as_utc(row.at),
        row.stage,
        tuple(row.roles or ()),
        row.comment,
        row.evidence_sha256,
    )


def approval_event_print(event: AuditEvent) -> ApprovalPrint:
    d = event.details
    return (
        event.subject,
        event.action.removeprefix("approval."),
        event.actor,
        event.at,
        d.get("stage"),
        tuple(d.get("roles") or ()),
        d.get("comment"),
        d.get("evidence_sha256"),
    )


def describe_approval(row: ApprovalRow) -> str:
    kind = "rejection" if row.decision == "reject" else "approval"
    return f"{kind} of {row.model_name}/{row.version} for {row.stage} by {row.actor} (row {row.id})"


def audited_approvals(session: Session, subject: str, rows: Iterable[ApprovalRow]) -> list[Approval]:
    """The rows as entities, each held against the audit log: one with no event of its own, or cleared
    after an ``approval.revoked`` event, comes back revoked, with why, so no gate counts it.

    A cheap check (the events of one subject): it catches a row written with SQL alone. A row whose
    event was forged too, with every later hash recomputed, is left to `audit verify` and its signed checkpoints.
    """
    actions = ("approval.approve", "approval.reject", "approval.revoked")
    query = select(AuditRow).where(AuditRow.subject == subject, AuditRow.action.in_(actions)).order_by(AuditRow.seq)
    counts: dict[ApprovalPrint, int] = {}
    revocations: dict[int, AuditEvent] = {}
    for event in (row.to_entity() for row in session.scalars(query)):
        if event.action == "approval.revoked":
            if isinstance(event.details.get("approval"), int):
                revocations[event.details["approval"]] = event
            continue
        key = approval_event_print(event)
        counts[key] = counts.get(key, 0) + 1
    found = []
    for row in rows:
        entity = row.to_entity()
        key = approval_print(row)
        revocation = revocations.get(row.id)
        if counts.get(key, 0) > 0:
            counts[key] -= 1
            if row.revoked_at is None and revocation is not None:
                why = revocation.details.get("reason") or "revoked"
                entity = replace(entity, revoked=f"{why} (event {revocation.seq}; the row no longer says so)")
        else:
            entity = replace(
                entity, revoked=f"no audit event records it (approvals row {row.id}): it was written around Shipyard"
            )
        found.append(entity)
    return found


def routing_mode(challenger: int | None, strategy: str, weight: float) -> str:
    """The deployment mode ``delivery.route`` writes; kept in step with it."""
    if challenger is None:
        return "single"
    if strategy == "shadow" or (strategy == "bluegreen" and weight <= 0):
        return "shadow"
    return strategy


@dataclass(slots=True)
class _Routing:
    challenger: int | None
    mode: str
    weight: float
    routing_key: str | None
    actor: str
    at: datetime
    seq: int

    def describe(self) -> str:
        if self.challenger is None:
            return "the champion alone"
        return f"version {self.challenger} as {self.mode} at {self.weight:.0%}"


@dataclass(slots=True)
class _Rollout:
    model: str
    version: int
    strategy: str
    steps: list[float]
    champion: int | None
    actor: str
    at: datetime
    state: str = "running"
    step_index: int = 0
    finished_at: datetime | None = None
    seq: int = 0


@dataclass(slots=True)
class _Replay:
    """What the events say each row must hold, built in one pass over the log."""

    stages: dict[str, tuple[str, int]] = field(default_factory=dict)
    approvals: dict[ApprovalPrint, int] = field(default_factory=dict)
    revocations: dict[int, AuditEvent] = field(default_factory=dict)
    routing: dict[str, _Routing] = field(default_factory=dict)
    rollouts: dict[int, _Rollout] = field(default_factory=dict)
    tokens: dict[str, list[tuple[str, datetime]]] = field(default_factory=dict)
    keys: dict[str, AuditEvent] = field(default_factory=dict)
    retired: dict[str, AuditEvent] = field(default_factory=dict)

    def apply(self, e: AuditEvent) -> None:
        d = e.details
        if e.action == "version.registered":
            self.stages[e.subject] = ("candidate", e.seq)
        elif e.action == "version.stage_changed":
            self.stages[e.subject] = (str(d.get("to")), e.seq)
        elif e.action in ("approval.approve", "approval.reject"):
            key = approval_event_print(e)
            self.approvals[key] = self.approvals.get(key, 0) + 1
        elif e.action == "approval.revoked" and isinstance(d.get("approval"), int):
            self.revocations[d["approval"]] = e
        elif e.action == "deployment.changed":
            self.routing[e.subject] = _Routing(
                d.get("challenger"), str(d.get("mode")), float(d.get("weight", 0.0)), d.get("routing_key"), e.actor, e.at, e.seq
            )
        elif e.action == "token.created":
            self.tokens.setdefault(e.subject, []).append((e.actor, e.at))
        elif e.action in ("audit.key_created", "audit.key_rotated"):
            self.keys[str(d.get("key_id"))] = e
            if e.action == "audit.key_rotated":
                self.retired[str(d.get("retired"))] = e
        elif e.action.startswith("rollout."):
            self._rollout(e)

    def _rollout(self, e: AuditEvent) -> None:
        d, what = e.details, e.action.removeprefix("rollout.")
        number = d.get("rollout")
        if not isinstance(number, int):
            return
        model, _, version = e.subject.rpartition("/")
        if what == "started":
            steps = [float(s) for s in d.get("steps") or [0.0]]
            rollout = _Rollout(model, int(version), str(d.get("strategy")), steps, d.get("champion"), e.actor, e.at, seq=e.seq)
            self.rollouts[number] = rollout
            self._route(e, rollout.version, rollout.strategy, steps[0] / 100.0)
            return
        known = self.rollouts.get(number)
        if known is None or what not in ROLLOUT_STATES:
            return
        rollout = known
        rollout.seq = e.seq
        rollout.state = ROLLOUT_STATES[what] or rollout.state
        if what == "next":
            rollout.step_index += 1
            weight = rollout.steps[rollout.step_index] if rollout.step_index < len(rollout.steps) else 100.0
            self._route(e, rollout.version, rollout.strategy, weight / 100.0)
        elif what in ("rollback", "abort", "promote"):
            rollout.finished_at = e.at
            self._route(e, None, rollout.strategy, 0.0)

    def _route(self, e: AuditEvent, challenger: int | None, strategy: str, weight: float) -> None:
        model = e.subject.rpartition("/")[0]
        before = self.routing.get(model)
        mode = routing_mode(challenger, strategy, weight)
        key = before.routing_key if before is not None else None
        self.routing[model] = _Routing(challenger, mode, weight, key, e.actor, e.at, e.seq)


def unexplained_rows(session: Session) -> list[str]:
    """Every state row the audit log does not explain, as one sentence each."""
    replay = _Replay()
    wanted = or_(AuditRow.action.in_(STATE_ACTIONS), AuditRow.action.startswith("rollout."))
    rows = session.scalars(select(AuditRow).where(wanted).order_by(AuditRow.seq).execution_options(yield_per=1000))
    try:
        for row in rows:
            replay.apply(row.to_entity())
    finally:
        rows.close()
    found: list[str] = []
    found += _versions(session, replay)
    found += _approvals(session, replay)
    found += _deployments(session, replay)
    found += _rollouts(session, replay)
    found += _tokens(session, replay)
    found += _keys(session, replay)
    return found


def _versions(session: Session, replay: _Replay) -> list[str]:
    found = []
    for row in session.scalars(select(VersionRow).order_by(VersionRow.id)):
        subject = f"{row.model_name}/{row.version}"
        audited = replay.stages.get(subject)
        if audited is None:
            found.append(f"version {subject} (row {row.id}) is {row.stage} but has no version.registered event")
        elif audited[0] != row.stage:
            last = f"the audit log last put it in {audited[0]} (event {audited[1]})"
            found.append(f"version {subject} (row {row.id}) is {row.stage} but {last}")
    return found


def _approvals(session: Session, replay: _Replay) -> list[str]:
    found = []
    remaining = dict(replay.approvals)
    for row in session.scalars(select(ApprovalRow).order_by(ApprovalRow.id)):
        key = approval_print(row)
        if remaining.get(key, 0) > 0:
            remaining[key] -= 1
        else:
            found.append(f"{describe_approval(row)} has no audit event")
        revocation = replay.revocations.get(row.id)
        if row.revoked_at is not None and not _revoked_by(row, revocation):
            found.append(f"the revocation of {describe_approval(row)} has no audit event")
        elif row.revoked_at is None and revocation is not None:
            found.append(f"{describe_approval(row)} was revoked by event {revocation.seq}, but the row no longer says so")
    return found


def _revoked_by(row: ApprovalRow, event: AuditEvent | None) -> bool:
    return (
        event is not None
        and row.revoked_at is not None
        and as_utc(row.revoked_at) == event.at
        and row.revoked_by == event.actor
        and row.revoked_reason == event.details.get("reason")
    )


def _deployments(session: Session, replay: _Replay) -> list[str]:
    found = []
    for row in session.scalars(select(DeploymentRow).order_by(DeploymentRow.model_name)):
        now = _Routing(
            row.challenger_version, row.mode, row.challenger_weight, row.routing_key, row.updated_by, as_utc(row.updated_at), 0
        )
        audited = replay.routing.get(row.model_name)
        if audited is None:
            found.append(f"the deployment of {row.model_name} ({now.describe()}, set by {row.updated_by}) has no audit event")
            continue
        same = (now.challenger, now.mode, now.weight, now.routing_key, now.actor, now.at) == (
            audited.challenger,
            audited.mode,
            audited.weight,
            audited.routing_key,
            audited.actor,
            audited.at,
        )
        if not same:
            found.append(
                f"the deployment of {row.model_name} routes {now.describe()} (set by {row.updated_by}), but the audit log "
                f"last set {audited.describe()} (event {audited.seq}, by {audited.actor})"
            )
    return found


def _rollouts(session: Session, replay: _Replay) -> list[str]:
    found = []
    for row in session.scalars(select(RolloutRow).order_by(RolloutRow.id)):
        name = f"rollout {row.id} of {row.model_name}/{row.version}"
        audited = replay.rollouts.get(row.id)
        if audited is None:
            found.append(f"{name} (row {row.id}) has no rollout.started event")
            continue
        started = (row.model_name, row.version, row.strategy, [float(s) for s in row.steps], row.champion_version)
        if started != (audited.model, audited.version, audited.strategy, audited.steps, audited.champion) or (
            row.started_by,
            as_utc(row.started_at),
        ) != (audited.actor, audited.at):
            found.append(f"{name} (row {row.id}) differs from what its rollout.started event recorded")
        elif (row.state, row.step_index) != (audited.state, audited.step_index):
            found.append(
                f"{name} is {row.state} at step {row.step_index + 1}, but the audit log leaves it {audited.state} "
                f"at step {audited.step_index + 1} (event {audited.seq})"
            )
        elif (as_utc(row.finished_at) if row.finished_at else None) != audited.finished_at:
            found.append(f"{name} has a finishing time no audit event explains")
    return found


def _tokens(session: Session, replay: _Replay) -> list[str]:
    found = []
    for row in session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.name)):
        # A token's event names it plainly, or as ``token:NAME`` where tokens belong to principals.
        created = replay.tokens.get(row.name, []) + replay.tokens.get(f"token:{row.name}", [])
        if (row.created_by, as_utc(row.created_at)) not in created:
            found.append(f"token {row.name!r} (created by {row.created_by}) has no token.created event")
    return found


def _keys(session: Session, replay: _Replay) -> list[str]:
    found = []
    for row in session.scalars(select(AuditKeyRow).order_by(AuditKeyRow.created_at)):
        event = replay.keys.get(row.key_id)
        details: dict[str, Any] = event.details if event is not None else {}
        if event is None or details.get("public_key") != row.public_key:
            found.append(
                f"audit key {row.key_id} is listed in the store but no audit.key_created or audit.key_rotated event added it"
            )
            continue
        retired = replay.retired.get(row.key_id)
        if row.retired_at is not None and retired is None:
            found.append(f"audit key {row.key_id} is marked retired, but no audit.key_rotated event retired it")
        elif row.retired_at is None and retired is not None:
            found.append(f"audit key {row.key_id} was retired by event {retired.seq}, but the store lists it as current")
    return found


__all__ = ["approval_event_print", "approval_print", "audited_approvals", "describe_approval", "routing_mode", "unexplained_rows"]
