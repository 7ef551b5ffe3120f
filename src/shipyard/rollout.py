"""Progressive delivery: judge each step of a rollout on live traffic, then move on or roll back.

The controller is one idempotent pass over the store's active rollouts: ``decide``
judges each rollout whose step is due and says what to do; the service applies the
decisions (the worker runs that pass on a timer, `shipyard rollout reconcile` once
for an external scheduler). Its state lives in the store, so a restarted controller
carries on from the same step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.config import RolloutChecks
from shipyard.domain.rollouts import Analysis, Check, Rollout

if TYPE_CHECKING:
    from collections.abc import Iterable

    import numpy as np

    from shipyard.location import Location

CHALLENGER_ROUTES = ("challenger", "shadow")


def thresholds(rollout: Rollout) -> RolloutChecks:
    """The analysis thresholds a rollout was started with; ones it predates take today's defaults."""
    return RolloutChecks.model_validate({k: v for k, v in rollout.checks.items() if k in RolloutChecks.model_fields})


def score_psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of two score samples, on ``expected``'s quantile bins, half a count added per bin.

    Unlike ``monitoring.stats.psi`` (Evidently's zero fill, for drift reports comparable with
    Evidently's), the half count keeps an empty bin in a canary's small window from reading as
    near-infinite divergence.
    """
    import numpy as np

    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return 0.0
    edges[0], edges[-1] = -np.inf, np.inf
    k = len(edges) - 1
    # Half a count per bin: an empty bin in a small window must not read as infinite drift.
    e = (np.histogram(expected, edges)[0] + 0.5) / (len(expected) + 0.5 * k)
    a = (np.histogram(actual, edges)[0] + 0.5) / (len(actual) + 0.5 * k)
    return float(np.sum((a - e) * np.log(a / e)))


def score_psi_excess(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """``score_psi`` beyond what sampling alone produces.

    Two samples of one distribution still show a PSI of about (bins − 1)(1/n₁ + 1/n₂):
    0.12 for 100 and 300 requests, half the usual 0.25 alarm. Subtracting it keeps a
    good canary's small first window from reading as drift.
    """
    return max(0.0, score_psi(expected, actual, bins) - (bins - 1) * (1 / len(expected) + 1 / len(actual)))


def analyze(log_dir: Location | Path, rollout: Rollout, labels_dir: Location | Path | None = None) -> Analysis:
    """The challenger over the current step's window against the champion since the rollout began.

    The champion's baseline spans the whole rollout because at the last step (or after a
    blue-green switch) it gets no traffic of its own to compare with. Latency is compared
    over the rollout only: both versions then share the gateway's process and its load, so
    the ratio is the challenger's own cost, not the cost of serving two models at once.
    """
    import numpy as np

    from shipyard.predlog import read_log

    checks = thresholds(rollout)
    from shipyard.checks.targets import MAX_CLASSES
    from shipyard.predlog import PROBABILITY_PREFIX

    task = str(rollout.checks.get("task", "binary"))
    columns = ["request_id", "received_at", "version", "routing", "status", "latency_ms", "model_ms", "score", "prediction"]
    if task == "multiclass":  # each class's probability; a column no file has reads as null and is dropped below
        columns += [PROBABILITY_PREFIX + str(i) for i in range(MAX_CLASSES)]
    table = read_log(log_dir, model=rollout.model, since=rollout.started_at, columns=columns)
    received = np.asarray(table.column("received_at").to_numpy(zero_copy_only=False)).astype("datetime64[us]")
    in_step = received >= np.datetime64(rollout.step_started_at.replace(tzinfo=None), "us")
    version = np.asarray(table.column("version").to_numpy(zero_copy_only=False))
    routing = np.asarray(table.column("routing").to_numpy(zero_copy_only=False)).astype(str)
    status = np.asarray(table.column("status").to_numpy(zero_copy_only=False))
    latency = np.asarray(table.column("latency_ms").to_numpy(zero_copy_only=False), dtype=float)
    model_ms = np.asarray(table.column("model_ms").to_numpy(zero_copy_only=False), dtype=float)
    score = np.asarray(table.column("score").to_numpy(zero_copy_only=False), dtype=float)
    challenger = (version == rollout.version) & np.isin(routing, CHALLENGER_ROUTES) & in_step
    champion = (version == rollout.champion) & (routing == "champion")
    n_challenger, n_champion = int(challenger.sum()), int(champion.sum())
    minimum = checks.min_requests
    if n_challenger < minimum or n_champion < minimum:
        waiting = Check(name="challenger requests", passed=False, observed=n_challenger, threshold=f"≥ {minimum}")
        return Analysis(passed=None, checks=(waiting,), challenger_requests=n_challenger, champion_requests=n_champion)

    def error_rate(mask: np.ndarray) -> float:
        return float((status[mask] != 200).mean())

    ok = status == 200
    results = [Check(name="challenger requests", passed=True, observed=n_challenger, threshold=f"≥ {minimum}")]
    increase = error_rate(challenger) - error_rate(champion)
    results.append(
        Check(
            name="error rate increase",
            passed=increase <= checks.max_error_increase,
            observed=round(increase, 4),
            threshold=f"≤ {checks.max_error_increase}",
        )
    )
    results.append(slower("p95 latency factor", latency[challenger & ok], latency[champion & ok], checks))
    # The versions share one process, so end-to-end latency blurs who is slow: a CPU-heavy challenger
    # delays the champion's answers too. The model's own time per batch (CPU time on its thread) does not.
    own_challenger = model_ms[challenger & ok & ~np.isnan(model_ms)]
    own_champion = model_ms[champion & ok & ~np.isnan(model_ms)]
    if len(own_challenger) and len(own_champion):  # logs from before model times were recorded have none
        results.append(slower("p95 model time factor", own_challenger, own_champion, checks))
    request_ids = np.asarray(table.column("request_id").to_numpy(zero_copy_only=False)).astype(str)
    probabilities = class_probabilities(table) if task == "multiclass" else None
    if probabilities is not None:
        # Each class's probability, not only the predicted one's: a challenger that moves mass between two
        # unpredicted classes, or swaps which class wins, shows here.
        results.append(per_class_divergence(probabilities, champion & ok, challenger & ok, checks))
    else:
        a, b = score[champion & ok], score[challenger & ok]
        divergence = score_psi_excess(a, b) if len(a) and len(b) else float("inf")
        results.append(
            Check(
                name="score divergence (PSI)",
                passed=divergence <= checks.max_divergence,
                observed=round(divergence, 4) if np.isfinite(divergence) else "no scores",
                threshold=f"≤ {checks.max_divergence}",
            )
        )
    if task in ("multiclass", "regression"):
        # Shadowed requests were answered by both versions: compare the answers request by request.
        prediction = np.asarray(table.column("prediction").to_numpy(zero_copy_only=False), dtype=float)
        paired = shadow_pairs(request_ids, version, routing, rollout, ok & in_step)
        if paired is not None:
            first, second = paired
            if task == "multiclass":
                results.append(class_agreement(prediction[first], prediction[second], checks))
            else:
                spread = float(np.std(prediction[champion & ok])) if (champion & ok).any() else 0.0
                results.append(pair_difference(prediction[first], prediction[second], spread, checks))
    if labels_dir is not None and task == "binary":
        online = online_metric_check(labels_dir, rollout, request_ids, score, champion & ok, challenger & ok)
        if online is not None:
            results.append(online)
    return Analysis(
        passed=all(c.passed for c in results),
        checks=tuple(results),
        challenger_requests=n_challenger,
        champion_requests=n_champion,
    )


def class_probabilities(table: Any) -> np.ndarray | None:
    """The logged probability of each class (rows × classes), or None when the log has none (older logs)."""
    import numpy as np

    from shipyard.predlog import PROBABILITY_PREFIX

    names = sorted(
        (n for n in table.column_names if n.startswith(PROBABILITY_PREFIX) and n.removeprefix(PROBABILITY_PREFIX).isdigit()),
        key=lambda n: int(n.removeprefix(PROBABILITY_PREFIX)),
    )
    names = [n for n in names if table.column(n).null_count < table.num_rows]
    if len(names) < 2:
        return None
    return np.column_stack([np.asarray(table.column(n).to_numpy(zero_copy_only=False), dtype=float) for n in names])


def per_class_divergence(probabilities: np.ndarray, champion: np.ndarray, challenger: np.ndarray, checks: RolloutChecks) -> Check:
    """The largest PSI (beyond sampling noise) over the classes' probabilities; every class's value is shown."""
    import numpy as np

    a_rows = champion & ~np.isnan(probabilities).any(axis=1)
    b_rows = challenger & ~np.isnan(probabilities).any(axis=1)
    if not a_rows.any() or not b_rows.any():
        return Check(
            name="per-class score divergence (PSI)", passed=False, observed="no scores", threshold=f"≤ {checks.max_divergence}"
        )
    each = [score_psi_excess(probabilities[a_rows, k], probabilities[b_rows, k]) for k in range(probabilities.shape[1])]
    worst = int(np.argmax(each))
    return Check(
        name="per-class score divergence (PSI)",
        passed=max(each) <= checks.max_divergence,
        observed=f"{max(each):.4f} (class {worst}; by class: {', '.join(f'{v:.3f}' for v in each)})",
        threshold=f"≤ {checks.max_divergence}",
    )


def shadow_pairs(
    request_ids: np.ndarray, version: np.ndarray, routing: np.ndarray, rollout: Rollout, usable: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Row indices of (champion, challenger) answers to the same shadowed request in the step, or None without any."""
    import numpy as np

    shadow = np.flatnonzero(usable & (version == rollout.version) & (routing == "shadow"))
    if not len(shadow):
        return None
    main = np.flatnonzero(usable & (version == rollout.champion) & (routing == "champion"))
    where = {rid: i for i, rid in zip(main.tolist(), request_ids[main].tolist(), strict=True)}
    pairs = [(where[rid], i) for i, rid in zip(shadow.tolist(), request_ids[shadow].tolist(), strict=True) if rid in where]
    if not pairs:
        return None
    first, second = zip(*pairs, strict=True)
    return np.asarray(first), np.asarray(second)


