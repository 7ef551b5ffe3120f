"""The Shipyard service: one object opened on a project.

The CLI, the HTTP API and the UI all call this; no face holds a business rule.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from shipyard.config import Settings, load_settings
from shipyard.domain.entities import AuditEvent, AuditVerification, Deployment, Model, ModelVersion, Promotion, StageChange
from shipyard.domain.errors import Conflict, GateBlocked, InvalidSpec, NotFound, PermissionDenied, ShipyardError
from shipyard.domain.governance import Approval, GateReport
from shipyard.domain.stages import Stage, check_transition
from shipyard.policy.access import Access
from shipyard.store.repository import ANY_CHAMPION, ChampionChanged, Store

if TYPE_CHECKING:
    from datetime import datetime

    from shipyard.domain.monitoring import Alert
    from shipyard.domain.rollouts import Analysis, Rollout
    from shipyard.kpis import Kpis
    from shipyard.labels import Ingested
    from shipyard.loop import MonitorOutcome
    from shipyard.pipeline import PipelineResult, StepReporter
    from shipyard.registry import Registry
    from shipyard.rollout import Decision
    from shipyard.serving.gateway import Gateway, GatewayConfig

log = logging.getLogger("shipyard")
GATED = (Stage.STAGING, Stage.PRODUCTION)


@dataclass(frozen=True, slots=True, kw_only=True)
class PromotionOutcome:
    promotion: Promotion
    mirrored: bool
    mirror_error: str | None = None
    gate: GateReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.promotion.to_dict(),
            "mirrored": self.mirrored,
            "mirror_error": self.mirror_error,
            "gate": self.gate.to_dict() if self.gate is not None else None,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionDetail:
    version: ModelVersion
    history: list[StageChange]
    run: dict[str, Any] | None = None
    aliases: list[str] = field(default_factory=list)
    evidence: dict[str, Any] | None = None
    approvals: list[Approval] = field(default_factory=list)
    gate_reports: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.version.to_dict(),
            "history": [h.to_dict() for h in self.history],
            "run": self.run,
            "aliases": self.aliases,
            "evidence": self.evidence,
            "approvals": [a.to_dict() for a in self.approvals],
            "gate_reports": self.gate_reports,
        }


class Shipyard:
    """Everything a user can do with a project, in one place."""

    def __init__(self, settings: Settings, *, store: Store | None = None, registry: Registry | None = None) -> None:
        self.settings = settings
        self._store = store
        self._registry = registry

    @classmethod
    def open(cls, project: Path | None = None, *, actor: str | None = None, env: dict[str, str] | None = None) -> Shipyard:
        return cls(load_settings(project, actor=actor, env=env))

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Shipyard:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def actor(self) -> str:
        return self.settings.actor

    def as_actor(self, actor: str) -> Shipyard:
        """The same project, store and registry, acting as someone else (an automated service principal)."""
        return Shipyard(dataclasses.replace(self.settings, actor=actor), store=self.store, registry=self.registry)

    @property
    def access(self) -> Access:
        return Access(self.settings.spec.principals)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.open(self.settings.store_url)
        return self._store

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from shipyard.registry import Registry

            uri = self.settings.tracking_uri
            artifacts = (
                self.settings.state_dir / "artifacts" if uri.startswith(("sqlite:", "file:")) or "://" not in uri else None
            )
            self._registry = Registry(uri, self.settings.registry_uri, artifact_root=artifacts)
        return self._registry

    # -- training ---------------------------------------------------------------

    def run_pipeline(self, model: str, *, progress: StepReporter | None = None, data_path: Path | None = None) -> PipelineResult:
        from shipyard import pipeline

        self.settings.model(model)  # unknown model → NotFound before any heavy import
        self.access.require(self.actor, "train", what=f"train {model}")
        result = pipeline.run(
            self.settings, self.store, self.registry, model, progress=progress or pipeline.no_progress, data_path=data_path
        )
        self._mirror(model, changed=[result.version.version])
        return result

    def register(
        self, model: str, run_id: str, *, artifact_path: str = "model", progress: StepReporter | None = None
    ) -> PipelineResult:
        """Adopt a model logged by an existing MLflow run as a governed candidate."""
        from shipyard import pipeline

        self.settings.model(model)
        self.access.require(self.actor, "train", what=f"register a version of {model}")
        result = pipeline.adopt(
            self.settings,
            self.store,
            self.registry,
            model,
            run_id,
            artifact_path=artifact_path,
            progress=progress or pipeline.no_progress,
        )
        self._mirror(model, changed=[result.version.version])
        return result

    def collect_evidence(self, model: str, version: int) -> dict[str, Any]:
        """Collect a version's evidence again (new policy columns, a new champion)."""
        from shipyard import pipeline

        found = self.store.get_version(model, version)
        self.access.require(self.actor, "train", what=f"collect evidence for {found.subject}")
        return pipeline.refresh_evidence(self.settings, self.store, self.registry, found)

    def evidence(self, model: str, version: int) -> dict[str, Any] | None:
        self.store.get_version(model, version)
        return self.store.evidence(model, version)

    # -- reading ------------------------------------------------------------------

    def models(self) -> list[Model]:
        return self.store.list_models()

    def versions(self, model: str | None = None) -> list[ModelVersion]:
        return self.store.list_versions(model)

    def version(self, model: str, version: int | None = None) -> ModelVersion:
        if version is not None:
            return self.store.get_version(model, version)
        versions = self.store.list_versions(model)
        if not versions:
            raise NotFound(f"model {model!r} has no versions yet", hint=f"Run `shipyard pipeline run {model}`.")
        return versions[-1]

    def describe(self, model: str, version: int | None = None, *, with_run: bool = True) -> VersionDetail:
        found = self.version(model, version)
        run = None
        aliases: list[str] = []
        if with_run:
            try:
                run = self.registry.run_summary(found.run_id) if found.run_id else None
                aliases = sorted(a for a, v in self.registry.aliases(model).items() if v == found.version)
            except ShipyardError as exc:
                run = {"error": exc.message}
        return VersionDetail(
            version=found,
            history=self.store.stage_history(model, found.version),
            run=run,
            aliases=aliases,
            evidence=self.store.evidence(model, found.version),
            approvals=self.store.approvals(model, found.version),
            gate_reports=self.store.gate_reports(model, found.version),
        )

    # -- changing stage ---------------------------------------------------------

    def promote(self, model: str, version: int, to: Stage | str, *, reason: str, break_glass: bool = False) -> PromotionOutcome:
        """Move a version; moves into staging or production pass that stage's gate first."""
        target = Stage.parse(to) if isinstance(to, str) else to
        if not reason or not reason.strip():
            raise InvalidSpec("a promotion needs a reason", hint="Pass --reason TEXT: it is kept in the audit log.")
        current = self.store.get_version(model, version)
        self.access.require(self.actor, f"promote:{target.value}", what=f"move {current.subject} to {target.value}")
        check_transition(current.subject, current.stage, target)
        if break_glass:
            self._allow_break_glass(model)
        for attempt in range(3):
            report = self._enforce_gate(current, target, break_glass=break_glass)
            try:
                promotion = self.store.transition(
                    actor=self.actor,
                    model=model,
                    version=version,
                    to=target,
                    reason=reason.strip(),
                    gate=report,
                    break_glass=break_glass,
                    champion_seen=report.champion if report is not None and target is Stage.PRODUCTION else ANY_CHAMPION,
                )
                break
            except ChampionChanged:
                # Another promotion won the race: judge again against the new champion.
                if attempt == 2:
                    raise
                current = self.store.get_version(model, version)
                check_transition(current.subject, current.stage, target)
        changed = [promotion.version.version, *(v.version for v in promotion.archived)]
        error = self._mirror(model, changed=changed)
        return PromotionOutcome(promotion=promotion, mirrored=error is None, mirror_error=error, gate=report)

    def _allow_break_glass(self, model: str) -> None:
        from shipyard.policy.spec import policy_for

        self.access.require(self.actor, "break_glass", what="promote with --break-glass")
        if not policy_for(self.settings, model).break_glass.allowed:
            raise PermissionDenied(
                f"the policy of {model} does not allow break-glass promotions",
                hint="Set break_glass: {allowed: true} in the model's policy file to allow them for admins.",
            )

    def gate(self, model: str, version: int, stage: Stage | str) -> GateReport:
        """Evaluate the gate for a stage without changing anything."""
        target = Stage.parse(stage) if isinstance(stage, str) else stage
        if target not in GATED:
            raise InvalidSpec(f"stage {target.value} has no gate; expected staging or production")
        return self._evaluate_gate(self.store.get_version(model, version), target, save_evidence=False)

    def _enforce_gate(self, version: ModelVersion, target: Stage, *, break_glass: bool) -> GateReport | None:
        """Judge the move; a blocked report is stored and audited before the refusal."""
        if target not in GATED:
            return None
        report = self._evaluate_gate(version, target, save_evidence=True, break_glass=break_glass)
        if report.passed or break_glass:
            return report
        self.store.record_gate(report)
        blocking = report.blocking
        rules = f"{len(blocking)} blocking rule{'s' if len(blocking) > 1 else ''}"
        raise GateBlocked(
            f"{version.subject} may not enter {target.value}: {rules} failed",
            hint="\n".join(
                f"- {r.name}: observed {r.observed}; expected {r.expected}" + (f" ({r.message})" if r.message else "")
                for r in blocking
            ),
        )

    def _evaluate_gate(
        self, version: ModelVersion, target: Stage, *, save_evidence: bool, break_glass: bool = False
    ) -> GateReport:
        from shipyard import pipeline
        from shipyard.evidence import stale_reasons
        from shipyard.policy import gate
        from shipyard.policy.rules import GateContext
        from shipyard.policy.spec import policy_for

        spec = self.settings.model(version.model)
        policy = policy_for(self.settings, version.model)
        evidence = self.store.evidence(version.model, version.version)
        champion = next(
            (
                v.version
                for v in self.store.list_versions(version.model)
                if v.stage is Stage.PRODUCTION and v.version != version.version
            ),
            None,
        )
        if policy.rules_for(target.value) and stale_reasons(evidence, policy, spec, champion):
            evidence = pipeline.refresh_evidence(self.settings, self.store, self.registry, version, save=save_evidence)
        facts = evidence or {}
        context = GateContext(
            model=version.model,
            version=version.version,
            stage=target.value,
            evidence=facts,
            approvals=self.store.approvals(version.model, version.version),
            registered_by=version.registered_by,
            trained_by=(facts.get("lineage") or {}).get("trained_by"),
            access=self.access,
            primary_metric=spec.primary_metric,
        )
        return gate.evaluate(policy, context, actor=self.actor, break_glass=break_glass, champion=champion)

    def approve(self, model: str, version: int, stage: Stage | str, *, comment: str = "", decision: str = "approve") -> Approval:
        """Record a sign-off (or a rejection) for a version's move into a gated stage."""
        from shipyard.policy.access import require_separation
        from shipyard.policy.spec import ApprovalsRule, policy_for

        target = Stage.parse(stage) if isinstance(stage, str) else stage
        if target not in GATED:
            raise InvalidSpec(f"approvals are for staging or production, not {target.value}")
        if decision not in ("approve", "reject"):
            raise InvalidSpec(f"unknown decision {decision!r}; expected approve or reject")
        found = self.store.get_version(model, version)
        if found.stage in (Stage.REJECTED, Stage.ARCHIVED):
            raise Conflict(f"{found.subject} is {found.stage.value}; there is nothing to sign off")
        rule = next((r for r in policy_for(self.settings, model).rules_for(target.value) if isinstance(r, ApprovalsRule)), None)
        role = rule.role if rule is not None else "approver"
        verb = "approve" if decision == "approve" else "reject"
        held = self.access.require_role(self.actor, role, what=f"{verb} {found.subject} for {target.value}")
        if decision == "approve":
            evidence = self.store.evidence(model, version) or {}
            trained_by = (evidence.get("lineage") or {}).get("trained_by")
            require_separation(
                self.actor, {"registered": found.registered_by, "trained": trained_by}, what=f"approve it for {target.value}"
            )
        from shipyard.store.tables import utcnow

        return self.store.record_approval(
            Approval(
                model=model,
                version=version,
                stage=target.value,
                actor=self.actor,
                roles=tuple(sorted(held)),
                decision=decision,
                comment=comment.strip(),
                at=utcnow(),
            )
        )

    def approvals(self, model: str, version: int) -> list[Approval]:
        self.store.get_version(model, version)
        return self.store.approvals(model, version)

    def gate_reports(self, model: str, version: int | None = None) -> list[dict[str, Any]]:
        return self.store.gate_reports(model, version)

    def _mirror(self, model: str, changed: list[int] | None = None) -> str | None:
        """Copy stages into MLflow tags and aliases. The store is already committed, so a
        failure here is reported, not raised; `reconcile` repairs it."""
        try:
            stages = {v.version: v.stage for v in self.store.list_versions(model)}
            self.registry.mirror(model, stages, changed)
        except ShipyardError as exc:
            log.warning("MLflow mirror of %s is behind the store: %s", model, exc.message)
            return exc.message
        return None

    def upgrade_store(self) -> str | None:
        """Migrate the (shared) store's schema; returns the revision it is at."""
        from shipyard.store import database

        self.access.require(self.actor, "operate", what="migrate the store")
        store = Store.open(self.settings.store_url, auto_migrate=True)
        try:
            with database.translate_errors(store.url):
                return database.current_revision(store.engine)
        finally:
            store.close()

    # -- serving ----------------------------------------------------------------------------

    def gateway(self, config: GatewayConfig) -> Gateway:
        """A gateway over this project's deployments, logging predictions under .shipyard/predictions."""
        from shipyard.policy.spec import policy_for
        from shipyard.predlog import PredictionLog
        from shipyard.serving.gateway import Gateway
        from shipyard.serving.metrics import StoreFigures

        log_dir = config.log_dir or self.settings.state_dir / "predictions"
        predlog = PredictionLog(log_dir, sample_rate=config.log_sample, flush_seconds=config.log_flush_seconds)
        categories: dict[str, dict[str, list[str]]] = {}
        for name in self.settings.spec.models:
            if not policy_for(self.settings, name).serving.reject_unknown_categories:
                continue
            schema = self.store.reference_schema(name) or {}
            allowed = {col: spec["isin"] for col, spec in (schema.get("columns") or {}).items() if spec and spec.get("isin")}
            categories[name] = allowed
        intervals = [spec.monitoring.interval for spec in self.settings.spec.models.values() if spec.monitoring.interval > 0]
        if intervals and not config.monitor_seconds:
            config = dataclasses.replace(config, monitor_seconds=min(intervals))
        gateway = Gateway(self.store, self.registry, config, predlog=predlog, categories=categories)
        if config.controller:
            gateway.controller = self.reconcile_rollouts
        gateway.monitor = self._monitor_due
        gateway.figures = StoreFigures(self._figures)
        return gateway

    def _monitor_due(self) -> None:
        """The gateway's monitor pass: each model with an interval, acting as its monitoring actor."""
        from shipyard import loop

        for name, spec in self.settings.spec.models.items():
            if spec.monitoring.interval > 0 and loop.champion(self, name) is not None:
                loop.monitor(loop.as_actor(self, spec.monitoring.actor), name)

    def _figures(self) -> list[tuple[str, str, dict[str, str], float]]:
        """Open alerts and the KPIs, for /metrics."""
        open_alerts: dict[tuple[str, str], float] = {}
        for alert in self.store.alerts(state="open"):
            open_alerts[(alert.model, alert.signal)] = open_alerts.get((alert.model, alert.signal), 0.0) + 1.0
        figures = [
            ("shipyard_alerts_open", "Open alerts by model and signal", {"model": m, "signal": sig}, n)
            for (m, sig), n in open_alerts.items()
        ]
        return figures + self.kpis("30d").gauges()

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

        ``checks`` overrides analysis thresholds for this rollout only (recorded with it, so audited).
        """
        spec = self.settings.model(model).rollout
        strategy = strategy or spec.strategy
        if strategy not in ("canary", "shadow", "bluegreen"):
            raise InvalidSpec(f"unknown strategy {strategy!r}; expected canary, shadow or bluegreen")
        steps = steps or spec.steps_for(strategy)
        if any(not 0 <= s <= 100 for s in steps) or steps != sorted(steps) or (strategy == "canary" and steps[-1] != 100):
            raise InvalidSpec(f"steps {steps} must rise within 0–100 and, for a canary, end at 100")
        found = self.store.get_version(model, version)
        self.access.require(self.actor, "promote:production", what=f"roll out {found.subject}")
        report = self._enforce_gate(found, Stage.PRODUCTION, break_glass=False)
        return self.store.start_rollout(
            actor=self.actor,
            model=model,
            version=version,
            strategy=strategy,
            steps=[float(s) for s in steps],
            interval_seconds=interval if interval is not None else spec.interval,
            checks={**self._rollout_checks(model, checks), "metric": self.settings.model(model).primary_metric},
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

    def rollout_action(self, model: str, action: str) -> Rollout:
        """pause, resume or abort (abort returns all traffic to the champion at once)."""
        if action not in ("pause", "resume", "abort"):
            raise InvalidSpec(f"unknown rollout action {action!r}; expected pause, resume or abort")
        self.access.require(self.actor, "promote:production", what=f"{action} the rollout of {model}")
        return self.store.advance_rollout(actor=self.actor, model=model, action=action)

    def reconcile_rollouts(self) -> list[Decision]:
        """One controller pass over every running rollout (idempotent)."""
        from shipyard.rollout import reconcile

        self.access.require(self.actor, "promote:production", what="drive rollouts")
        decisions = reconcile(self.store, self.settings.predictions_dir, actor=self.actor, labels_dir=self.settings.labels_dir)
        for decision in decisions:
            if decision.action == "promote":
                self._mirror(decision.rollout.model)
        return decisions

    # -- monitoring and the closed loop -------------------------------------------------------

    def monitor(
        self, model: str | None = None, *, window: float | None = None, last: int | None = None, act: bool = True
    ) -> list[MonitorOutcome]:
        """Drift, errors and live performance of each champion's recent traffic; alerts raised and acted on."""
        from shipyard import loop

        return loop.monitor(self, model, window=window, last=last, act=act)

    def alerts(self, model: str | None = None, *, state: str | None = None) -> list[Alert]:
        if model is not None:
            self.store.get_model(model)
        return self.store.alerts(model=model, state=state)

    def ingest_labels(
        self, path: Path, *, model: str, entity_key: str | None = None, label_column: str | None = None
    ) -> Ingested:
        from shipyard import loop

        return loop.ingest_labels(self, path, model=model, entity_key=entity_key, label_column=label_column)

    def trace(self, request_id: str) -> dict[str, Any]:
        from shipyard.tracing import trace

        return trace(self, request_id)

    def kpis(self, since: str = "30d") -> Kpis:
        from datetime import UTC, datetime, timedelta

        from shipyard import kpis
        from shipyard.domain.durations import parse_duration

        now = datetime.now(UTC)
        window = timedelta(seconds=parse_duration(since, unit_required=True))
        return kpis.compute(self.store, since=now - window, now=now, commit_time=self._commit_time)

    def _commit_time(self, commit: str) -> datetime | None:
        """When a commit was made, if the project's git repository has it."""
        import subprocess
        from datetime import datetime

        try:
            done = subprocess.run(
                ["git", "-C", str(self.settings.root), "show", "-s", "--format=%cI", commit],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        text = done.stdout.strip()
        return datetime.fromisoformat(text) if done.returncode == 0 and text else None

    def create_token(self, name: str) -> str:
        """A new bearer token for the gateway; only its sha256 is stored, so it is shown once."""
        import hashlib
        import secrets

        self.access.require(self.actor, "operate", what="create gateway tokens")
        token = secrets.token_urlsafe(32)
        self.store.add_token(actor=self.actor, name=name, token_sha256=hashlib.sha256(token.encode()).hexdigest())
        return token

    def deployments(self) -> list[Deployment]:
        return self.store.deployments()

    def reconcile(self, model: str | None = None) -> list[str]:
        """Repair the MLflow mirror from the store; return the models repaired."""
        self.access.require(self.actor, "operate", what="repair the MLflow mirror")
        names = [model] if model else [m.name for m in self.store.list_models()]
        for name in names:
            stages = {v.version: v.stage for v in self.store.list_versions(name)}
            self.registry.mirror(name, stages)
        return names

    # -- audit ----------------------------------------------------------------------

    def audit_log(self, model: str | None = None) -> list[AuditEvent]:
        if model is not None:
            self.store.get_model(model)
        return self.store.audit_events(model=model)

    def audit_verify(self) -> AuditVerification:
        return self.store.verify_audit()

    def audit_export(self, out: IO[str], *, fmt: str = "jsonl") -> int:
        if fmt != "jsonl":
            raise InvalidSpec(f"unknown export format {fmt!r}; expected jsonl")
        count = 0
        for line in _jsonl(self.store.audit_events()):
            out.write(line)
            count += 1
        return count


def _jsonl(events: list[AuditEvent]) -> Iterator[str]:
    for event in events:
        yield json.dumps(event.to_dict(), sort_keys=True, default=str) + "\n"
