"""Getting versions to traffic: the gateway, rollouts and their controller."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shipyard.domain.entities import Deployment
from shipyard.domain.errors import InvalidSpec
from shipyard.domain.stages import Stage
from shipyard.service.signer import checkpoint_promotion
from shipyard.service.training import Training

if TYPE_CHECKING:
    from datetime import datetime

    from shipyard.config import Settings
    from shipyard.domain.rollouts import Analysis, Rollout
    from shipyard.rollout import Decision
    from shipyard.serving.gateway import Gateway, GatewayConfig

STRATEGIES = ("canary", "shadow", "bluegreen")


def open_gateway(settings: Settings, config: GatewayConfig) -> Gateway:
    """A gateway over the project ``settings`` describe: what each `shipyard serve --workers` process opens."""
    from shipyard.service import Shipyard

    return Shipyard(settings).gateway(config)


class Delivery(Training):
    # -- serving ----------------------------------------------------------------------------

    def gateway(self, config: GatewayConfig) -> Gateway:
        """A gateway over this project's deployments, logging predictions under the shared location's predictions/
        (deploy.shared_path, else .shipyard/predictions).

        It only serves: automated work (rollouts, monitor runs, figures) belongs to `shipyard.worker`.
        """
        from shipyard.location import Location
        from shipyard.policy.spec import policy_for
        from shipyard.predlog import PredictionLog
        from shipyard.serving.gateway import Gateway

        log_dir = Location.of(config.log_dir) if config.log_dir else self.settings.predictions_dir
        # An object store that cannot be reached fails the start, with what to check, rather than every flush later.
        log_dir.check()
        predlog = PredictionLog(log_dir, sample_rate=config.log_sample, flush_seconds=config.log_flush_seconds)
        categories: dict[str, dict[str, list[str]]] = {}
        for name in self.settings.spec.models:
            if not policy_for(self.settings, name).serving.reject_unknown_categories:
                continue
            schema = self.store.reference_schema(name) or {}
            allowed = {col: spec["isin"] for col, spec in (schema.get("columns") or {}).items() if spec and spec.get("isin")}
            categories[name] = allowed
        feature_repos = {
            name: self.settings.resolve(spec.data.feast.repo)
            for name, spec in self.settings.spec.models.items()
            if spec.data.feast is not None
        }
        monitored = [name for name in self.settings.spec.models if config.models is None or name in config.models]
        return Gateway(
            self.store,
            self.registry,
            config,
            predlog=predlog,
            categories=categories,
            feature_repos=feature_repos,
            monitored=monitored,
        )

    def check_recording(self) -> None:
        """Refuse to start a gateway or worker whose shared location (deploy.shared_path) cannot be reached."""
        self.settings.shared_dir.check()

    def deployments(self) -> list[Deployment]:
        return self.store.deployments()

    # -- rollouts -----------------------------------------------------------------------------

    def start_rollout(
        self,
        model: str,
        version: int,
        *,
        strategy: str | None = None,
        steps: list[float] | None = None,
        interval: float | None = None,
        checks: Mapping[str, Any] | None = None,
    ) -> Rollout:
        """Start moving traffic to a version that passes its production gate (approvals included).

        ``checks`` overrides analysis thresholds for this rollout only: recorded with it, and the
        ``rollout.started`` audit event names each override beside the thresholds that result.
        """
        spec = self.settings.model(model).rollout
        strategy = strategy or spec.strategy
        if strategy not in STRATEGIES:
            raise InvalidSpec(f"unknown strategy {strategy!r}; expected {', '.join(STRATEGIES)}")
        steps = steps or spec.steps_for(strategy)
        if any(not 0 <= s <= 100 for s in steps) or steps != sorted(steps) or (strategy == "canary" and steps[-1] != 100):
            raise InvalidSpec(f"steps {steps} must rise within 0–100 and, for a canary, end at 100")
        found = self.store.get_version(model, version)
        self.authorize("promote:production", what=f"roll out {found.subject}", subject=found.subject)
        report = self.enforce_gate(found, Stage.PRODUCTION)
        merged = self._rollout_checks(model, checks)
        task, _ = self.task_of(model, version)
        return self.store.start_rollout(
            actor=self.actor,
            model=model,
            version=version,
            strategy=strategy,
            steps=[float(s) for s in steps],
            interval_seconds=interval if interval is not None else spec.interval,
            # The task and metric of the version's evidence: a model whose task was inferred has none declared.
            checks={**merged, "metric": self.settings.model(model).metric(task), "task": task},
            # Each threshold this rollout was given, as validated: the audit shows what was chosen, not only the result.
            overrides={key: merged[key] for key in checks or {}},
            failure_limit=spec.failure_limit,
            gate=report,
        )

    def _rollout_checks(self, model: str, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
        from pydantic import ValidationError

        from shipyard.config import RolloutChecks

        base = self.settings.model(model).rollout.checks
        if not overrides:
            return base.model_dump()
        try:
            return RolloutChecks.model_validate({**base.model_dump(), **overrides}).model_dump()
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            known = ", ".join(RolloutChecks.model_fields)
            raise InvalidSpec(f"bad rollout check override: {problems}", hint=f"Checks: {known}.") from exc

    def rollout_status(self, model: str, *, judge: bool = True) -> tuple[Rollout | None, Analysis | None]:
        """The latest rollout of a model, and a live judgement of its current step when it is active.

        ``judge=False`` skips the judgement (it reads the step's prediction log): for a caller polling the state.
        """
        from shipyard.rollout import analyze

        self.store.get_model(model)
        rollouts = self.store.rollouts(model)
        latest = rollouts[-1] if rollouts else None
        active = judge and latest is not None and latest.active
        analysis = analyze(self.settings.predictions_dir, latest, self.settings.labels_dir) if latest and active else None
        return latest, analysis

    def rollout_action(self, model: str, action: str, *, reason: str | None = None) -> Rollout:
        """pause, resume or abort (abort returns all traffic to the champion at once)."""
        if action not in ("pause", "resume", "abort"):
            raise InvalidSpec(f"unknown rollout action {action!r}; expected pause, resume or abort")
        self.authorize("promote:production", what=f"{action} the rollout of {model}", subject=model)
        rollout = self.store.advance_rollout(
            actor=self.actor, model=model, action=action, details={"reason": reason} if reason else None
        )
        if rollout.state == "aborted":
            self._rolled_back(rollout)
        return rollout

    def reconcile_rollouts(self, *, now: datetime | None = None) -> list[Decision]:
        """One controller pass over every running rollout (idempotent): each decision applied as this actor.

        ``now``: the time the pass judges at (steps are due after their interval).
        """
        from shipyard.rollout import Decision, decide

        self.authorize("promote:production", what="drive rollouts", subject="*")
        applied = []
        due = decide(self.store.active_rollouts(), self.settings.predictions_dir, now=now, labels_dir=self.settings.labels_dir)
        for decision in due:
            details = {"analysis": decision.analysis.to_dict()} if decision.analysis is not None else None
            rollout = self.store.advance_rollout(
                actor=self.actor, model=decision.rollout.model, action=decision.action, details=details
            )
            applied.append(Decision(rollout=rollout, action=decision.action, analysis=decision.analysis))
            if rollout.state == "promoted":
                self.mirror(rollout.model)
                checkpoint_promotion(self, Stage.PRODUCTION)  # as for a promote: the server signs the history now
            elif rollout.state == "rolled_back":
                self._rolled_back(rollout)
        return applied

    def _rolled_back(self, rollout: Rollout) -> None:
        """A version the live analysis (or an operator) turned back loses its production approvals: it must be
        signed off again before it can return, and never straight to 100%."""
        reason = f"rollout {rollout.id} was {rollout.state.replace('_', ' ')}"
        self.store.revoke_approvals(
            actor=self.actor, model=rollout.model, version=rollout.version, stage=Stage.PRODUCTION.value, reason=reason
        )