def class_agreement(champion: np.ndarray, challenger: np.ndarray, checks: RolloutChecks) -> Check:
    import numpy as np

    rate = float(np.mean(champion == challenger))
    return Check(
        name="class agreement (shadowed requests)",
        passed=rate >= checks.min_class_agreement,
        observed=f"{rate:.4f} on {len(champion)} requests",
        threshold=f"≥ {checks.min_class_agreement}",
    )


def pair_difference(champion: np.ndarray, challenger: np.ndarray, spread: float, checks: RolloutChecks) -> Check:
    """Mean absolute difference of the two predictions on the same requests, in the champion's standard deviations."""
    import numpy as np

    difference = float(np.mean(np.abs(challenger - champion)))
    scaled = difference / spread if spread > 0 else (0.0 if difference == 0 else float("inf"))
    return Check(
        name="mean absolute difference (shadowed requests)",
        passed=scaled <= checks.max_pair_difference,
        observed=f"{difference:.4g} ({scaled:.3f} sd) on {len(champion)} requests",
        threshold=f"≤ {checks.max_pair_difference} sd of the champion's predictions",
    )


def slower(name: str, challenger: np.ndarray, champion: np.ndarray, checks: RolloutChecks) -> Check:
    """The challenger's p95 (milliseconds) over the champion's, within ``max_latency_factor``; or, when
    ``max_latency_ms`` is set, the challenger's p95 within that absolute limit (the factor is still shown).

    A factor alone would fail a challenger answering in 0.6 ms against 0.2: slower by less than
    ``latency_slack_ms`` passes whatever the factor (noise, a cold first call, nothing a client notices).
    An absolute limit lets a model without a fast path win a rollout against one that has it, as long
    as it answers fast enough for its clients.
    """
    import numpy as np

    limit, slack, absolute = checks.max_latency_factor, checks.latency_slack_ms, checks.max_latency_ms
    slow = float(np.percentile(challenger, 95)) if len(challenger) else float("inf")
    fast = float(np.percentile(champion, 95)) if len(champion) else float("inf")
    factor = slow / max(fast, 1e-6)
    if absolute is not None:
        passed, threshold = slow <= absolute, f"challenger p95 ≤ {absolute:g} ms (max_latency_ms)"
        name = name.removesuffix(" factor")
    else:
        passed, threshold = factor <= limit or slow - fast < slack, f"≤ {limit}× or under {slack:g} ms slower"
    return Check(
        name=name,
        passed=passed,
        observed=round(factor, 3) if np.isfinite(factor) else "no successful request",
        threshold=threshold,
        challenger_p95_ms=round(slow, 3) if np.isfinite(slow) else None,
        champion_p95_ms=round(fast, 3) if np.isfinite(fast) else None,
    )


