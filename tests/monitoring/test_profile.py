"""The reference profile: column types, missing values, exact or sampled distributions, bins, files."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.domain.errors import InvalidSpec, NotFound
from shipyard.monitoring.profile import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    build_profile,
    load_profile,
    numeric_profile,
    save_profile,
)


def training_frame(rows: int = 2_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, rows),
            "charges": rng.lognormal(4.0, 0.5, rows),
            "contract": rng.choice(["monthly", "yearly", "two-year"], rows),
            "segment": pd.Categorical(rng.choice(["a", "b"], rows), categories=["a", "b", "unused"]),
            "paperless": rng.random(rows) < 0.6,
            "plan": pd.array(rng.choice(["basic", "plus"], rows), dtype="string"),
            "discount": pd.array(rng.integers(0, 3, rows), dtype="Int64"),
        }
    )
    frame.loc[::10, "charges"] = np.nan
    frame.loc[1::10, "contract"] = None
    frame.loc[2::10, "discount"] = pd.NA
    return frame


def test_types_follow_dtypes_unless_categorical_says_otherwise() -> None:
    profile = build_profile(training_frame())
    kinds = {name: feature.kind for name, feature in profile.features.items()}
    assert kinds == {
        "tenure": "numeric",
        "charges": "numeric",
        "contract": "categorical",
        "segment": "categorical",
        "paperless": "categorical",
        "plan": "categorical",
        "discount": "numeric",
    }
    chosen = build_profile(training_frame()[["tenure", "contract"]], categorical=["tenure", "contract"])
    assert all(feature.kind == "categorical" for feature in chosen.features.values())
    with pytest.raises(InvalidSpec, match="should be numeric"):
        build_profile(training_frame()[["contract"]], categorical=[])
    with pytest.raises(InvalidSpec, match="'nope'"):
        build_profile(training_frame(), categorical=["nope"])


def test_missing_values_are_counted_and_left_out() -> None:
    frame = training_frame(1_000)
    frame.loc[3, "charges"] = np.inf
    profile = build_profile(frame)
    charges, contract, discount = (profile.features[name] for name in ("charges", "contract", "discount"))
    assert (
        isinstance(charges, NumericProfile) and isinstance(contract, CategoricalProfile) and isinstance(discount, NumericProfile)
    )
    assert (charges.count, charges.missing) == (899, 101)
    assert (contract.count, contract.missing) == (900, 100) and sum(contract.counts) == 900
    assert (discount.count, discount.missing) == (900, 100)
    finite = frame["charges"].replace(np.inf, np.nan).dropna().to_numpy()
    assert charges.mean == pytest.approx(finite.mean(), rel=1e-12) and charges.std == pytest.approx(finite.std(), rel=1e-12)
    assert (charges.min, charges.max) == (finite.min(), finite.max())


def test_categories_are_json_values_most_frequent_first_and_unused_ones_dropped() -> None:
    profile = build_profile(training_frame())
    segment, paperless = profile.features["segment"], profile.features["paperless"]
    assert isinstance(segment, CategoricalProfile) and isinstance(paperless, CategoricalProfile)
    assert set(segment.categories) == {"a", "b"}
    assert paperless.categories[0] is True and list(paperless.counts) == sorted(paperless.counts, reverse=True)
    ints = build_profile(pd.DataFrame({"code": np.array([3, 3, 1], dtype=np.int64)}), categorical=["code"])
    code = ints.features["code"]
    assert isinstance(code, CategoricalProfile) and code.categories == (3, 1) and type(code.categories[0]) is int


def test_few_distinct_values_are_kept_exactly_however_many_rows() -> None:
    values = np.random.default_rng(1).poisson(3.0, 50_000).astype(float)
    feature = numeric_profile(values, sample_size=1_000)
    assert not feature.sampled
    distinct, counts = np.unique(values, return_counts=True)
    assert np.array_equal(feature.values, distinct) and np.array_equal(feature.weights, counts)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_sampled_reference_stays_within_one_over_m_of_the_full_ecdf(seed: int) -> None:
    values = np.random.default_rng(seed).normal(size=30_000)
    values[:3000] = np.round(values[:3000], 1)  # some ties as well
    m = 700
    feature = numeric_profile(values, sample_size=m, rng=np.random.default_rng(seed))
    assert feature.sampled and int(feature.weights.sum()) == m and feature.count == 30_000
    ordered = np.sort(values)
    points = np.concatenate([ordered, feature.values])
    full = np.searchsorted(ordered, points, side="right") / len(ordered)
    sample = np.cumsum(feature.weights)[np.searchsorted(feature.values, points, side="right") - 1] / m
    sample[np.searchsorted(feature.values, points, side="right") == 0] = 0.0
    assert np.max(np.abs(full - sample)) < 1 / m


def test_seed_moves_the_sample_and_nothing_else() -> None:
    values = np.random.default_rng(0).normal(size=5_000)
    first = numeric_profile(values, sample_size=100, rng=np.random.default_rng(1))
    again = numeric_profile(values, sample_size=100, rng=np.random.default_rng(1))
    other = numeric_profile(values, sample_size=100, rng=np.random.default_rng(2))
    assert first == again and first != other
    assert np.array_equal(first.bin_counts, other.bin_counts) and first.mean == other.mean


def test_bins_are_right_closed_quantile_bins_with_every_reference_bin_filled() -> None:
    values = np.concatenate([np.zeros(600), np.random.default_rng(4).exponential(size=400)])  # 60 % at the minimum
    feature = numeric_profile(values, bins=10)
    assert feature.edges[0] == 0.0 and (np.diff(feature.edges) > 0).all()
    assert feature.bin_counts[0] == 600 and (feature.bin_counts > 0).all() and feature.bin_counts.sum() == 1_000
    constant = numeric_profile(np.full(50, 7.0))
    assert constant.edges.size == 0 and constant.bin_counts.tolist() == [50] and constant.std == 0.0


def test_an_all_missing_column_profiles_as_empty() -> None:
    feature = numeric_profile(np.full(5, np.nan))
    assert (feature.count, feature.missing, feature.mean) == (0, 5, None)
    assert NumericProfile.from_dict(json.loads(json.dumps(feature.to_dict()))) == feature


def full_profile() -> Profile:
    frame = training_frame(3_000)
    frame["wide"] = np.random.default_rng(5).normal(size=3_000)
    frame["flags"] = pd.Series([1.5, 2.5, None] * 1_000, dtype=object)
    scores = np.random.default_rng(6).random(3_000)
    return build_profile(frame, categorical=["contract", "segment", "paperless", "plan", "flags"], scores=scores, sample_size=500)


def test_to_dict_is_json_and_round_trips_exactly() -> None:
    profile = full_profile()
    text = json.dumps(profile.to_dict(), allow_nan=False)
    restored = Profile.from_dict(json.loads(text))
    assert restored == profile and restored.to_dict() == profile.to_dict()
    wide = restored.features["wide"]
    original = profile.features["wide"]
    assert isinstance(wide, NumericProfile) and isinstance(original, NumericProfile)
    assert wide.sampled and np.array_equal(wide.values, original.values)
    assert restored.score is not None and restored.rows == 3_000


@pytest.mark.parametrize("name", ["reference.json", "reference.json.gz"])
def test_save_and_load_round_trip(tmp_path: Path, name: str) -> None:
    profile = full_profile()
    path = tmp_path / name
    save_profile(profile, path)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    assert load_profile(path) == profile
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "corrupt"),
        (b"{not json", "corrupt"),
        (gzip.compress(b'{"format": "shipyard.drift-profile/1"', mtime=0)[:-6], "corrupt"),  # mtime=0: one test id everywhere
        (b"[1, 2]", "not a drift profile"),
        (b'{"format": "something-else/9"}', "not a drift profile"),
        (b'{"format": "shipyard.drift-profile/1", "rows": 1}', "features"),
        (b"\xff\xfe\x00", "corrupt"),
    ],
)
def test_a_corrupt_file_raises_invalid_spec_naming_it(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "profile.json"
    path.write_bytes(content)
    with pytest.raises(InvalidSpec, match=problem) as caught:
        load_profile(path)
    assert str(path) in caught.value.message and caught.value.hint and "build_profile" in caught.value.hint


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d["features"]["wide"].update(values="***"),
        lambda d: d["features"]["wide"].update(values=d["features"]["wide"]["values"][:-4]),
        lambda d: d["features"]["wide"].update(weights=d["features"]["tenure"]["weights"]),
        lambda d: d["features"]["tenure"].update(bin_counts=[1, 2]),
        lambda d: d["features"]["tenure"].update(count="many"),
        lambda d: d["features"]["contract"].update(counts=[1]),
        lambda d: d["features"]["contract"].update(type="text"),
        lambda d: d["features"]["charges"].update(edges=[3.0, 1.0, *d["features"]["charges"]["edges"][2:]]),
        lambda d: d.update(score=[]),
    ],
)
def test_an_inconsistent_profile_raises_invalid_spec(tmp_path: Path, damage: Callable[[dict[str, Any]], None]) -> None:
    data = full_profile().to_dict()
    damage(data)
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidSpec, match="malformed"):
        load_profile(path)


def test_a_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        load_profile(tmp_path / "absent.json")
    with pytest.raises(InvalidSpec, match="cannot be read"):
        load_profile(tmp_path)  # a directory


def test_bad_arguments_and_scores() -> None:
    frame = training_frame(100)
    with pytest.raises(InvalidSpec, match="bins"):
        build_profile(frame, bins=1)
    with pytest.raises(InvalidSpec, match="sample_size"):
        build_profile(frame, sample_size=1)
    with pytest.raises(InvalidSpec, match="one value per row"):
        build_profile(frame, scores=np.zeros((100, 2)))
    assert build_profile(frame, scores=np.zeros((100, 1))).score is not None
    with pytest.raises(InvalidSpec, match="unique string names"):
        build_profile(pd.DataFrame({0: [1.0], 1: [2.0]}))
