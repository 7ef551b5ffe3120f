"""Policy files: rules per target stage, as declarative specs with a stable ``kind``.

Specs only describe; ``policy.rules`` evaluates them. A bad file is refused at
load with the file, the rule's stage and index, and the problem.

Gates fail closed: a stage whose rule list is not written blocks its gate. Only
an explicit ``production: []`` together with ``allow_empty: true`` lets versions
into a stage without any rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shipyard.checks.data import ColumnConstraint
from shipyard.config import Settings, format_validation_error
from shipyard.domain.errors import InvalidSpec, NotFound
from shipyard.domain.tasks import LOWER_IS_BETTER, MetricName

Severity = Literal["block", "warn"]
Operator = Literal[">=", ">", "<=", "<", "=="]
FairnessMetric = Literal[
    "demographic_parity_difference", "equalized_odds_difference", "mean_error_difference", "mean_prediction_difference"
]
GATED_STAGES = ("staging", "production")


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Severity = "block"
    message: str | None = None


class MetricRule(_Rule):
    """A holdout metric (or a metric on each value of a slice column) against a threshold."""

    kind: Literal["metric"]
    metric: MetricName
    op: Operator
    value: float
    slice: str | None = Field(default=None, description="slice column: the rule must hold for every value of it")

    @model_validator(mode="after")
    def _direction(self) -> MetricRule:
        # A floor on an error (rmse >= 2) passes every bad model: the direction of each metric is known, so say so.
        lower = self.metric in LOWER_IS_BETTER
        if (lower and self.op in (">=", ">")) or (not lower and self.op in ("<=", "<")):
            better = "lower" if lower else "higher"
            bound = "<=" if lower else ">="
            raise ValueError(
                f"{self.metric} is {better}-is-better, so op {self.op!r} bounds it the wrong way; "
                f"write op: {bound!r} to require at {'most' if lower else 'least'} {self.value}"
            )
        return self


class CompareChampionRule(_Rule):
    """Non-inferiority against the champion: the CI of the improvement must stay above -max_drop."""

    kind: Literal["compare_champion"]
    metric: MetricName | None = None
    max_drop: float = Field(default=0.0, ge=0.0)
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)
    resamples: int = Field(default=2000, ge=1000)


class FairnessRule(_Rule):
    """The gap between groups of ``sensitive``, over the groups with at least ``min_group_size`` holdout rows."""

    kind: Literal["fairness"]
    metric: FairnessMetric
    sensitive: str
    max: float = Field(ge=0.0)
    min_group_size: int = Field(default=30, ge=1, description="smaller groups are reported but not compared")


class DataValidationRule(_Rule):
    kind: Literal["data_validation"]
    max_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)


class ArtifactsRule(_Rule):
    kind: Literal["artifacts"]
    required: list[str] = Field(min_length=1)


class DataSourcesRule(_Rule):
    kind: Literal["data_sources"]
    approved: list[str] = Field(min_length=1, description="glob patterns over data source URIs")


class ApprovalsRule(_Rule):
    """Sign-offs by people who hold ``role`` now, not revoked, and (by default) given on the evidence judged."""

    kind: Literal["approvals"]
    count: int = Field(default=1, ge=1)
    role: str = "approver"
    exclude_registrant: bool = True
    bind_to_evidence: bool = Field(default=True, description="an approval given on other evidence has lapsed")


class RobustnessRule(_Rule):
    """No probe may crash the model; small input noise may move scores only a little.

    The worst single row sits near a tree split more often than not, so stability is
    judged on the mean change by default; ``max_change`` adds a bound on the worst row.
    """

    kind: Literal["robustness"]
    max_mean_change: float = Field(default=0.02, gt=0.0)
    max_change: float | None = Field(default=None, gt=0.0)


class FeatureSkewRule(_Rule):
    """Training–serving skew: for a sample of entities, the share whose online feature values differ from the offline
    store's as of now."""

    kind: Literal["feature_skew"]
    max_mismatch_rate: float = Field(ge=0.0, le=1.0)


