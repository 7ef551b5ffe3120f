"""Evidence: every fact the checks establish about a version, in one JSON document.

The pipeline collects it at training (or adoption) time; a gate collects it
again when the policy needs something it lacks, or the champion has changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.checks.evaluation import THRESHOLD, binary_metrics, positive_scores
from shipyard.config import ModelSpec
from shipyard.domain.documents import json_safe
from shipyard.policy.spec import GATED_STAGES, Policy

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DEFAULT_RESAMPLES = 2000
DEFAULT_ALPHA = 0.05


@dataclass(frozen=True, slots=True, kw_only=True)
class Champion:
    version: int
    model: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Lineage:
    data_sources: list[str]
    data_fingerprint: str
    git_commit: str | None
    git_clean: bool | None
    trained_by: str | None
    run_id: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_sources": self.data_sources,
            "data_fingerprint": self.data_fingerprint,
            "git_commit": self.git_commit,
            "git_clean": self.git_clean,
            "trained_by": self.trained_by,
            "run_id": self.run_id,
        }


def comparison_settings(policy: Policy, spec: ModelSpec, task: str | None = None) -> tuple[str, int, float]:
    rule = policy.comparison_settings()
    if rule is None:
        return spec.metric(task), DEFAULT_RESAMPLES, 1 - 2 * DEFAULT_ALPHA
    return rule.metric or spec.metric(task), rule.resamples, 1 - 2 * rule.alpha


def slice_metrics(y: np.ndarray, scores: np.ndarray, holdout: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
    import numpy as np

    slices: dict[str, Any] = {}
    for column in columns:
        groups: dict[str, Any] = {}
        values = holdout[column].to_numpy()
        for value in sorted(set(values.tolist()), key=str):
            mask = values == value
            part_y = y[mask]
            entry: dict[str, Any] = {"rows": int(mask.sum()), "positives": int(part_y.sum())}
            if len(np.unique(part_y)) == 2:
                entry.update(binary_metrics(part_y, scores[mask]))
            groups[str(value)] = entry
        slices[column] = groups
    return slices


def collect(
    *,
    model: Any,
    spec: ModelSpec,
    policy: Policy,
    frame: pd.DataFrame,
    holdout: pd.DataFrame,
    features: list[str],
    target: pd.Series,
    holdout_target: pd.Series,
    schema: dict[str, Any],
    lineage: Lineage,
    champion: Champion | None,
    split_method: str,
    train_rows: int,
    task: str = "binary",
    task_declared: bool = True,
    train_target: pd.Series | None = None,
) -> dict[str, Any]:
    """Score the model on the holdout and run every check the policy can ask about."""
    import numpy as np

    from shipyard.checks import comparison, data, explanations, fairness, robustness

    holdout_x = holdout[features].reset_index(drop=True)
    if task != "binary":
        return _collect_task(
            task, task_declared, model=model, spec=spec, policy=policy, frame=frame, holdout=holdout, holdout_x=holdout_x,
            target=target, holdout_target=holdout_target, train_target=train_target if train_target is not None else target,
            schema=schema, lineage=lineage, champion=champion, split_method=split_method, train_rows=train_rows,
        )  # fmt: skip
    y = holdout_target.to_numpy().astype(int)
    scores = positive_scores(model, holdout_x)
    predictions = (scores >= THRESHOLD).astype(int)
    evidence: dict[str, Any] = {
        "metrics": {
            "holdout": binary_metrics(y, scores),
            "slices": slice_metrics(y, scores, holdout.reset_index(drop=True), policy.slice_columns()),
        },
        "rows": {"train": train_rows, "holdout": len(holdout)},
        "split": split_method,
        "lineage": lineage.to_dict(),
        "task": task,
        "task_source": "declared" if task_declared else "inferred",
    }
    metric, resamples, confidence = comparison_settings(policy, spec)
    champion_features = features
    if champion is not None:
        own = getattr(champion.model, "feature_names_in_", None)
        champion_features = [str(c) for c in own] if own is not None else features
        champion_x = holdout[champion_features].reset_index(drop=True)
        champion_scores = positive_scores(champion.model, champion_x)
        result = comparison.compare(
            y, scores, champion_scores, metric=metric, resamples=resamples, seed=spec.data.seed, confidence=confidence
        )
        evidence["comparison"] = {**result, "champion_version": champion.version}
    else:
        evidence["comparison"] = None
    evidence["fairness"] = fairness.fairness_reports(y, predictions, holdout.reset_index(drop=True), policy.fairness_columns())
    labelled = frame.copy()
    labelled[spec.data.target] = target.to_numpy()
    evidence["data_validation"] = data.validate(schema, labelled, policy.constraints)
    evidence["robustness"] = robustness.probe(
        lambda rows: np.asarray(positive_scores(model, rows)), holdout_x, seed=spec.data.seed
    )
    evidence["explanations"] = explanations.explain(
        model,
        holdout,
        features,
        seed=spec.data.seed,
        slices=policy.slice_columns(),
        sensitive=policy.fairness_columns(),
        champion=(champion.version, champion.model, champion_features) if champion is not None else None,
    )
    safe: dict[str, Any] = json_safe(evidence)
    return safe


def _collect_task(
    task: str, task_declared: bool, *, model: Any, spec: ModelSpec, policy: Policy, frame: pd.DataFrame,
    holdout: pd.DataFrame, holdout_x: pd.DataFrame, target: pd.Series, holdout_target: pd.Series,
    train_target: pd.Series, schema: dict[str, Any], lineage: Lineage, champion: Champion | None, split_method: str,
    train_rows: int,
) -> dict[str, Any]:  # fmt: skip
    """A regression or multiclass model's evidence (``checks.task_evidence``), with the sections every task shares."""
    from shipyard.checks import data, explanations, task_evidence

    champion_x = None
    if champion is not None:
        own = getattr(champion.model, "feature_names_in_", None)
        champion_x = holdout[[str(c) for c in own]].reset_index(drop=True) if own is not None else holdout_x
    found = task_evidence.collect(
        task=task,
        model=model,
        holdout=holdout,
        holdout_x=holdout_x,
        holdout_target=holdout_target,
        train_target=train_target,
        slice_columns=policy.slice_columns(),
        fairness_columns=policy.fairness_columns(),
        champion_model=champion.model if champion is not None else None,
        champion_x=champion_x,
        comparison=comparison_settings(policy, spec, task),
        seed=spec.data.seed,
    )
    if found["comparison"] is not None and champion is not None:
        found["comparison"] = {**found["comparison"], "champion_version": champion.version}
    labelled = frame.copy()
    labelled[spec.data.target] = target.to_numpy()
    evidence: dict[str, Any] = {
        "task": task,
        "task_source": "declared" if task_declared else "inferred",
        **found,
        "rows": {"train": train_rows, "holdout": len(holdout)},
        "split": split_method,
        "lineage": lineage.to_dict(),
        "data_validation": data.validate(schema, labelled, policy.constraints),
    }
    # SHAP explanations are computed on a binary classifier's positive-class output; for other tasks they are
    # reported unavailable (an explainability rule then blocks, saying why), and listed as not applicable.
    reason = f"explanations are computed for binary classifiers, not yet for a {task} model"
    evidence["explanations"] = {**explanations.unavailable(reason), "sensitive": list(policy.fairness_columns())}
    evidence["not_applicable"] = {**evidence.get("not_applicable", {}), "explanations": reason}
    safe: dict[str, Any] = json_safe(evidence)
    return safe


