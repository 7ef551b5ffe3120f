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
    from shipyard.features.repo import FeatureSource

    source = FeatureSource.of(root, feast)
    now = datetime.now(UTC)
    try:
        online = OnlineFeatures(source)
        unique = keys[online.join_keys].drop_duplicates().reset_index(drop=True)
        chosen = unique.sample(n=min(sample, len(unique)), random_state=seed).reset_index(drop=True)
        fetched = online.fetch({key: chosen[key].tolist() for key in online.join_keys})
        entity_df = chosen.assign(event_timestamp=pd.Timestamp(now), __shipyard_row=range(len(chosen)))
        offline = _offline(source, entity_df)
    except ShipyardError as exc:
        return {"error": exc.message, "measured_at": now.isoformat(timespec="seconds")}
    except Exception as exc:  # Feast and its stores' errors: reported, judged by the gate as unmeasured
        return {"error": f"{type(exc).__name__}: {exc}", "measured_at": now.isoformat(timespec="seconds")}
    found = compare(online.features, fetched.columns, offline, chosen[online.join_keys])
    return {
        **found,
        "missing_online": len(fetched.missing),
        "online_store": online.online_store,
        "measured_at": now.isoformat(timespec="seconds"),
    }


def compare(features: list[str], served: dict[str, list[Any]], offline: Any, keys: Any) -> dict[str, Any]:
    """Per feature, how many rows' served values differ from the offline store's (with the first such row)."""
    import pandas as pd

    rows = len(keys)
    differs = [False] * rows
    per_feature: dict[str, dict[str, Any]] = {}
    for name in features:
        offline_values = [None if pd.isna(v) else v for v in offline[name].tolist()]
        bad = [i for i in range(rows) if not _same(served[name][i], offline_values[i])]
        for i in bad:
            differs[i] = True
        per_feature[name] = {"mismatches": len(bad), "mismatch_rate": len(bad) / rows if rows else 0.0}
        if bad:
            i = bad[0]
            per_feature[name]["example"] = {
                "entity": {key: _plain(keys[key].iloc[i]) for key in keys.columns},
                "online": _plain(served[name][i]),
                "offline": _plain(offline_values[i]),
            }
    mismatched = sum(differs)
    return {
        "entities": rows,
        "mismatched": mismatched,
        "mismatch_rate": mismatched / rows if rows else 0.0,
        "features": per_feature,
    }


def live(root: Path, feast: Any, window: Any, *, sample: int = SAMPLE, seed: int = 0) -> dict[str, Any]:
    """Skew on live traffic: the feature values logged with a window's predictions against the offline store's
    as of each prediction's time. ``window``: prediction-log rows (``f_``-prefixed columns, ``received_at``)."""
    from shipyard.features.online import OnlineFeatures
    from shipyard.features.repo import FeatureSource
    from shipyard.predlog import FEATURE_PREFIX

    now = datetime.now(UTC)
    source = FeatureSource.of(root, feast)
    try:
        online = OnlineFeatures(source)  # only for the service's features and keys
        wanted = [FEATURE_PREFIX + c for c in (*online.join_keys, *online.features)]
        if window is None or not len(window) or any(c not in window.columns for c in wanted):
            return {"entities": 0, "note": "no logged predictions with entity keys and features in the window"}
        chosen = window.sample(n=min(sample, len(window)), random_state=seed).reset_index(drop=True)
        keys = chosen[[FEATURE_PREFIX + k for k in online.join_keys]].rename(columns=lambda c: c[len(FEATURE_PREFIX) :])
        served = {name: chosen[FEATURE_PREFIX + name].tolist() for name in online.features}
        entity_df = keys.assign(event_timestamp=chosen["received_at"], __shipyard_row=range(len(chosen)))
        offline = _offline(source, entity_df)
    except ShipyardError as exc:
        return {"error": exc.message, "measured_at": now.isoformat(timespec="seconds")}
    except Exception as exc:  # reported with the monitor run, never failing it
        return {"error": f"{type(exc).__name__}: {exc}", "measured_at": now.isoformat(timespec="seconds")}
    if len(offline) != len(keys):  # Feast drops rows it finds no earlier value for; those differ by definition
        offline = keys.assign(__shipyard_row=range(len(keys))).merge(
            offline.drop(columns=list(keys.columns)), on="__shipyard_row", how="left"
        )
    return {**compare(online.features, served, offline, keys), "measured_at": now.isoformat(timespec="seconds")}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _offline(source: Any, entity_df: Any) -> Any:
    """The feature service's offline values as of each entity row's time, in the entity rows' order (a frame)."""
    from shipyard.features.repo import open_store, service

    store = open_store(source)
    found = store.get_historical_features(entity_df=entity_df, features=service(store, source)).to_df()
    return found.sort_values("__shipyard_row").reset_index(drop=True)