def online_metric_check(
    labels_dir: Location | Path,
    rollout: Rollout,
    request_ids: np.ndarray,
    score: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
) -> Check | None:
    """Once labels have arrived for the window: the challenger's primary metric must not be significantly worse."""
    import numpy as np

    from shipyard.checks.comparison import METRICS, MIN_LABELLED, unpaired_difference
    from shipyard.labels import read_labels

    metric = str(rollout.checks.get("metric", "roc_auc"))
    if metric not in METRICS:  # an online comparison on delayed labels is measured for binary classifiers
        return None
    labels = read_labels(labels_dir, rollout.model)
    if labels.num_rows == 0:
        return None
    known = dict(zip(labels.column("request_id").to_pylist(), labels.column("label").to_pylist(), strict=True))
    y = np.array([known.get(rid, -1) for rid in request_ids], dtype=np.int64)
    labelled = y >= 0
    a, b = champion & labelled, challenger & labelled
    if min(a.sum(), b.sum()) < MIN_LABELLED or len(np.unique(y[a])) < 2 or len(np.unique(y[b])) < 2:
        return None
    difference, low, high = unpaired_difference(y[a], score[a], y[b], score[b], metric=metric)
    return Check(
        name=f"online {metric} vs champion",
        # Fail only when the whole interval says worse: a small labelled window must not roll back a good model.
        passed=high >= 0.0,
        observed=f"{difference:+.4f} [{low:+.4f}, {high:+.4f}] on {int(b.sum())}/{int(a.sum())} labels",
        threshold="95% interval reaches ≥ 0",
    )


