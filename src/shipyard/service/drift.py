"""What a monitor run compared, as two distributions a face can draw: the reference against the live window.

A monitor run keeps its statistics, not the data behind them; ``drift_view`` reads that run's window of the
prediction log again (its version, the successful rows between its window's start and end) and puts it beside
the version's reference profile, bin by bin for a number, category by category for a category. Days whose raw
inputs retention dropped count through the daily profiles it kept in their place (whole days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import NotFound
from shipyard.service.loop import Loop

if TYPE_CHECKING:
    import numpy as np

    from shipyard.domain.monitoring import MonitorRun
    from shipyard.monitoring.profile import FeatureProfile

HISTOGRAM_BINS = 20
RUNS_SEARCHED = 200  # how far back a run id is looked for


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftBin:
    """One bar: a range of values [start, end) (the last one closed) or one category, and each side's share."""

    label: str
    start: float | None  # None for a category
    end: float | None
    reference: float  # share of the reference's non-missing values in this bin
    live: float  # share of the live window's non-missing values in this bin
    live_count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "start": self.start,
            "end": self.end,
            "reference": self.reference,
            "live": self.live,
            "live_count": self.live_count,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftView:
    """One feature (or the model's score, ``feature`` None) of one monitor run: reference against live."""

    model: str
    version: int
    run: int
    feature: str | None
    kind: str  # numeric | categorical
    window_start: datetime | None
    window_end: datetime | None
    reference_rows: int  # non-missing reference values
    reference_sampled: bool  # the reference's distribution is a sample of its order statistics (its shares are close)
    live_rows: int  # non-missing live values
    bins: tuple[DriftBin, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "run": self.run,
            "feature": self.feature,
            "kind": self.kind,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
            "reference_rows": self.reference_rows,
            "reference_sampled": self.reference_sampled,
            "live_rows": self.live_rows,
            "bins": [b.to_dict() for b in self.bins],
        }


class DriftViews(Loop):
    def drift_view(self, model: str, feature: str | None = None, *, run: int | None = None) -> DriftView:
        """The reference distribution of ``feature`` (None: the model's score) against the live window of
        monitor run ``run`` (None: the model's latest), as equal-width bins or the categories."""
        import numpy as np
        import pandas as pd

        from shipyard.monitoring.profile import CategoricalProfile, NumericProfile, category_counts
        from shipyard.predlog import FEATURE_PREFIX, read_log

        chosen = self._monitor_run(model, run)
        profile = self.reference_profile(self.version(model, chosen.version))
        reference: FeatureProfile | None
        if feature is None:
            reference = profile.score
            if reference is None:
                raise NotFound(f"{model} v{chosen.version}'s reference profile has no score distribution")
            column = "score"
        else:
            reference = profile.features.get(feature)
            if reference is None:
                raise NotFound(
                    f"{model} v{chosen.version}'s reference profile has no feature {feature!r}",
                    hint=f"Profiled features: {', '.join(profile.features) or 'none'}.",
                )
            column = FEATURE_PREFIX + feature
        # read_log's window is half-open; a run over the last N rows ends at its last row's time, which belongs in it.
        until = chosen.window_end + timedelta(microseconds=1) if chosen.window_end is not None else None
        frame = read_log(self.settings.predictions_dir, model=model, since=chosen.window_start, until=until).to_pandas()
        frame = frame[(frame["version"] == chosen.version) & (frame["routing"] != "shadow") & (frame["status"] == 200)]
        live = frame[column] if column in frame.columns else pd.Series([], dtype=float)
        # Days whose raw inputs retention dropped count through the daily profiles it kept (whole days); their
        # scores stay in the log, so the score never needs them.
        kept = [] if feature is None else self._kept_profiles(model, chosen, feature)
        if isinstance(reference, CategoricalProfile):
            counts = category_counts(live)
            for day in kept:
                if isinstance(day, CategoricalProfile):
                    for key, n in zip(day.categories, day.counts, strict=True):
                        counts[key] = counts.get(key, 0) + n
            bins = _categories(reference, counts)
            live_rows, reference_rows, sampled = sum(counts.values()), reference.count, False
        else:
            assert isinstance(reference, NumericProfile)
            values = pd.to_numeric(live, errors="coerce").to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            weights = np.ones(len(values))
            for day in kept:
                if isinstance(day, NumericProfile) and day.count:
                    values = np.concatenate([values, day.values])
                    weights = np.concatenate([weights, day.weights * (day.count / day.weights.sum())])
            bins = _histogram(reference, values, weights)
            live_rows, reference_rows, sampled = round(float(weights.sum())), reference.count, reference.sampled
        return DriftView(
            model=model,
            version=chosen.version,
            run=chosen.id,
            feature=feature,
            kind=reference.kind,
            window_start=chosen.window_start,
            window_end=chosen.window_end,
            reference_rows=reference_rows,
            reference_sampled=sampled,
            live_rows=live_rows,
            bins=tuple(bins),
        )

    def _kept_profiles(self, model: str, chosen: MonitorRun, feature: str | None) -> list[FeatureProfile]:
        from shipyard.monitoring.profile import load_profile
        from shipyard.retention.logfiles import daily_profiles

        found: list[FeatureProfile] = []
        log_root = self.settings.predictions_dir.local  # retention writes daily profiles on a local disk only
        paths = daily_profiles(log_root, model, chosen.version, chosen.window_start, chosen.window_end) if log_root else []
        for path in paths:
            day = load_profile(path)
            part = day.features.get(feature) if feature is not None else None
            if part is not None:
                found.append(part)
        return found

    def _monitor_run(self, model: str, run: int | None) -> MonitorRun:
        runs = self.store.monitor_runs(model, limit=1 if run is None else RUNS_SEARCHED)
        found = runs[0] if run is None and runs else next((r for r in runs if r.id == run), None)
        if found is None:
            if run is None:
                raise NotFound(
                    f"{model} has no monitor run yet", hint=f"Run one: `shipyard monitor run {model}` (the worker runs it too)."
                )
            raise NotFound(f"{model} has no monitor run {run} among its last {RUNS_SEARCHED}")
        return found


