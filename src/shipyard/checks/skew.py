"""Training–serving skew: for a sample of entities, the online store's values against the offline store's as of now."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipyard.domain.errors import ShipyardError

SAMPLE = 200


def _same(online: Any, offline: Any) -> bool:
    import math

    if online is None or offline is None:
        return online is None and offline is None
    if isinstance(offline, float) and math.isnan(offline):
        return isinstance(online, float) and math.isnan(online)
    if isinstance(online, int | float) and isinstance(offline, int | float):
        return math.isclose(float(online), float(offline), rel_tol=1e-6, abs_tol=1e-9)
    return bool(online == offline)


def measure(root: Path, feast: Any, keys: Any, *, sample: int = SAMPLE, seed: int = 0) -> dict[str, Any]:
    """The `feature_skew` evidence. ``keys``: a frame of entity join keys (the training rows'); ``feast``: the FeastSpec.

    A store that cannot be read gives ``error`` (the gate then cannot judge), never an exception.
    """
    import pandas as pd

    from shipyard.features.online import OnlineFeatures
    from shipyard.features.repo import FeatureSource, open_store, service

    source = FeatureSource.of(root, feast)
    now = datetime.now(UTC)
    try:
        online = OnlineFeatures(source)
        unique = keys[online.join_keys].drop_duplicates().reset_index(drop=True)
        chosen = unique.sample(n=min(sample, len(unique)), random_state=seed).reset_index(drop=True)
        fetched = online.fetch({key: chosen[key].tolist() for key in online.join_keys})
        store = open_store(source)
        entity_df = chosen.assign(event_timestamp=pd.Timestamp(now), __shipyard_row=range(len(chosen)))
        offline = (
            store.get_historical_features(entity_df=entity_df, features=service(store, source))
            .to_df()
            .sort_values("__shipyard_row")
            .reset_index(drop=True)
        )
    except ShipyardError as exc:
        return {"error": exc.message, "measured_at": now.isoformat(timespec="seconds")}
    except Exception as exc:  # Feast and its stores' errors: reported, judged by the gate as unmeasured
        return {"error": f"{type(exc).__name__}: {exc}", "measured_at": now.isoformat(timespec="seconds")}
    rows = len(chosen)
    differs = [False] * rows
    per_feature: dict[str, dict[str, Any]] = {}
    for name in online.features:
        offline_values = [None if pd.isna(v) else v for v in offline[name].tolist()]
        bad = [i for i in range(rows) if not _same(fetched.columns[name][i], offline_values[i])]
        for i in bad:
            differs[i] = True
        per_feature[name] = {"mismatches": len(bad), "mismatch_rate": len(bad) / rows if rows else 0.0}
        if bad:
            i = bad[0]
            per_feature[name]["example"] = {
                "entity": {key: _plain(chosen[key].iloc[i]) for key in online.join_keys},
                "online": _plain(fetched.columns[name][i]),
                "offline": _plain(offline_values[i]),
            }
    mismatched = sum(differs)
    return {
        "entities": rows,
        "mismatched": mismatched,
        "mismatch_rate": mismatched / rows if rows else 0.0,
        "missing_online": len(fetched.missing),
        "features": per_feature,
        "online_store": online.online_store,
        "measured_at": now.isoformat(timespec="seconds"),
    }


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
