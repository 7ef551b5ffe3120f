"""Delivery in the store: which versions get traffic (deployments) and rollouts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.domain.entities import Deployment
from shipyard.domain.errors import Conflict, InvalidSpec, NotFound
from shipyard.domain.governance import GateReport
from shipyard.domain.rollouts import ACTIVE as ACTIVE_ROLLOUT
from shipyard.domain.rollouts import Rollout, check_rollout_start
from shipyard.domain.stages import Stage
from shipyard.store.base import StoreBase, Tx, bump_generation, known_models_hint, move, production_rows, version_row
from shipyard.store.governance import put_gate
from shipyard.store.mirror import mark_mirror_pending
from shipyard.store.monitoring import resolve_left_production
from shipyard.store.tables import DeploymentRow, ModelRow, RolloutRow, ServingStateRow, VersionRow


def route(tx: Tx, model: str, challenger: int | None, strategy: str, weight: float) -> None:
    """Point a model's deployment at a challenger (or back at the champion alone)."""
    deployment = tx.session.get(DeploymentRow, model)
    if deployment is None:
        deployment = DeploymentRow(model_name=model, routing_key=None)
        tx.session.add(deployment)
    if challenger is None:
        mode = "single"
    elif strategy == "shadow" or (strategy == "bluegreen" and weight <= 0):
        mode = "shadow"  # blue-green judges the new version on shadowed traffic before the switch
    else:
        mode = strategy
    deployment.challenger_version, deployment.mode, deployment.challenger_weight = challenger, mode, weight
    deployment.updated_at, deployment.updated_by = tx.now, tx.actor
    bump_generation(tx)


def active_rollout_row(session: Session, model: str) -> RolloutRow | None:
    query = select(RolloutRow).where(RolloutRow.model_name == model, RolloutRow.state.in_(ACTIVE_ROLLOUT))
    return session.scalars(query).one_or_none()


def expect(row: RolloutRow, state: str, action: str) -> None:
    if row.state != state:
        raise Conflict(f"the rollout of {row.model_name}/{row.version} is {row.state}; only a {state} rollout can {action}")