def stale_reasons(evidence: dict[str, Any] | None, policy: Policy, spec: ModelSpec, champion_version: int | None) -> list[str]:
    """Why stored evidence cannot judge this policy now (empty when it can)."""
    if evidence is None:
        return ["no evidence was collected for this version"]
    reasons = []
    comparison = evidence.get("comparison")
    held = comparison.get("champion_version") if comparison else None
    if held != champion_version:
        reasons.append(f"the champion is now {champion_version or 'none'}, the evidence compared with {held or 'none'}")
    elif comparison and "label_set_changed" not in comparison:
        metric, resamples, confidence = comparison_settings(policy, spec, evidence.get("task"))
        boot = comparison.get("bootstrap", {})
        if comparison.get("metric") != metric or boot.get("resamples") != resamples or boot.get("confidence") != confidence:
            reasons.append("the policy's comparison settings changed")
    kinds = {rule.kind for stage in GATED_STAGES for rule in policy.rules_for(stage)}
    explained = evidence.get("explanations")
    if explained is None:
        if "explainability" in kinds:
            reasons.append("no explanations")
    elif explained.get("sensitive") != policy.fairness_columns():
        reasons.append("the policy's sensitive columns changed since the explanations")
    if "resources" in kinds and evidence.get("footprint") is None:
        reasons.append("no footprint")
    slices = evidence.get("metrics", {}).get("slices", {})
    reasons += [f"no metrics by {c}" for c in policy.slice_columns() if c not in slices]
    fairness = evidence.get("fairness") or {}
    for column in policy.fairness_columns():
        if column not in fairness:
            reasons.append(f"no fairness report by {column}")
        elif any("count" not in group for group in (fairness[column].get("by_group") or {}).values()):
            # The fairness rule weighs each group by its size; without sizes it cannot judge.
            reasons.append(f"no group sizes in the fairness report by {column}")
    return reasons