def _histogram(reference: Any, live: np.ndarray, live_weights: np.ndarray) -> list[DriftBin]:
    """Equal-width bins over both sides' range; each side's share from its values and their weights."""
    import numpy as np

    if reference.count == 0 and not len(live):
        return []
    lows = [v for v in (reference.min, float(live.min()) if len(live) else None) if v is not None]
    highs = [v for v in (reference.max, float(live.max()) if len(live) else None) if v is not None]
    low, high = min(lows), max(highs)
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1) if high > low else np.array([low, low + 1.0])
    ref_counts, _ = np.histogram(reference.values, bins=edges, weights=reference.weights)
    live_weighted, _ = np.histogram(live, bins=edges, weights=live_weights)
    live_counts = np.rint(live_weighted).astype(int)
    ref_total, live_total = float(ref_counts.sum()), int(live_counts.sum())
    return [
        DriftBin(
            label=f"{edges[i]:.4g} – {edges[i + 1]:.4g}",
            start=float(edges[i]),
            end=float(edges[i + 1]),
            reference=float(ref_counts[i]) / ref_total if ref_total else 0.0,
            live=int(live_counts[i]) / live_total if live_total else 0.0,
            live_count=int(live_counts[i]),
        )
        for i in range(len(edges) - 1)
    ]


def _categories(reference: Any, counts: dict[Any, int]) -> list[DriftBin]:
    """The reference's categories, most frequent first, then any the live window brought that it never saw."""
    keys = list(reference.categories) + [c for c in counts if c not in set(reference.categories)]
    known = dict(zip(reference.categories, reference.counts, strict=True))
    live_total = sum(counts.values())
    return [
        DriftBin(
            label=str(key),
            start=None,
            end=None,
            reference=known.get(key, 0) / reference.count if reference.count else 0.0,
            live=counts.get(key, 0) / live_total if live_total else 0.0,
            live_count=counts.get(key, 0),
        )
        for key in keys
    ]
