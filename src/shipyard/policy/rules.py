"""Evaluators: one per rule kind, each judging a spec against a version's evidence."""

from __future__ import annotations

import fnmatch
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.domain.errors import InvalidSpec
from shipyard.domain.governance import Approval
from shipyard.domain.tasks import metric_error
from shipyard.policy import cel
from shipyard.policy.access import Access
from shipyard.policy.spec import (
    ApprovalsRule,
    ArtifactsRule,
    CompareChampionRule,
    DataSourcesRule,
    DataValidationRule,
    ExplainabilityRule,
    ExprRule,
    FairnessRule,
    FeatureSkewRule,
    MetricRule,
    ResourcesRule,
    RobustnessRule,
    Rule,
)

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class GateContext:
    """What a gate knows when it judges one version for one target stage."""

    model: str
    version: int
    stage: str
    evidence: dict[str, Any]
    approvals: list[Approval] = field(default_factory=list)
    registered_by: str | None = None
    trained_by: str | None = None
    access: Access = field(default_factory=lambda: Access(None))
    primary_metric: str = "roc_auc"
    evidence_sha256: str | None = None  # the digest of ``evidence``: approvals bound to other evidence have lapsed
    # Moving a former champion back to production (a rollback): the approvals that put it there once still
    # count although its comparison now names the version it replaces; revoked ones never do.
    restoring: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    held: bool
    observed: Any
    expected: Any
    name: str


class CannotJudge(Exception):
    """The rule can reach no verdict on this evidence; the gate reports an error that blocks."""

    def __init__(self, observed: str, *, expected: str = "evidence to judge", hint: str | None = None) -> None:
        super().__init__(observed)
        self.observed = observed
        self.expected = expected
        self.hint = hint


class MissingEvidence(CannotJudge):
    """The evidence lacks what the rule needs."""

    def __init__(self, observed: str) -> None:
        super().__init__(observed, hint="Collect the evidence again with `shipyard evidence collect MODEL VERSION`.")


def _section(evidence: dict[str, Any], *path: str) -> Any:
    node: Any = evidence
    for key in path:
        if not isinstance(node, dict) or key not in node or node[key] is None:
            raise MissingEvidence(f"the evidence has no {'.'.join(path)}")
        node = node[key]
    return node