def starved(waiting: Analysis, rollout: Rollout, waited: float) -> Analysis:
    """A step that waited past ``max_wait`` for traffic, as a failed analysis naming what was missing."""
    limits = thresholds(rollout)
    checks = [
        Check(
            name=f"{side} requests",
            passed=count >= limits.min_requests,
            observed=count,
            threshold=f"≥ {limits.min_requests} within {limits.max_wait:g} s (waited {waited:.0f} s)",
        )
        for side, count in (("challenger", waiting.challenger_requests), ("champion", waiting.champion_requests))
    ]
    return Analysis(
        passed=False,
        checks=tuple(checks),
        challenger_requests=waiting.challenger_requests,
        champion_requests=waiting.champion_requests,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    rollout: Rollout
    action: str
    analysis: Analysis | None

    def describe(self) -> str:
        """The decision on one line, for the worker's log: what was done, where it left the rollout, and why."""
        r = self.rollout
        where = f"{r.state} at {r.steps[r.step_index]:g}%" if r.active else r.state.replace("_", " ")
        if self.analysis is None:
            why = "no analysis"
        else:
            failed = [c for c in self.analysis.checks if not c.passed]
            why = "failed " + ", ".join(f"{c.name} ({c.observed} vs {c.threshold})" for c in failed) if failed else "passed"
        return (
            f"rollout {r.id} of {r.model}/{r.version} (champion v{r.champion}): {self.action} → {where}; "
            f"analysis {why}; failed analyses {r.failures}/{r.failure_limit}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rollout": self.rollout.to_dict(),
            "action": self.action,
            "analysis": self.analysis.to_dict() if self.analysis else None,
        }


def decide(
    rollouts: Iterable[Rollout],
    log_dir: Location | Path,
    *,
    now: datetime | None = None,
    labels_dir: Location | Path | None = None,
) -> list[Decision]:
    """Judge every running rollout whose step has had its interval of traffic; say what to do with each.

    Nothing is written here: the service applies each decision (as whoever drives the rollouts).
    """
    now = now or datetime.now(UTC)
    decisions = []
    for rollout in rollouts:
        if rollout.state != "running" or (now - rollout.step_started_at).total_seconds() < rollout.interval_seconds:
            continue
        analysis = analyze(log_dir, rollout, labels_dir)
        if analysis.passed is None:
            waited = (now - rollout.step_started_at).total_seconds()
            if waited < thresholds(rollout).max_wait:
                continue  # not enough traffic yet: keep waiting, nothing to record
            # A challenger that never gets traffic (it failed to load, or clients went away) must not
            # hold the rollout forever: the step counts as failed, and the failure limit rolls it back.
            analysis = starved(analysis, rollout, waited)
        action = "fail" if not analysis.passed else "promote" if rollout.last_step else "next"
        decisions.append(Decision(rollout=rollout, action=action, analysis=analysis))
    return decisions
