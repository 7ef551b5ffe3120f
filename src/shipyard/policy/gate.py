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