def _fmt(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def not_applicable(ctx: GateContext, what: str) -> None:
    """Raise when the evidence says ``what`` does not apply to this model (its task, or a model without probabilities)."""
    task = ctx.evidence.get("task")
    if what.startswith("metric ") and task is not None:
        problem = metric_error(task, what.removeprefix("metric "))
        if problem is not None:
            raise CannotJudge(
                f"not applicable: {problem}", expected=f"a rule for a {task} model", hint="Change the policy's rule."
            )
    reason = (ctx.evidence.get("not_applicable") or {}).get(what)
    if reason:
        raise CannotJudge(f"not applicable: {reason}", expected=f"{what} evidence", hint="Change the policy's rule.")


def check_metric(rule: MetricRule, ctx: GateContext) -> Verdict:
    compare = OPERATORS[rule.op]
    not_applicable(ctx, f"metric {rule.metric}")
    expected = f"{rule.op} {rule.value}"
    if rule.slice is None:
        value = float(_section(ctx.evidence, "metrics", "holdout", rule.metric))
        return Verdict(held=compare(value, rule.value), observed=_fmt(value), expected=expected, name=f"metric {rule.metric}")
    by_value = _section(ctx.evidence, "metrics", "slices", rule.slice)
    failing = {
        group: _fmt(metrics[rule.metric])
        for group, metrics in by_value.items()
        if rule.metric in metrics and not compare(float(metrics[rule.metric]), rule.value)
    }
    undefined = [group for group, metrics in by_value.items() if rule.metric not in metrics]
    observed: Any = failing or {g: _fmt(m.get(rule.metric)) for g, m in by_value.items()}
    if undefined:
        observed = {**observed, **{g: "undefined (one class only)" for g in undefined}}
    name = f"metric {rule.metric} on every {rule.slice}"
    return Verdict(held=not failing and not undefined, observed=observed, expected=f"{expected} for each {rule.slice}", name=name)


def check_compare_champion(rule: CompareChampionRule, ctx: GateContext) -> Verdict:
    metric = rule.metric or ctx.primary_metric
    name = f"compare_champion {metric}"
    not_applicable(ctx, f"metric {metric}")
    not_applicable(ctx, "comparison")
    comparison = ctx.evidence.get("comparison")
    if comparison and "label_set_changed" in comparison:
        change = comparison["label_set_changed"]
        raise CannotJudge(
            f"the label set changed: v{comparison.get('champion_version')} predicts {change['champion']}, "
            f"this version {change['candidate']}",
            expected="the champion's label set",
            hint="A model with other classes is a new model: register it under another name.",
        )
    if not comparison:
        return Verdict(
            held=True, observed="no production version to compare with", expected="not worse than the champion", name=name
        )
    boot = comparison["bootstrap"]
    if comparison.get("metric") != metric:
        raise MissingEvidence(f"the comparison is on {comparison.get('metric')}, the rule asks for {metric}")
    level = round(100 * (1 - rule.alpha))
    observed = (
        f"improvement {boot['improvement']:+.4f} vs v{comparison['champion_version']} ({level}% lower bound {boot['ci_low']:+.4f}"
    )
    for test in ("delong", "mcnemar", "wilcoxon"):
        if test in comparison:
            observed += f", {test} p={comparison[test]['p_value']:.3g}"
    observed += ")"
    expected = f"lower bound ≥ {-rule.max_drop:+.4f} (non-inferior at α={rule.alpha})"
    return Verdict(held=boot["ci_low"] >= -rule.max_drop, observed=observed, expected=expected, name=name)


# The per-group rates each fairness metric compares; fairlearn's "between groups" difference
# is max - min of a rate, and equalized odds takes the worse of its two gaps ("worst_case").
FAIRNESS_RATES: dict[str, tuple[str, ...]] = {
    "demographic_parity_difference": ("selection_rate",),
    "equalized_odds_difference": ("true_positive_rate", "false_positive_rate"),
}


def fairness_difference(metric: str, by_group: Mapping[str, Mapping[str, Any]]) -> float:
    """The metric over these groups only, from their rates, as fairlearn defines it."""
    rows = list(by_group.values())
    return max(max(float(g[rate]) for g in rows) - min(float(g[rate]) for g in rows) for rate in FAIRNESS_RATES[metric])


def _group_rates(metric: str, group: str, rates: Mapping[str, Any]) -> str:
    if metric == "equalized_odds_difference":
        text = f"{group} (n={rates['count']}): TPR {rates['true_positive_rate']:.3f}, FPR {rates['false_positive_rate']:.3f}"
    else:
        text = f"{group} (n={rates['count']}): predicted positive {rates['selection_rate']:.3f}"
    if rates.get("positive_rate") is not None:
        text += f", actual positive {rates['positive_rate']:.3f}"
    return text


def check_fairness(rule: FairnessRule, ctx: GateContext) -> Verdict:
    report = _section(ctx.evidence, "fairness", rule.sensitive)
    if report.get("task") in ("regression", "multiclass") or rule.metric not in FAIRNESS_RATES:
        return _check_task_fairness(rule, ctx, report)
    by_group: dict[str, dict[str, Any]] = report.get("by_group") or {}
    column, least = rule.sensitive, rule.min_group_size
    if not by_group or any(not isinstance(v.get("count"), int) for v in by_group.values()):
        raise MissingEvidence(f"the fairness report by {column} has no group sizes")
    rates = FAIRNESS_RATES[rule.metric]
    unrated = [g for g, v in by_group.items() if any(v.get(rate) is None for rate in rates)]
    if unrated:
        raise MissingEvidence(f"the fairness report by {column} has no {' or '.join(rates)} for {', '.join(unrated)}")
    shown = "; ".join(_group_rates(rule.metric, g, v) for g, v in by_group.items())
    # A handful of rows gives a rate far from the truth: such groups are shown, not compared.
    eligible = {g: v for g, v in by_group.items() if v["count"] >= least}
    small = [f"{g} (n={v['count']})" for g, v in by_group.items() if g not in eligible]
    if len(eligible) < 2:
        raise CannotJudge(
            f"only {len(eligible)} group{'' if len(eligible) == 1 else 's'} with at least {least} rows ({shown})",
            expected=f"at least 2 groups of ≥ {least} rows to compare",
            hint=f"Too few rows to compare groups by {column}: collect more holdout rows for the small groups, "
            f"or lower min_group_size on this rule (now {least}).",
        )
    value = fairness_difference(rule.metric, eligible)
    observed = f"{value:.4f} ({shown})"
    if small:
        observed += f"; warning: {', '.join(small)} left out of the difference: fewer than {least} rows"
    if rule.metric == "equalized_odds_difference":
        # A group with one class only has a rate of 0.0 by convention, not by measurement.
        for group, v in eligible.items():
            if v.get("positive_rate") in (0, 0.0):
                observed += f"; {group} has no positive labels: its TPR is 0.0 by convention"
            if v.get("positive_rate") in (1, 1.0):
                observed += f"; {group} has no negative labels: its FPR is 0.0 by convention"
    return Verdict(
        held=value <= rule.max,
        observed=observed,
        expected=f"≤ {rule.max} between groups of ≥ {least} rows",
        name=f"fairness {rule.metric} by {column}",
    )


def _check_task_fairness(rule: FairnessRule, ctx: GateContext, report: Mapping[str, Any]) -> Verdict:
    """A regression's gaps in mean error or mean prediction; a multiclass model's gap in per-class selection rates."""
    from shipyard.checks import task_fairness

    task = str(report.get("task") or ctx.evidence.get("task") or "binary")
    if rule.metric not in task_fairness.METRICS_BY_TASK.get(task, ()):
        raise CannotJudge(
            f"not applicable: fairness {rule.metric} does not apply to a {task} model",
            expected=f"one of {', '.join(task_fairness.METRICS_BY_TASK.get(task, ()))}",
            hint="Change the policy's fairness rule.",
        )
    column, least = rule.sensitive, rule.min_group_size
    by_group: dict[str, Any] = dict(report.get("by_group") or {})
    shown = "; ".join(task_fairness.describe(rule.metric, g, v) for g, v in by_group.items())
    eligible = {g: v for g, v in by_group.items() if int(v.get("count", 0)) >= least}
    if len(eligible) < 2:
        raise CannotJudge(
            f"only {len(eligible)} group(s) with at least {least} rows ({shown})",
            expected=f"at least 2 groups of ≥ {least} rows to compare",
            hint=f"Collect more holdout rows, or lower min_group_size on this rule (now {least}).",
        )
    value = task_fairness.difference(rule.metric, eligible)
    small = [f"{g} (n={v['count']})" for g, v in by_group.items() if g not in eligible]
    observed = f"{value:.4f} ({shown})"
    if small:
        observed += f"; warning: {', '.join(small)} left out of the difference: fewer than {least} rows"
    return Verdict(
        held=value <= rule.max,
        observed=observed,
        expected=f"≤ {rule.max} between groups of ≥ {least} rows",
        name=f"fairness {rule.metric} by {column}",
    )


def check_data_validation(rule: DataValidationRule, ctx: GateContext) -> Verdict:
    report = _section(ctx.evidence, "data_validation")
    rows = max(int(report.get("rows", 0)), 1)
    rate = int(report.get("failing_rows", 0)) / rows
    violations = report.get("violations", [])
    structural = [
        v for v in violations if v.get("check") in ("column_in_dataframe",) or str(v.get("check", "")).startswith("dtype")
    ]
    shown = [f"{v['column']} {v['check']}: {v['failures']}" for v in violations[:5]]
    observed = f"{rate:.2%} of rows fail" + (f" ({'; '.join(shown)})" if shown else "")
    held = rate <= rule.max_failure_rate and not structural
    return Verdict(
        held=held,
        observed=observed,
        expected=f"≤ {rule.max_failure_rate:.2%} failing rows, schema intact",
        name="data_validation",
    )


def check_artifacts(rule: ArtifactsRule, ctx: GateContext) -> Verdict:
    present = set(_section(ctx.evidence, "artifacts"))
    missing = [name for name in rule.required if name not in present]
    observed = f"missing {', '.join(missing)}" if missing else "all present"
    return Verdict(held=not missing, observed=observed, expected=", ".join(rule.required), name="artifacts")


def check_data_sources(rule: DataSourcesRule, ctx: GateContext) -> Verdict:
    sources = list(_section(ctx.evidence, "lineage", "data_sources"))
    unapproved = [s for s in sources if not any(fnmatch.fnmatchcase(s, pattern) for pattern in rule.approved)]
    observed = f"unapproved: {', '.join(unapproved)}" if unapproved else ", ".join(sources)
    return Verdict(
        held=bool(sources) and not unapproved,
        observed=observed,
        expected=f"match {' or '.join(rule.approved)}",
        name="data_sources",
    )


def check_approvals(rule: ApprovalsRule, ctx: GateContext) -> Verdict:
    excluded = {p for p in (ctx.registered_by, ctx.trained_by) if p} if rule.exclude_registrant else set()
    latest: dict[str, Approval] = {}
    for approval in ctx.approvals:
        if approval.stage == ctx.stage:
            latest[approval.actor] = approval  # an actor's latest decision counts
    approved: list[str] = []
    rejected: list[str] = []
    not_counted: list[str] = []
    for actor, approval in latest.items():
        if actor in excluded:
            continue
        # A rejection stands whatever the evidence became: only its author's role or a revocation ends it.
        binds = approval.decision != "reject" and not ctx.restoring
        why = _no_longer_holds(rule, ctx, approval) or (_lapsed(rule, ctx, approval) if binds else None)
        if why is not None:
            whose = f"{actor}'s rejection" if approval.decision == "reject" else actor
            not_counted.append(f"{whose} ({why})")
        elif approval.decision == "reject":
            rejected.append(f"{actor} ({approval.comment})" if approval.comment else actor)
        else:
            approved.append(actor)
    approved.sort()
    if rejected:
        observed = f"rejected by {', '.join(rejected)}"
    else:
        observed = f"{len(approved)} ({', '.join(approved)})" if approved else "0"
    if not_counted:
        observed += f"; not counted: {', '.join(not_counted)}"
    not_registrant = ", not the registrant or trainer" if rule.exclude_registrant else ""
    expected = f"≥ {rule.count} approval{'s' if rule.count > 1 else ''} by {rule.role}{not_registrant}"
    if rule.bind_to_evidence and ctx.restoring:
        expected += " (restoring a former champion: the approvals it was promoted with count unless revoked)"
    elif rule.bind_to_evidence:
        expected += ", given on the current evidence"
    return Verdict(
        held=not rejected and len(approved) >= rule.count, observed=observed, expected=expected, name=f"approvals ({rule.role})"
    )


def _no_longer_holds(rule: ApprovalsRule, ctx: GateContext, approval: Approval) -> str | None:
    """Why the sign-off no longer counts for who gave it: revoked, or the role is gone now (roles are read now)."""
    if approval.revoked:
        return f"revoked: {approval.revoked}"
    held = ctx.access.roles(approval.actor)
    if rule.role in held or "admin" in held:
        return None
    had = rule.role in approval.roles or "admin" in approval.roles
    if ctx.access.principals is not None and approval.actor not in ctx.access.principals:
        return "no longer declared under principals" if had else "not declared under principals"
    return f"no longer holds {rule.role}" if had else f"does not hold {rule.role}"


def _lapsed(rule: ApprovalsRule, ctx: GateContext, approval: Approval) -> str | None:
    """Why an approval given on other evidence no longer counts; None when it holds (or the rule does not bind)."""
    if not rule.bind_to_evidence:
        return None
    if approval.evidence_sha256 is None:
        return "lapsed: no evidence digest was recorded with it; approve again"
    if ctx.evidence_sha256 is None:
        return "lapsed: the gate has no digest of the current evidence to compare with"
    if approval.evidence_sha256 != ctx.evidence_sha256:
        return f"lapsed: given on evidence {approval.evidence_sha256[:12]}, the evidence is now {ctx.evidence_sha256[:12]}"
    return None


def check_robustness(rule: RobustnessRule, ctx: GateContext) -> Verdict:
    not_applicable(ctx, "robustness")
    report = _section(ctx.evidence, "robustness")
    probes = report.get("probes", {})
    broken = [f"{name}: {p.get('error') or 'invalid outputs'}" for name, p in probes.items() if not p.get("ok")]
    noise = probes.get("noise", {})
    mean, worst = noise.get("mean_abs_change"), noise.get("max_abs_change")
    if broken or mean is None or worst is None:
        observed = "; ".join(broken) or "the noise probe could not compare predictions"
        held = False
    else:
        observed = f"all probes ok; score change under noise: mean {mean:.4f}, worst row {worst:.4f}"
        held = mean <= rule.max_mean_change and (rule.max_change is None or worst <= rule.max_change)
    expected = f"no crash, mean change ≤ {rule.max_mean_change}"
    if rule.max_change is not None:
        expected += f", worst row ≤ {rule.max_change}"
    return Verdict(held=held, observed=observed, expected=expected, name="robustness")


def check_feature_skew(rule: FeatureSkewRule, ctx: GateContext) -> Verdict:
    report = _section(ctx.evidence, "feature_skew")
    expected = f"mismatch rate ≤ {rule.max_mismatch_rate}"
    if report.get("error"):
        raise CannotJudge(
            f"skew not measured: {report['error']}",
            expected=expected,
            hint="Materialize the online store (`shipyard features materialize MODEL`), then "
            "`shipyard evidence collect MODEL VERSION`.",
        )
    rate = report.get("mismatch_rate")
    if rate is None:
        raise MissingEvidence("the feature_skew evidence has no mismatch_rate")
    worst = sorted(report.get("features", {}).items(), key=lambda item: -item[1].get("mismatch_rate", 0.0))[:3]
    detail = ", ".join(f"{name} {stats['mismatch_rate']:.1%}" for name, stats in worst if stats.get("mismatch_rate"))
    observed = f"{rate:.2%} of {report.get('entities', 0)} entities differ online" + (f" ({detail})" if detail else "")
    return Verdict(held=rate <= rule.max_mismatch_rate, observed=observed, expected=expected, name="feature_skew")


def check_explainability(rule: ExplainabilityRule, ctx: GateContext) -> Verdict:
    found = _section(ctx.evidence, "explanations")
    expected = []
    if rule.sensitive_not_in_top is not None:
        expected.append(f"no sensitive column or proxy in the top {rule.sensitive_not_in_top}")
    if rule.max_share is not None:
        expected.append(f"no feature above {rule.max_share:.0%} of the attribution")
    if rule.max_rank_change is not None:
        expected.append(f"no top-{rule.top} feature moving more than {rule.max_rank_change} places vs the champion")
    if not found.get("available"):
        # A model no explainer supports cannot show what it rests on: that fails the rule (a warning at severity warn).
        reason = f"no explanations: {found.get('reason')}"
        return Verdict(held=False, observed=reason, expected="; ".join(expected), name="explainability")
    ranking: list[str] = list(found.get("ranking") or [])
    share: dict[str, float] = found.get("share") or {}
    observed, held = [], True
    if rule.sensitive_not_in_top is not None:
        watched = list(dict.fromkeys([*found.get("sensitive", []), *rule.proxies]))
        top = ranking[: rule.sensitive_not_in_top]
        inside = [f"{c} (#{ranking.index(c) + 1})" for c in watched if c in top]
        held = held and not inside
        ranks = ", ".join(f"{c} #{ranking.index(c) + 1}" if c in ranking else f"{c} not an input" for c in watched)
        k = rule.sensitive_not_in_top
        shown = f"top {k}: {', '.join(top)} ({ranks or 'no sensitive columns'})"
        observed.append(f"sensitive in the top {k}: {', '.join(inside)}" if inside else shown)
    if rule.max_share is not None:
        leader = ranking[0] if ranking else None
        largest = float(share.get(leader, 0.0)) if leader else 0.0
        held = held and largest <= rule.max_share
        observed.append(f"largest share {leader} {largest:.1%}")
    if rule.max_rank_change is not None:
        champion = found.get("champion")
        if champion is None:
            observed.append("no champion to compare with")
        elif not champion.get("available"):
            raise MissingEvidence(f"the champion v{champion.get('version')} has no explanations: {champion.get('reason')}")
        else:
            from shipyard.checks.explanations import rank_changes

            changes = rank_changes(ranking, list(champion["ranking"]), rule.top)
            mover = max(changes, key=lambda f: changes[f]) if changes else None
            moved = changes.get(mover, 0) if mover else 0
            held = held and moved <= rule.max_rank_change
            where = f" ({mover})" if moved else ""
            observed.append(f"largest rank change vs v{champion['version']}: {moved}{where}")
    return Verdict(held=held, observed="; ".join(observed), expected="; ".join(expected), name="explainability")


def check_resources(rule: ResourcesRule, ctx: GateContext) -> Verdict:
    found = _section(ctx.evidence, "footprint")
    if not found.get("available"):
        raise CannotJudge(
            f"no footprint: {found.get('reason')}",
            expected="a footprint measured at registration",
            hint="Collect the evidence again with `shipyard evidence collect MODEL VERSION`.",
        )
    checks: list[tuple[str, float | None, float | None, str]] = [
        ("memory", found.get("memory_mb"), rule.max_memory_mb, "MB"),
        ("p50 at 1 row", (found.get("p50_ms") or {}).get("1"), rule.max_p50_ms_1row, "ms"),
        ("CPU per 1k rows", found.get("cpu_s_per_1k"), rule.max_cpu_s_per_1k, "s"),
        ("artifact", found.get("artifact_mb"), rule.max_artifact_mb, "MB"),
    ]
    observed, expected, held = [], [], True
    for label, value, limit, unit in checks:
        if limit is None:
            continue
        if value is None:
            raise MissingEvidence(f"the footprint has no {label}")
        held = held and float(value) <= limit
        observed.append(f"{label} {float(value):.3g} {unit}")
        expected.append(f"{label} ≤ {limit:g} {unit}")
    if rule.max_latency_factor is not None:
        factors = found.get("latency_factor")
        champion = found.get("champion")
        expected.append(f"latency ≤ {rule.max_latency_factor:g}× the champion's")
        if not champion:
            observed.append("no champion to compare with")
        elif not factors:
            raise MissingEvidence(f"the footprint has no latency factor against the champion v{champion.get('version')}")
        else:
            rows, worst = max(factors.items(), key=lambda kv: float(kv[1]))
            held = held and float(worst) <= rule.max_latency_factor
            observed.append(f"latency {float(worst):.2f}× v{champion.get('version')} at {rows} rows")
    return Verdict(held=held, observed="; ".join(observed), expected="; ".join(expected), name="resources")


def check_expr(rule: ExprRule, ctx: GateContext) -> Verdict:
    try:
        held = cel.evaluate(rule.expr, ctx.evidence)
    except InvalidSpec as exc:
        raise MissingEvidence(exc.message) from None
    return Verdict(held=held, observed=str(held).lower(), expected="true", name=rule.name or f"expr {rule.expr}")


EVALUATORS: dict[str, Callable[[Any, GateContext], Verdict]] = {
    "metric": check_metric,
    "compare_champion": check_compare_champion,
    "fairness": check_fairness,
    "data_validation": check_data_validation,
    "artifacts": check_artifacts,
    "data_sources": check_data_sources,
    "approvals": check_approvals,
    "robustness": check_robustness,
    "feature_skew": check_feature_skew,
    "explainability": check_explainability,
    "resources": check_resources,
    "expr": check_expr,
}


def evaluate_rule(rule: Rule, ctx: GateContext) -> Verdict:
    return EVALUATORS[rule.kind](rule, ctx)
