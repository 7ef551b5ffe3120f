"""A monitor run: a window of the prediction log against the champion's reference, and the alert readings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.checks.comparison import MIN_LABELLED
from shipyard.domain.errors import InvalidSpec
from shipyard.store.monitoring import SignalReading

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import ModelSpec
    from shipyard.location import Location
    from shipyard.monitoring.drift import DriftSpec
    from shipyard.monitoring.profile import Profile


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """Logged predictions of one version: features, scores, status and request ids."""

    frame: pd.DataFrame
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    model: str
    version: int
    start: datetime | None
    end: datetime | None
    rows: int
    requests: int
    error_rate: float | None
    drift: dict[str, Any] | None
    dataset_drift: bool
    performance: dict[str, Any] | None
    readings: list[SignalReading]
    notes: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "requests": self.requests,
            "error_rate": self.error_rate,
            "drift": self.drift,
            "performance": self.performance,
            "signals": [
                {"signal": r.signal, "observed": r.observed, "threshold": r.threshold, "fired": r.fired, "action": r.action}
                for r in self.readings
            ],
            "notes": self.notes,
        }


def drift_spec(spec: ModelSpec, model: str) -> DriftSpec:
    from pydantic import ValidationError

    from shipyard.monitoring.drift import DriftSpec

    try:
        return DriftSpec.model_validate(spec.monitoring.drift)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise InvalidSpec(
            f"shipyard.yaml: models.{model}.monitoring.drift is invalid: {problems}",
            hint="See the README's monitoring section for the drift methods and their thresholds.",
        ) from exc


def read_window(
    log_root: Location | Path, model: str, version: int, *, window: float, last: int | None, now: datetime | None = None
) -> Window:
    """The version's logged rows in the last ``window`` seconds, or its last ``last`` rows whenever they came."""
    from shipyard.predlog import read_log

    end = now or datetime.now(UTC)
    start = None if last is not None else end - timedelta(seconds=window)
    table = read_log(log_root, model=model, since=start, until=None if last is not None else end)
    frame = table.to_pandas()
    frame = frame[(frame["version"] == version) & (frame["routing"] != "shadow")]
    if last is not None:
        frame = frame.sort_values("received_at").tail(last)
        if len(frame):
            start = frame["received_at"].min().to_pydatetime()
            end = frame["received_at"].max().to_pydatetime()
    return Window(frame=frame.reset_index(drop=True), start=start, end=end)