class ExplainabilityRule(_Rule):
    """What the model's decisions may rest on, from the ``explanations`` evidence (mean |SHAP| per input column).

    ``sensitive_not_in_top``: no sensitive column (the policy's ``sensitive`` list plus ``proxies``) among the
    top k; ``max_share``: no column carries more than that share of all attribution; ``max_rank_change``: no
    feature of either top ``top`` (candidate's or champion's) moves more places than that against the champion.
    """

    kind: Literal["explainability"]
    sensitive_not_in_top: int | None = Field(default=None, ge=1)
    proxies: list[str] = Field(default_factory=list, description="columns that stand in for a sensitive one")
    max_share: float | None = Field(default=None, gt=0.0, le=1.0)
    max_rank_change: int | None = Field(default=None, ge=0)
    top: int = Field(default=5, ge=1, description="the top features max_rank_change compares")

    @model_validator(mode="after")
    def _says_something(self) -> ExplainabilityRule:
        if self.sensitive_not_in_top is None and self.max_share is None and self.max_rank_change is None:
            raise ValueError("an explainability rule needs sensitive_not_in_top, max_share or max_rank_change (or several)")
        return self


class ResourcesRule(_Rule):
    """What running the model costs, from the ``footprint`` evidence measured at registration in a fresh process.

    ``max_latency_factor``: the candidate's median predict time over the champion's, measured side by side,
    at the worst of 1, 64 and 1,024 rows.
    """

    kind: Literal["resources"]
    max_memory_mb: float | None = Field(default=None, gt=0.0, description="resident memory added by loading the model")
    max_p50_ms_1row: float | None = Field(default=None, gt=0.0)
    max_cpu_s_per_1k: float | None = Field(default=None, gt=0.0, description="CPU seconds per 1,000 single-row predictions")
    max_artifact_mb: float | None = Field(default=None, gt=0.0)
    max_latency_factor: float | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _says_something(self) -> ResourcesRule:
        limits = (self.max_memory_mb, self.max_p50_ms_1row, self.max_cpu_s_per_1k, self.max_artifact_mb, self.max_latency_factor)
        if all(limit is None for limit in limits):
            raise ValueError(
                "a resources rule needs at least one limit: max_memory_mb, max_p50_ms_1row, max_cpu_s_per_1k, "
                "max_artifact_mb or max_latency_factor"
            )
        return self


class ExprRule(_Rule):
    """A CEL expression over the evidence (``evidence.metrics.holdout.roc_auc > 0.8``)."""

    kind: Literal["expr"]
    expr: str
    name: str | None = None

    @field_validator("expr")
    @classmethod
    def _compiles(cls, value: str) -> str:
        from shipyard.policy.cel import compile_expression

        compile_expression(value)
        return value


Rule = Annotated[
    MetricRule
    | CompareChampionRule
    | FairnessRule
    | DataValidationRule
    | ArtifactsRule
    | DataSourcesRule
    | ApprovalsRule
    | RobustnessRule
    | FeatureSkewRule
    | ExplainabilityRule
    | ResourcesRule
    | ExprRule,
    Field(discriminator="kind"),
]
RULE_KINDS: tuple[str, ...] = (
    "metric",
    "compare_champion",
    "fairness",
    "data_validation",
    "artifacts",
    "data_sources",
    "approvals",
    "robustness",
    "feature_skew",
    "explainability",
    "resources",
    "expr",
)