class DeliveryRecords(StoreBase):
    """Mixed into ``Store``: deployments and rollouts."""

    def serving_generation(self) -> int:
        """Gateways poll this one integer and reload when it moves."""
        with self.read() as session:
            state = session.get(ServingStateRow, 1)
            return state.generation if state is not None else 0

    def deployments(self, models: list[str] | None = None) -> list[Deployment]:
        """The champion (production version) and any challenger of every model with a champion."""
        with self.read() as session:
            champions = {
                row.model_name: row.version
                for row in session.scalars(select(VersionRow).where(VersionRow.stage == Stage.PRODUCTION.value))
            }
            rows = {row.model_name: row for row in session.scalars(select(DeploymentRow))}
        found = []
        for name in sorted(set(champions) | set(rows)):
            if models is not None and name not in models:
                continue
            row = rows.get(name)
            found.append(
                Deployment(
                    model=name,
                    champion=champions.get(name),
                    challenger=row.challenger_version if row is not None else None,
                    mode=row.mode if row is not None else "single",
                    challenger_weight=row.challenger_weight if row is not None else 0.0,
                    routing_key=row.routing_key if row is not None else None,
                )
            )
        return found

    def set_deployment(
        self,
        *,
        actor: str,
        model: str,
        challenger: int | None,
        mode: str,
        weight: float,
        routing_key: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Deployment:
        with self.write(actor) as tx:
            if challenger is not None:
                version_row(tx.session, model, challenger)
            elif tx.session.get(ModelRow, model) is None:
                raise NotFound(f"unknown model {model!r}", hint=known_models_hint(tx.session))
            row = tx.session.get(DeploymentRow, model)
            if row is None:
                row = DeploymentRow(model_name=model)
                tx.session.add(row)
            row.challenger_version, row.mode, row.challenger_weight, row.routing_key = challenger, mode, weight, routing_key
            row.updated_at, row.updated_by = tx.now, actor
            bump_generation(tx)
            tx.audit(
                "deployment.changed",
                model,
                {"challenger": challenger, "mode": mode, "weight": weight, "routing_key": routing_key, **(details or {})},
            )
        [deployment] = self.deployments([model]) or [Deployment(model=model, champion=None)]
        return deployment

    # -- rollouts ----------------------------------------------------------------------

    def start_rollout(
        self,
        *,
        actor: str,
        model: str,
        version: int,
        strategy: str,
        steps: list[float],
        interval_seconds: float,
        checks: dict[str, Any],
        failure_limit: int,
        gate: GateReport | None,
        overrides: dict[str, Any] | None = None,
    ) -> Rollout:
        """Begin a rollout and point the deployment at its first step, in one transaction.

        ``overrides``: the thresholds given for this rollout alone (``checks`` holds the result).
        """
        with self.write(actor) as tx:
            row = version_row(tx.session, model, version)
            active = active_rollout_row(tx.session, model)
            champion = next((r.version for r in production_rows(tx.session, model)), None)
            check_rollout_start(
                model,
                version,
                Stage(row.stage),
                active=(active.state, active.version) if active is not None else None,
                champion=champion,
            )
            if gate is not None:
                put_gate(tx, gate)
            rollout = RolloutRow(
                model_name=model,
                version=version,
                champion_version=champion,
                strategy=strategy,
                steps=steps,
                step_index=0,
                interval_seconds=interval_seconds,
                checks=checks,
                failure_limit=failure_limit,
                failures=0,
                state="running",
                history=[{"at": tx.now.isoformat(), "event": "started", "weight": steps[0]}],
                started_by=actor,
                started_at=tx.now,
                step_started_at=tx.now,
            )
            tx.session.add(rollout)
            tx.session.flush()
            route(tx, model, version, strategy, steps[0] / 100.0)
            tx.audit(
                "rollout.started",
                f"{model}/{version}",
                {
                    "rollout": rollout.id,
                    "strategy": strategy,
                    "steps": steps,
                    "champion": champion,
                    "interval_seconds": interval_seconds,
                    "checks": checks,
                    "check_overrides": overrides or {},
                },
            )
            return rollout.to_entity()

    def active_rollouts(self) -> list[Rollout]:
        with self.read() as session:
            query = select(RolloutRow).where(RolloutRow.state.in_(ACTIVE_ROLLOUT)).order_by(RolloutRow.id)
            return [row.to_entity() for row in session.scalars(query)]

    def rollouts(self, model: str) -> list[Rollout]:
        with self.read() as session:
            return [
                r.to_entity()
                for r in session.scalars(select(RolloutRow).where(RolloutRow.model_name == model).order_by(RolloutRow.id))
            ]

    def advance_rollout(self, *, actor: str, model: str, action: str, details: dict[str, Any] | None = None) -> Rollout:
        """Apply one controller or operator decision to a model's active rollout.

        ``action``: wait (record a judgement), fail (count a failed analysis; roll back at
        the limit), next (to the next step), promote (the challenger becomes champion),
        rollback, pause, resume, abort.
        """
        with self.write(actor) as tx:
            row = active_rollout_row(tx.session, model)
            if row is None:
                raise NotFound(f"{model} has no active rollout", hint=f"Start one with `shipyard rollout start {model} VERSION`.")
            event: dict[str, Any] = {"at": tx.now.isoformat(), "event": action, **(details or {})}
            if action == "fail":
                row.failures += 1
                row.step_started_at = tx.now  # judge a fresh window next time
                if row.failures >= row.failure_limit:
                    action = "rollback"
                    event["event"] = "rollback"
                    event["reason"] = f"{row.failures} failed analyses (limit {row.failure_limit})"
            if action == "pause":
                expect(row, "running", "pause")
                row.state = "paused"
            elif action == "resume":
                expect(row, "paused", "resume")
                row.state = "running"
                row.step_started_at = tx.now
            elif action == "next":
                row.step_index += 1
                row.step_started_at = tx.now
                event["weight"] = row.steps[row.step_index]
                route(tx, model, row.version, row.strategy, row.steps[row.step_index] / 100.0)
            elif action in ("rollback", "abort"):
                row.state = "rolled_back" if action == "rollback" else "aborted"
                row.finished_at = tx.now
                route(tx, model, None, row.strategy, 0.0)
            elif action == "promote":
                version = version_row(tx.session, model, row.version)
                for champion in production_rows(tx.session, model):
                    move(tx, champion, Stage.ARCHIVED, f"replaced by version {row.version} after rollout {row.id}")
                    if champion.version != row.version:
                        resolve_left_production(tx, model, champion.version)
                tx.session.flush()
                if version.stage != Stage.PRODUCTION.value:
                    move(tx, version, Stage.PRODUCTION, f"rollout {row.id} reached full traffic")
                row.state = "promoted"
                row.finished_at = tx.now
                route(tx, model, None, row.strategy, 0.0)
            elif action not in ("wait", "fail"):
                raise InvalidSpec(f"unknown rollout action {action!r}")
            row.history = [*row.history, event]
            tx.audit(f"rollout.{event['event']}", f"{model}/{row.version}", {"rollout": row.id, **(details or {})})
            if action == "promote":  # the only rollout action that moves stages
                mark_mirror_pending(tx, model, f"rollout {row.id} promoted version {row.version}")
            tx.session.flush()
            return row.to_entity()


def pending_deployment(session: Session, model: str) -> Deployment:
    """A model's deployment as the open transaction of ``session`` leaves it (its changes flushed, not committed)."""
    champion = next((row.version for row in production_rows(session, model)), None)
    row = session.get(DeploymentRow, model)
    return Deployment(
        model=model,
        champion=champion,
        challenger=row.challenger_version if row is not None else None,
        mode=row.mode if row is not None else "single",
        challenger_weight=row.challenger_weight if row is not None else 0.0,
        routing_key=row.routing_key if row is not None else None,
    )


__all__ = ["DeliveryRecords", "pending_deployment"]
