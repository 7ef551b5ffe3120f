"""A model card in markdown, written from the evidence rather than by hand."""

from __future__ import annotations

from typing import Any

from shipyard.config import ModelSpec


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows),
    ]


def render(model: str, spec: ModelSpec, evidence: dict[str, Any]) -> str:
    lineage = evidence.get("lineage", {})
    holdout = evidence.get("metrics", {}).get("holdout", {})
    rows = evidence.get("rows", {})
    task = evidence.get("task", "binary")
    lines = [
        f"# Model card: {model}",
        "",
        "## Intended use",
        "",
        spec.description or "(no description in shipyard.yaml)",
        "",
        f"- Owner: {spec.owner}",
        f"- Risk tier: {spec.risk_tier}",
        f"- Task: {task}" + (f" (classes {', '.join(evidence['classes'])})" if evidence.get("classes") else ""),
        f"- Trained by: {lineage.get('trained_by', 'unknown')}, run {lineage.get('run_id', 'unknown')}",
        "",
        "## Data",
        "",
        f"- Sources: {', '.join(lineage.get('data_sources', [])) or 'unknown'}",
        f"- Fingerprint (sha256): {lineage.get('data_fingerprint', 'unknown')}",
        f"- Rows: {rows.get('train', '?')} for training, {rows.get('holdout', '?')} held out ({evidence.get('split', '?')})",
        f"- Code: commit {lineage.get('git_commit') or 'unknown'}"
        + (
            ""
            if lineage.get("git_clean") is None
            else (", clean work tree" if lineage.get("git_clean") else ", uncommitted changes")
        ),
        "",
        "## Holdout metrics",
        "",
        *_table(["metric", "value"], [[k, v] for k, v in holdout.items()]),
        "",
    ]
    for column, groups in evidence.get("metrics", {}).get("slices", {}).items():
        lines += [f"### By {column}", ""]
        shown = {"binary": ["roc_auc", "accuracy"], "multiclass": ["accuracy", "f1_macro"]}.get(task, ["rmse", "mae"])
        lines += _table(
            ["value", "rows", *shown], [[g, m.get("rows", "?"), *(m.get(k, "n/a") for k in shown)] for g, m in groups.items()]
        )
        lines.append("")
    comparison = evidence.get("comparison")
    if comparison and "label_set_changed" in comparison:
        changed = comparison["label_set_changed"]
        lines += [
            "## Against the champion",
            "",
            f"Not compared: version {comparison.get('champion_version')} predicts {', '.join(changed['champion'])}; "
            f"this version {', '.join(changed['candidate'])}.",
            "",
        ]
    elif comparison:
        boot = comparison["bootstrap"]
        lines += [
            "## Against the champion",
            "",
            f"Version {comparison['champion_version']} on the same holdout: {comparison['metric']} "
            f"{boot['candidate']:.4f} vs {boot['champion']:.4f}, improvement {boot['improvement']:+.4f} "
            f"({round(100 * boot['confidence'])}% CI {boot['ci_low']:+.4f} … {boot['ci_high']:+.4f}, "
            f"{boot['resamples']} paired bootstrap resamples)",
            "",
        ]
    fairness = evidence.get("fairness", {})
    if fairness:
        lines += ["## Fairness", ""]
        for column, report in fairness.items():
            if report.get("task") in ("regression", "multiclass"):
                lines += [*_task_fairness(column, report), ""]
                continue
            lines.append(
                f"By {column}: demographic parity difference {report['demographic_parity_difference']:.4f}, "
                f"equalized odds difference {report['equalized_odds_difference']:.4f}"
            )
            lines.append("")
            lines += _table(
                ["group", "count", "selection rate", "true positive rate"],
                [[g, v["count"], v["selection_rate"], v["true_positive_rate"]] for g, v in report["by_group"].items()],
            )
            lines.append("")
    lines += _explanations(evidence.get("explanations"))
    lines += _footprint(evidence.get("footprint"))
    lines += ["## Limitations", ""]
    lines += [f"- {item}" for item in limitations(evidence)] or ["- None found by the automated checks."]
    lines.append("")
    return "\n".join(lines)


