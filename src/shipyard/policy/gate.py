"""A gate: every rule of a policy for one target stage, judged against the evidence."""

from __future__ import annotations

from datetime import UTC, datetime

from shipyard.domain.governance import GateReport, Outcome, RuleResult
from shipyard.policy.rules import CannotJudge, GateContext, evaluate_rule
from shipyard.policy.spec import Policy


def evaluate(
    policy: Policy, ctx: GateContext, *, actor: str, break_glass: bool = False, champion: int | None = None
) -> GateReport:
    results = []
    missing = policy.missing_rules(ctx.stage)
    if missing is not None:
        observed, hint = missing
        results.append(
            RuleResult(
                index=0,
                kind="policy",
                name=f"rules for {ctx.stage}",
                severity="block",
                outcome=Outcome.ERROR,
                observed=observed,
                expected=f"a {ctx.stage} rule list in the policy",
                message=hint,
            )
        )
    results.extend(_task_findings(ctx))
    for index, rule in enumerate(policy.rules_for(ctx.stage)):
        try:
            verdict = evaluate_rule(rule, ctx)
        except CannotJudge as exc:
            results.append(
                RuleResult(
                    index=index,
                    kind=rule.kind,
                    name=rule.kind,
                    severity=rule.severity,
                    outcome=Outcome.ERROR,
                    observed=exc.observed,
                    expected=exc.expected,
                    message=" ".join(filter(None, [rule.message, exc.hint])) or None,
                )
            )
            continue
        failed = Outcome.FAILED if rule.severity == "block" else Outcome.WARNED
        outcome = Outcome.PASSED if verdict.held else failed
        results.append(
            RuleResult(
                index=index,
                kind=rule.kind,
                name=verdict.name,
                severity=rule.severity,
                outcome=outcome,
                observed=verdict.observed,
                expected=verdict.expected,
                message=rule.message,
            )
        )
    return GateReport(
        model=ctx.model,
        version=ctx.version,
        stage=ctx.stage,
        results=tuple(results),
        evaluated_at=datetime.now(UTC),
        actor=actor,
        break_glass=break_glass,
        champion=champion,
    )


def _task_findings(ctx: GateContext) -> list[RuleResult]:
    """What the model's task means for this gate, whatever the rules: a changed label set blocks; evidence kinds that
    do not apply to the model are listed (a rule that needs one of them cannot pass)."""
    found: list[RuleResult] = []
    comparison = ctx.evidence.get("comparison") or {}
    changed = comparison.get("label_set_changed") if isinstance(comparison, dict) else None
    if changed:
        found.append(
            RuleResult(
                index=0,
                kind="task",
                name="label set",
                severity="block",
                outcome=Outcome.ERROR,
                observed=f"this version predicts {changed['candidate']}; "
                f"the champion v{comparison.get('champion_version')} predicts {changed['champion']}",
                expected="the champion's label set",
                message="A model with other classes is a new model: register it under another name, or retire the champion.",
            )
        )
    skipped = ctx.evidence.get("not_applicable") or {}
    if skipped:
        found.append(
            RuleResult(
                index=0,
                kind="task",
                name="evidence not applicable",
                severity="warn",
                outcome=Outcome.PASSED,
                observed="; ".join(f"{kind}: {reason}" for kind, reason in sorted(skipped.items())),
                expected=f"evidence a {ctx.evidence.get('task', 'binary')} model can give",
                message="Rules that need these kinds report them as not applicable and block.",
            )
        )
    return found