class BreakGlass(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed: bool = False


class ServingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reject_unknown_categories: bool = Field(
        default=False, description="refuse requests whose categories the training data never had"
    )


class Policy(BaseModel):
    """One model's policy: evidence settings plus rules per target stage.

    A stage's list is ``None`` when the policy does not write it: its gate blocks.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    slices: list[str] = Field(default_factory=list)
    sensitive: list[str] = Field(default_factory=list)
    constraints: dict[str, ColumnConstraint] = Field(default_factory=dict)
    break_glass: BreakGlass = BreakGlass()
    serving: ServingSpec = ServingSpec()
    allow_empty: bool = Field(default=False, description="an explicitly empty stage list (`production: []`) lets versions in")
    staging: list[Rule] | None = None
    production: list[Rule] | None = None
    # Where the policy came from, for the gate's message when a stage has no rules.
    _file: str | None = PrivateAttr(default=None)
    _model: str | None = PrivateAttr(default=None)

    @field_validator("staging", "production")
    @classmethod
    def _empty_only_on_purpose(cls, rules: list[Rule] | None, info: ValidationInfo) -> list[Rule] | None:
        if rules == [] and not info.data.get("allow_empty", False):
            stage = info.field_name
            raise ValueError(
                f"an empty list lets every version into {stage} without any rule; write the {stage} rules, "
                f"or, if {stage} needs no check on purpose, add allow_empty: true at the top of the file"
            )
        return rules

    def _written(self, stage: str) -> list[Rule] | None:
        return self.staging if stage == "staging" else self.production if stage == "production" else None

    def rules_for(self, stage: str) -> list[Rule]:
        """The stage's rules; empty both when it has none on purpose and when they are missing (see ``declares``)."""
        return list(self._written(stage) or [])

    def declares(self, stage: str) -> bool:
        """Whether the policy writes a rule list for the stage (possibly empty, with allow_empty)."""
        return self._written(stage) is not None

    def missing_rules(self, stage: str) -> tuple[str, str] | None:
        """Why a gated stage's gate has nothing to judge, and what to write; None when the stage is declared."""
        if stage not in GATED_STAGES or self.declares(stage):
            return None
        empty = f"{stage}: [] with allow_empty: true lets versions in without any rule"
        if self._file is not None:
            return (
                f"{self._file} has no {stage} rules",
                f"Write {stage}: with its rules in {self._file} (or, on purpose, {empty}).",
            )
        if self._model is not None:
            return (
                f"model {self._model} has no policy, so no {stage} rules",
                f"Set models.{self._model}.policy in shipyard.yaml to a policy file with {stage}: rules "
                f"(or, on purpose, {empty}).",
            )
        return f"the policy has no {stage} rules", f"Write {stage}: with its rules (or, on purpose, {empty})."

    def fairness_columns(self) -> list[str]:
        named = [rule.sensitive for stage in GATED_STAGES for rule in self.rules_for(stage) if isinstance(rule, FairnessRule)]
        return list(dict.fromkeys([*self.sensitive, *named]))

    def slice_columns(self) -> list[str]:
        named = [
            rule.slice for stage in GATED_STAGES for rule in self.rules_for(stage) if isinstance(rule, MetricRule) and rule.slice
        ]
        return list(dict.fromkeys([*self.slices, *named]))

    def comparison_settings(self) -> CompareChampionRule | None:
        for stage in GATED_STAGES:
            for rule in self.rules_for(stage):
                if isinstance(rule, CompareChampionRule):
                    return rule
        return None


def load_policy(path: Path) -> Policy:
    import yaml

    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"policy file {path} does not exist", hint="Check models.*.policy in shipyard.yaml.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidSpec(f"policy {path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidSpec(f"policy {path}: expected a mapping with keys staging, production, …; got {type(raw).__name__}")
    for stage in GATED_STAGES:
        rules = raw.get(stage)
        if rules is not None and not isinstance(rules, list):
            raise InvalidSpec(f"policy {path}: {stage} must be a list of rules; got {type(rules).__name__}")
        for index, rule in enumerate(rules or []):
            if not isinstance(rule, dict) or "kind" not in rule:
                raise InvalidSpec(
                    f"policy {path}: {stage} rule {index}: every rule needs a kind; expected one of {', '.join(RULE_KINDS)}"
                )
            if rule["kind"] not in RULE_KINDS:
                raise InvalidSpec(
                    f"policy {path}: {stage} rule {index}: unknown kind {rule['kind']!r}; expected one of {', '.join(RULE_KINDS)}"
                )
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        raise InvalidSpec(f"policy {path}: {_rule_locations(format_validation_error(exc))}") from None
    policy._file = str(path)
    return policy


def _rule_locations(text: str) -> str:
    """pydantic says ``production.2.metric.value``; say ``production rule 2 (metric): value``."""
    import re

    return re.sub(
        r"\b(staging|production)\.(\d+)\.(" + "|".join(RULE_KINDS) + r")\.",
        lambda m: f"{m.group(1)} rule {m.group(2)} ({m.group(3)}): ",
        text,
    )


def policy_for(settings: Settings, model_name: str) -> Policy:
    spec = settings.model(model_name)
    if spec.policy:
        return load_policy(settings.resolve(spec.policy))
    unset = Policy()  # both gated stages block: no policy, no rule
    unset._model = model_name
    return unset
