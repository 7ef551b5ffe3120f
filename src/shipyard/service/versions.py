"""Versions through their stages: reading them, gates, approvals, promotions, the MLflow mirror."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.domain.entities import Model, ModelVersion, Promotion, StageChange
from shipyard.domain.errors import Conflict, GateBlocked, InvalidSpec, NotFound, PermissionDenied, ShipyardError
from shipyard.domain.governance import Approval, GateReport
from shipyard.domain.stages import STAGE_ALIASES, Stage, check_transition
from shipyard.service.mirror import Mirroring
from shipyard.service.signer import checkpoint_promotion
from shipyard.store.repository import ANY_CHAMPION, ChampionChanged

if TYPE_CHECKING:
    from shipyard.policy.spec import Policy

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


def _stage(value: Stage | str) -> Stage:
    return Stage.parse(value) if isinstance(value, str) else value


class Versions(Mirroring):
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

    def champion(self, model: str) -> ModelVersion | None:
        return next((v for v in self.store.list_versions(model) if v.stage is Stage.PRODUCTION), None)

    def describe(self, model: str, version: int | None = None, *, with_run: bool = False) -> VersionDetail:
        """A version with its history, evidence, approvals and gate reports, from the store alone.

        Its aliases are the ones the stages give it (what MLflow shows once the mirror is done; see
        ``mirror_backlog``). ``with_run`` asks MLflow for the training run and the aliases it holds now.
        """
        found = self.version(model, version)
        run = None
        versions = self.store.list_versions(model)
        aliases = sorted(
            alias
            for alias, stage in STAGE_ALIASES.items()
            if max((v.version for v in versions if v.stage is stage), default=None) == found.version
        )
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

    def task_of(self, model: str, version: int | None = None) -> tuple[str, list[str] | None]:
        """A model's task and, for a multiclass one, its label set: the version's evidence (else the champion's,
        else the latest version's) says what the pipeline found; the declared task when no evidence has one."""
        declared = self.settings.model(model).task
        versions = self.store.list_versions(model)
        ordered = [v for v in versions if v.version == version] if version is not None else []
        ordered += [v for v in versions if v.stage is Stage.PRODUCTION] + list(reversed(versions))
        for found in ordered:
            evidence = self.store.evidence(model, found.version) or {}
            if evidence.get("task"):
                return str(evidence["task"]), evidence.get("classes")
        return declared or "binary", None

    def evidence(self, model: str, version: int) -> dict[str, Any] | None:
        self.store.get_version(model, version)
        return self.store.evidence(model, version)

    def approvals(self, model: str, version: int) -> list[Approval]:
        self.store.get_version(model, version)
        return self.store.approvals(model, version)

    def gate_reports(self, model: str, version: int | None = None) -> list[dict[str, Any]]:
        return self.store.gate_reports(model, version)

    # -- evidence -----------------------------------------------------------------------

    def collect_evidence(self, model: str, version: int) -> dict[str, Any]:
        """Collect a version's evidence again (new policy columns, a new champion); stored and audited."""
        found = self.store.get_version(model, version)
        self.authorize("train", what=f"collect evidence for {found.subject}", subject=found.subject)
        return self._refresh_evidence(found)

    def _refresh_evidence(self, version: ModelVersion) -> dict[str, Any]:
        from shipyard import pipeline

        evidence = pipeline.refresh_evidence(self.settings, self.store, self.registry, version)
        self.store.save_evidence(actor=self.actor, model=version.model, version=version.version, data=evidence)
        return evidence

    def _current_evidence(self, version: ModelVersion, policy: Policy, champion: int | None) -> dict[str, Any]:
        """The version's evidence, collected again first when it cannot judge the policy now (kept for the next time)."""
        from shipyard.evidence import stale_reasons

        evidence = self.store.evidence(version.model, version.version)
        if stale_reasons(evidence, policy, self.settings.model(version.model), champion):
            evidence = self._refresh_evidence(version)
        return evidence or {}

    def _served_before(self, version: ModelVersion) -> bool:
        history = self.store.stage_history(version.model, version.version)
        return any(change.to_stage is Stage.PRODUCTION for change in history)

    def _champion_besides(self, version: ModelVersion) -> int | None:
        champion = self.champion(version.model)
        return champion.version if champion is not None and champion.version != version.version else None

    # -- gates ------------------------------------------------------------------------------

    def gate(self, model: str, version: int, stage: Stage | str) -> GateReport:
        """Evaluate the gate for a stage; changes no stage (evidence collected again is kept)."""
        target = _stage(stage)
        if target not in GATED:
            raise InvalidSpec(f"stage {target.value} has no gate; expected staging or production")
        return self._evaluate_gate(self.store.get_version(model, version), target)

    def enforce_gate(self, version: ModelVersion, target: Stage, *, break_glass: bool = False) -> GateReport | None:
        """Judge the move; a blocked report is stored and audited before the refusal."""
        if target not in GATED:
            return None
        report = self._evaluate_gate(version, target, break_glass=break_glass)
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

    def _evaluate_gate(self, version: ModelVersion, target: Stage, *, break_glass: bool = False) -> GateReport:
        from shipyard.policy import gate
        from shipyard.policy.rules import GateContext
        from shipyard.policy.spec import policy_for
        from shipyard.store.audit import canonical_sha256

        # Judge only the files that were registered: a tampered version is refused before any rule.
        self.registry.verify_version(version)
        spec = self.settings.model(version.model)
        policy = policy_for(self.settings, version.model)
        champion = self._champion_besides(version)
        rules = policy.rules_for(target.value)
        evidence = self._current_evidence(version, policy, champion) if rules else {}
        context = GateContext(
            model=version.model,
            version=version.version,
            stage=target.value,
            evidence=evidence,
            approvals=self.store.approvals(version.model, version.version),
            registered_by=version.registered_by,
            trained_by=(evidence.get("lineage") or {}).get("trained_by"),
            access=self.access,
            primary_metric=spec.metric(evidence.get("task") if evidence else None),
            evidence_sha256=canonical_sha256(evidence) if evidence else None,
            restoring=target is Stage.PRODUCTION and version.stage is Stage.ARCHIVED and self._served_before(version),
        )
        return gate.evaluate(policy, context, actor=self.actor, break_glass=break_glass, champion=champion)

    # -- changing stage ---------------------------------------------------------

    def promote(self, model: str, version: int, to: Stage | str, *, reason: str, break_glass: bool = False) -> PromotionOutcome:
        """Move a version; moves into staging or production pass that stage's gate first."""
        target = _stage(to)
        if target is Stage.CANDIDATE:  # no move leads there, so no role may make it
            raise InvalidSpec(
                "a version is a candidate only from its registration; no move leads back to candidate",
                hint="Promote to staging, production, archived or rejected.",
            )
        if not reason or not reason.strip():
            raise InvalidSpec("a promotion needs a reason", hint="Pass --reason TEXT: it is kept in the audit log.")
        current = self.store.get_version(model, version)
        self.authorize(f"promote:{target.value}", what=f"move {current.subject} to {target.value}", subject=current.subject)
        check_transition(current.subject, current.stage, target)
        if break_glass:
            self._allow_break_glass(model, current.subject)
        for attempt in range(3):
            report = self.enforce_gate(current, target, break_glass=break_glass)
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
        checkpoint_promotion(self, target)  # the server signs the history at every move into production
        changed = [promotion.version.version, *(v.version for v in promotion.archived)]
        error = self.mirror(model, changed=changed)
        return PromotionOutcome(promotion=promotion, mirrored=error is None, mirror_error=error, gate=report)

    def _allow_break_glass(self, model: str, subject: str) -> None:
        from shipyard.policy.spec import policy_for

        self.authorize("break_glass", what="promote with --break-glass", subject=subject)
        if not policy_for(self.settings, model).break_glass.allowed:
            refusal = PermissionDenied(
                f"the policy of {model} does not allow break-glass promotions",
                hint="Set break_glass: {allowed: true} in the model's policy file to allow them for admins.",
            )
            self.audit_denial("break_glass", subject, refusal, asked="promote with --break-glass")
            raise refusal

    # -- approvals ----------------------------------------------------------------------

    def approve(self, model: str, version: int, stage: Stage | str, *, comment: str = "", decision: str = "approve") -> Approval:
        """Record a sign-off (or a rejection) for a version's move into a gated stage, bound to its current evidence."""
        from shipyard.policy.access import require_separation
        from shipyard.policy.spec import ApprovalsRule, policy_for
        from shipyard.store.audit import canonical_sha256
        from shipyard.store.tables import utcnow

        target = _stage(stage)
        if target not in GATED:
            raise InvalidSpec(f"approvals are for staging or production, not {target.value}")
        if decision not in ("approve", "reject"):
            raise InvalidSpec(f"unknown decision {decision!r}; expected approve or reject")
        found = self.store.get_version(model, version)
        if found.stage in (Stage.REJECTED, Stage.ARCHIVED):
            raise Conflict(f"{found.subject} is {found.stage.value}; there is nothing to sign off")
        policy = policy_for(self.settings, model)
        rule = next((r for r in policy.rules_for(target.value) if isinstance(r, ApprovalsRule)), None)
        role = rule.role if rule is not None else "approver"
        verb = "approve" if decision == "approve" else "reject"
        what = f"{verb} {found.subject} for {target.value}"
        held = self.authorize_role(role, what=what, subject=found.subject, action="approval")
        evidence = self._current_evidence(found, policy, self._champion_besides(found))
        if decision == "approve":
            trained_by = (evidence.get("lineage") or {}).get("trained_by")
            try:
                require_separation(
                    self.actor, {"registered": found.registered_by, "trained": trained_by}, what=f"approve it for {target.value}"
                )
            except PermissionDenied as exc:
                self.audit_denial("approval", found.subject, exc, asked=what)
                raise
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
                evidence_sha256=canonical_sha256(evidence) if evidence else None,
            )
        )

    # -- the store and the mirror ------------------------------------------------------

    def upgrade_store(self) -> str | None:
        """Migrate the (shared) store's schema; returns the revision it is at."""
        from shipyard.store import database
        from shipyard.store.repository import Store

        self.migration_access.require(self.actor, "operate", what="migrate the store")  # no audit: the store may be unusable
        store = Store.open(self.settings.store_url, auto_migrate=True)
        try:
            with database.translate_errors(store.url):
                return database.current_revision(store.engine)
        finally:
            store.close()