def features_of(frame: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    import pandas as pd

    from shipyard.predlog import FEATURE_PREFIX

    columns = {name: frame[FEATURE_PREFIX + name] for name in profile.features if FEATURE_PREFIX + name in frame.columns}
    return pd.DataFrame(columns, index=frame.index)


def live_performance(
    frame: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    metric: str,
    holdout: float | None,
    task: str = "binary",
    classes: list[str] | None = None,
) -> tuple[dict[str, Any] | None, list[str]]:
    """The primary metric on the labelled rows of the window, with its bootstrap interval, against the holdout value."""
    from shipyard.checks.comparison import METRICS, bootstrap_interval
    from shipyard.domain.tasks import LOWER_IS_BETTER, METRICS_BY_TASK

    if not len(labels):
        return None, ["no labels ingested yet: performance not judged"]
    from shipyard.predlog import PROBABILITY_PREFIX

    kept = ["request_id", "score", "prediction", *(c for c in frame.columns if str(c).startswith(PROBABILITY_PREFIX))]
    joined = frame[[c for c in kept if c in frame.columns]].merge(labels[["request_id", "label"]], on="request_id", how="inner")
    joined = joined[joined["score"].notna()]
    if task == "regression" or metric in METRICS_BY_TASK["regression"]:
        # A regression's logged score is its prediction; its label is the true value.
        if len(joined) < MIN_LABELLED:
            return None, [f"{len(joined)} labelled predictions in the window; {MIN_LABELLED} are needed"]
        from shipyard.checks.task_metrics import interval as task_interval

        live = task_interval("regression", metric, joined["label"].to_numpy(dtype=float), joined["score"].to_numpy())
    elif task == "multiclass":
        if not classes:
            return None, ["the champion's evidence names no classes: multiclass performance not judged"]
        if metric not in METRICS_BY_TASK["multiclass"]:
            return None, [f"live {metric} is not measured for a multiclass model: performance not judged"]
        known = joined[joined["label"].astype(str).isin(classes) & joined["prediction"].notna()]
        if len(known) < MIN_LABELLED:
            return None, [f"{len(known)} labelled predictions in the window; {MIN_LABELLED} are needed"]
        live = task_interval_multiclass(known, metric, classes)
    elif metric not in METRICS:
        return None, [f"live {metric} from delayed labels is not measured for this model's task: performance not judged"]
    else:
        classes_seen = joined["label"].nunique()
        if len(joined) < MIN_LABELLED or classes_seen < 2:
            return None, [
                f"{len(joined)} labelled predictions in the window ({classes_seen} classes); {MIN_LABELLED} of both are needed"
            ]
        live = bootstrap_interval(
            joined["label"].to_numpy(), joined["score"].to_numpy(), metric=metric, resamples=1000, seed=0
        ).to_dict()
    interval = _Live(value=float(live["value"]), ci_low=float(live["ci_low"]), ci_high=float(live["ci_high"]))
    result: dict[str, Any] = {"live": live, "holdout": holdout, "labelled": len(joined)}
    if holdout is not None:
        lower_better = metric in LOWER_IS_BETTER
        result["decay"] = (interval.value - holdout) if lower_better else (holdout - interval.value)
        # Significant only when the whole interval lies on the worse side of the holdout value.
        result["significant"] = interval.ci_low > holdout if lower_better else interval.ci_high < holdout
    return result, []


def task_interval_multiclass(joined: pd.DataFrame, metric: str, classes: list[str]) -> dict[str, Any]:
    """A multiclass metric on labelled rows: the logged class probabilities (``p_<index>``) where the gateway
    logged them, else the predicted class as certain (log loss then needs the probabilities)."""
    import numpy as np

    from shipyard.checks.task_metrics import interval
    from shipyard.predlog import PROBABILITY_PREFIX

    y = joined["label"].astype(str).map({name: index for index, name in enumerate(classes)}).to_numpy(dtype=int)
    columns = [PROBABILITY_PREFIX + str(i) for i in range(len(classes))]
    if all(c in joined.columns for c in columns) and joined[columns].notna().all(axis=None):
        output = joined[columns].to_numpy(dtype=float)
    else:
        output = np.eye(len(classes))[joined["prediction"].to_numpy(dtype=int)]
    return interval("multiclass", metric, y, output)


@dataclass(frozen=True, slots=True)
class _Live:
    value: float
    ci_low: float
    ci_high: float


def observe(
    *,
    model: str,
    version: int,
    spec: ModelSpec,
    profile: Profile,
    window: Window,
    labels: pd.DataFrame,
    holdout_metric: float | None,
    task: str = "binary",
    classes: list[str] | None = None,
) -> Observation:
    """Drift, errors and live performance of a window, and one reading per alert rule that could be judged."""
    import numpy as np

    from shipyard.monitoring.drift import drift_report

    frame = window.frame
    monitoring = spec.monitoring
    notes: list[str] = []
    requests = len(frame)
    error_rate = float((frame["status"] >= 500).mean()) if requests else None
    ok = frame[frame["status"] == 200]
    rows = len(ok)
    drift: dict[str, Any] | None = None
    dataset_drift = False
    share: float | None = None
    score_psi: float | None = None
    if rows >= monitoring.min_rows:
        from shipyard.predlog import PROBABILITY_PREFIX

        scores = ok["score"].to_numpy(dtype=float)
        # A multiclass model's logged probability of each class, when the gateway logged them for every row.
        columns = [PROBABILITY_PREFIX + index for index in profile.class_scores]
        logged = task == "multiclass" and columns and all(c in ok.columns for c in columns)
        per_class = ok[columns].to_numpy(dtype=float) if logged else None
        report = drift_report(
            profile,
            features_of(ok, profile),
            scores=scores if profile.score is not None and np.isfinite(scores).any() else None,
            spec=drift_spec(spec, model),
            class_scores=per_class if per_class is not None and not np.isnan(per_class).any() else None,
        )
        drift = report.to_dict()
        dataset_drift = bool(report.dataset_drift)
        share = float(report.share_drifted)
        score_psi = report.score_psi
    else:
        notes.append(f"{rows} successful predictions in the window; {monitoring.min_rows} are needed to judge drift")
    performance, why = live_performance(ok, labels, metric=spec.metric(task), holdout=holdout_metric, task=task, classes=classes)
    notes.extend(why)

    readings: list[SignalReading] = []
    for rule in monitoring.alerts:
        observed: float | None = None
        fired = False
        if rule.signal == "feature_drift_share" and share is not None:
            observed, fired = share, share >= rule.threshold
        elif rule.signal == "prediction_drift" and score_psi is not None:
            observed, fired = score_psi, score_psi >= rule.threshold
        elif rule.signal == "error_rate" and error_rate is not None and requests >= monitoring.min_rows:
            observed, fired = error_rate, error_rate >= rule.threshold
        elif rule.signal == "metric_decay" and performance is not None and "decay" in performance:
            observed = float(performance["decay"])
            fired = observed >= rule.threshold and bool(performance["significant"])
        if observed is not None:
            readings.append(
                SignalReading(
                    signal=rule.signal, observed=round(observed, 6), threshold=rule.threshold, fired=fired, action=rule.action
                )
            )
    return Observation(
        model=model,
        version=version,
        start=window.start,
        end=window.end,
        rows=rows,
        requests=requests,
        error_rate=error_rate,
        drift=drift,
        dataset_drift=dataset_drift,
        performance=performance,
        readings=readings,
        notes=notes,
    )