def _task_fairness(column: str, report: dict[str, Any]) -> list[str]:
    if report["task"] == "regression":
        return [
            f"By {column}: mean error difference {report['mean_error_difference']:.4f}, "
            f"mean prediction difference {report['mean_prediction_difference']:.4f}",
            "",
            *_table(
                ["group", "count", "mean error", "mean abs error", "mean prediction", "mean target"],
                [
                    [g, v["count"], v["mean_error"], v["mean_abs_error"], v["mean_prediction"], v["mean_target"]]
                    for g, v in report["by_group"].items()
                ],
            ),
        ]
    by_group = report["by_group"]
    classes = list(next(iter(by_group.values()))["selection_rate"]) if by_group else []
    return [
        f"By {column}: largest gap in a class's selection rate {report['demographic_parity_difference']:.4f}",
        "",
        *_table(
            ["group", "count", *(f"predicted {c}" for c in classes)],
            [[g, v["count"], *(v["selection_rate"][c] for c in classes)] for g, v in by_group.items()],
        ),
    ]


def _explanations(found: dict[str, Any] | None) -> list[str]:
    if not found:
        return []
    lines = ["## What the scores rest on", ""]
    if not found.get("available"):
        return [*lines, f"No explanation: {found.get('reason')}", ""]
    lines += [
        f"Mean absolute SHAP value per input column ({found['explainer']}, {found['output']}, {found['rows']} holdout rows, "
        f"seed {found['seed']}); one-hot columns are summed back to their source column.",
        "",
        *_table(["feature", "mean abs SHAP", "share"], [[t["feature"], t["mean_abs"], t["share"]] for t in found.get("top", [])]),
        "",
    ]
    champion = found.get("champion")
    if champion and champion.get("available"):
        lines += [f"The champion (version {champion['version']}) ranks them: {', '.join(champion['ranking'][:5])}.", ""]
    return lines


def _footprint(found: dict[str, Any] | None) -> list[str]:
    if not found:
        return []
    lines = ["## Footprint", ""]
    if not found.get("available"):
        return [*lines, f"Not measured: {found.get('reason')}", ""]
    p50 = found.get("p50_ms") or {}
    rows = [
        ["artifact (MB)", found.get("artifact_mb")],
        ["memory added by loading (MB)", found.get("memory_mb")],
        ["load time (s)", found.get("load_s")],
        *[[f"median predict at {n} rows (ms)", p50.get(n)] for n in ("1", "64", "1024")],
        ["CPU seconds per 1,000 single-row predictions", found.get("cpu_s_per_1k")],
        ["served by", found.get("runtime")],
    ]
    return [*lines, *_table(["figure", "value"], rows), ""]


def limitations(evidence: dict[str, Any]) -> list[str]:
    found = []
    validation = evidence.get("data_validation") or {}
    for violation in validation.get("violations", [])[:5]:
        found.append(
            f"Training data breaks the reference schema: {violation['column']} {violation['check']} "
            f"({violation['failures']} rows)."
        )
    for name, probe in (evidence.get("robustness") or {}).get("probes", {}).items():
        if not probe.get("ok"):
            found.append(f"The model fails the {name.replace('_', ' ')} probe: {probe.get('error') or 'invalid outputs'}.")
    for column, report in (evidence.get("fairness") or {}).items():
        if report.get("mean_error_difference", 0.0) > 1.0:
            found.append(f"Mean errors differ by {report['mean_error_difference']:.2f} across {column}.")
        if report.get("demographic_parity_difference", 0.0) > 0.1:
            found.append(f"Selection rates differ by {report['demographic_parity_difference']:.2f} across {column}.")
    explained = evidence.get("explanations") or {}
    if explained and not explained.get("available"):
        found.append(f"No explainer supports the model: {explained.get('reason')}.")
    for column, groups in evidence.get("metrics", {}).get("slices", {}).items():
        if evidence.get("task", "binary") != "binary":
            continue
        thin = [g for g, m in groups.items() if "roc_auc" not in m]
        if thin:
            found.append(f"Metrics are undefined for {column} = {', '.join(thin)} (one class only in the holdout).")
    return found
