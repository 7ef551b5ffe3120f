"""Every drift statistic against SciPy (or Evidently's formula) on random and adversarial inputs, to 1e-9."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import special, stats
from scipy.spatial import distance

from shipyard.monitoring import stats as st

RTOL = 1e-9


def close(ours: float, theirs: float, rtol: float = RTOL) -> bool:
    return ours == theirs or math.isclose(ours, theirs, rel_tol=rtol, abs_tol=1e-300)


def sample_pair(kind: str, n1: int, n2: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(size=n1), rng.normal(0.1, 1.2, n2)
    if kind == "ties":
        return rng.integers(0, 5, n1).astype(float), rng.integers(1, 7, n2).astype(float)
    if kind == "rounded":
        return np.round(rng.normal(size=n1), 1), np.round(rng.normal(0.2, 1.0, n2), 1)
    if kind == "constant-same":
        return np.full(n1, 3.0), np.full(n2, 3.0)
    if kind == "constant-other":
        return np.full(n1, 3.0), np.full(n2, -1.5)
    if kind == "disjoint-below":
        return rng.normal(10, 1, n1), rng.normal(-10, 1, n2)
    if kind == "disjoint-above":
        return rng.normal(-10, 1, n1), rng.normal(10, 1, n2)
    if kind == "nan-inf":
        a, b = rng.lognormal(size=n1), rng.lognormal(0.3, 1.0, n2)
        a[1 :: max(n1 // 7, 1)] = np.nan  # element 0 stays finite on both sides
        b[1 :: max(n2 // 5, 2)] = np.inf
        b[2 :: max(n2 // 5, 2)] = -np.inf
        return a, b
    if kind == "interleaved-ties":
        shared = rng.normal(size=8)
        return rng.choice(shared, n1), np.concatenate([rng.choice(shared, n2 // 2), rng.normal(size=n2 - n2 // 2)])
    raise AssertionError(kind)


KINDS = [
    "normal",
    "ties",
    "rounded",
    "constant-same",
    "constant-other",
    "disjoint-below",
    "disjoint-above",
    "nan-inf",
    "interleaved-ties",
]
SIZES = [(1, 1), (1, 5), (3, 2), (40, 25), (700, 1300), (1000, 2000), (2500, 2500), (9000, 10000), (12000, 30000)]


def prepared(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ref_sorted, _ = st.finite_sorted(reference)
    cur_sorted, _ = st.finite_sorted(current)
    values, weights = st.support(ref_sorted)
    return ref_sorted, cur_sorted, values, weights


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("n1", "n2"), SIZES)
def test_ks_and_wasserstein_equal_scipy(kind: str, n1: int, n2: int) -> None:
    reference, current = sample_pair(kind, n1, n2, seed=n1 * 7 + n2)
    ref_sorted, cur_sorted, values, weights = prepared(reference, current)
    statistic, pvalue = st.ks_2samp(values, weights, cur_sorted)
    method = st.ks_method(len(ref_sorted), len(cur_sorted))
    assert method == ("exact" if max(n1, n2) <= 10_000 and (n1 == n2 or n1 * n2 <= 2_000_000) else "asymp") or kind == "nan-inf"
    expected = stats.ks_2samp(ref_sorted, cur_sorted, method=method)
    assert abs(statistic - expected.statistic) <= 1e-15
    assert close(pvalue, float(expected.pvalue))
    ours = st.wasserstein(values, weights, cur_sorted)
    assert close(ours, stats.wasserstein_distance(ref_sorted, cur_sorted), rtol=1e-12)
    assert close(ours, stats.wasserstein_distance(values, cur_sorted, u_weights=weights), rtol=1e-12)
    both = st.numeric_statistics(values, weights, cur_sorted)
    assert both == (statistic, pvalue, ours)


def test_nan_and_inf_are_skipped_as_scipy_sees_the_finite_values() -> None:
    values = np.array([np.nan, 1.0, -np.inf, 2.0, np.inf, 2.0, np.nan])
    ordered, missing = st.finite_sorted(values)
    assert ordered.tolist() == [1.0, 2.0, 2.0] and missing == 4
    distinct, counts = st.support(ordered)
    assert distinct.tolist() == [1.0, 2.0] and counts.tolist() == [1, 2]
    assert st.support(np.empty(0))[0].size == 0


@pytest.mark.parametrize("seed", range(5))
def test_support_equals_numpy_unique(seed: int) -> None:
    values = np.sort(np.random.default_rng(seed).integers(0, 30, 500).astype(float))
    distinct, counts = st.support(values)
    expected, expected_counts = np.unique(values, return_counts=True)
    assert np.array_equal(distinct, expected) and np.array_equal(counts, expected_counts)


@pytest.mark.parametrize(
    ("n", "statistic"),
    [
        (2_000, math.sqrt(2.3 / 2_000)),
        (5_000, 0.03),
        (20_000, 0.012),
        (50_000, 0.02),
        (50_000, 0.0075),
        (99_999, 0.0048),
        (100_000, 0.05),
        (3_000, 0.3),
        (1_500, 0.45),
        (500_000, 0.0022),  # SciPy takes about a second here: the case the vectorized series is for
    ],
)
def test_kstwo_sf_equals_scipy_in_the_series_region(n: int, statistic: float) -> None:
    assert 2.2 <= n * statistic**2 < 350
    assert close(st.kstwo_sf(statistic, n), float(stats.kstwo.sf(statistic, n)))


@pytest.mark.parametrize(
    ("n", "statistic"), [(10, 0.3), (140, 0.2), (1_000, 0.01), (5_000, 0.5), (50_000, 0.1), (2_000_000, 0.003), (7, 0.9)]
)
def test_kstwo_sf_defers_to_scipy_elsewhere(n: int, statistic: float) -> None:
    assert st.kstwo_sf(statistic, n) == float(stats.kstwo.sf(statistic, n))


def test_sampled_reference_uses_its_full_size_for_the_pvalue() -> None:
    rng = np.random.default_rng(3)
    reference, current = np.sort(rng.normal(size=50_000)), np.sort(rng.normal(0.02, 1.0, 40_000))
    sample = reference[::10]  # a systematic sample of 5,000 order statistics
    values, weights = st.support(sample)
    statistic, pvalue = st.ks_2samp(values, weights, current, reference_rows=len(reference))
    full = stats.ks_2samp(reference, current)
    assert abs(statistic - full.statistic) <= 1 / len(sample)
    en = round(50_000 * 40_000 / 90_000)
    assert close(pvalue, float(stats.kstwo.sf(statistic, en)))


def test_wasserstein_normed_floors_the_scale_as_evidently() -> None:
    assert st.wasserstein_normed(0.5, 2.0) == 0.25
    assert st.wasserstein_normed(0.0005, 0.0) == pytest.approx(0.5)


def evidently_fill(shares: np.ndarray) -> np.ndarray:
    # Evidently 0.7 get_binned_data(feel_zeroes=True), written out as it is there.
    filled = shares.copy()
    smallest = min(filled[filled != 0])
    np.place(filled, filled == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return filled


COUNT_PAIRS = {
    "random": (np.array([120, 80, 40, 10, 5]), np.array([100, 90, 30, 20, 2])),
    "empty-current-bin": (np.array([50, 30, 20]), np.array([60, 0, 40])),
    "empty-reference-category": (np.array([50, 30, 0]), np.array([40, 30, 30])),
    "tiny-share": (np.array([1_000_000, 50, 1]), np.array([500, 0, 3])),
    "identical": (np.array([5, 5, 5]), np.array([5, 5, 5])),
    "empty-both": (np.array([10, 0, 7, 3]), np.array([4, 0, 9, 1])),
    "two": (np.array([30, 70]), np.array([45, 55])),
    "one": (np.array([30]), np.array([45])),
    "disjoint": (np.array([10, 0]), np.array([0, 10])),
}


@pytest.mark.parametrize("pair", COUNT_PAIRS, ids=str)
def test_psi_equals_evidentlys_formula_and_symmetric_kl(pair: str) -> None:
    reference, current = COUNT_PAIRS[pair]
    p = evidently_fill(reference / reference.sum())
    q = evidently_fill(current / current.sum())
    expected = float(np.sum((p - q) * np.log(p / q)))
    assert close(st.psi(reference, current), expected)
    assert st.psi(reference, current) == pytest.approx(
        float(np.sum(special.rel_entr(p, q) + special.rel_entr(q, p))), rel=RTOL, abs=1e-15
    )


@pytest.mark.parametrize("pair", COUNT_PAIRS, ids=str)
def test_jensenshannon_equals_scipy(pair: str) -> None:
    reference, current = COUNT_PAIRS[pair]
    assert st.jensenshannon(reference, current) == pytest.approx(
        float(distance.jensenshannon(reference, current)), rel=RTOL, abs=1e-15
    )


@pytest.mark.parametrize("pair", COUNT_PAIRS, ids=str)
def test_chi2_homogeneity_equals_chi2_contingency(pair: str) -> None:
    reference, current = COUNT_PAIRS[pair]
    seen = (reference + current) > 0
    expected = stats.chi2_contingency(np.vstack([reference[seen], current[seen]]), correction=False)
    statistic, pvalue = st.chi2_homogeneity(reference, current)
    assert close(statistic, float(expected.statistic)) and close(pvalue, float(expected.pvalue))


@pytest.mark.parametrize("pair", [name for name in COUNT_PAIRS if name not in ("empty-reference-category", "one", "disjoint")])
def test_chisquare_gof_equals_evidentlys_scipy_call(pair: str) -> None:
    reference, current = COUNT_PAIRS[pair]
    seen = (reference + current) > 0
    ref, cur = reference[seen], current[seen]
    expected = stats.chisquare(cur, ref * (cur.sum() / ref.sum()))  # Evidently: f_exp = ref · k_norm
    statistic, pvalue = st.chisquare_gof(reference, current)
    assert close(statistic, float(expected.statistic)) and close(pvalue, float(expected.pvalue))


def test_chisquare_gof_edge_cases() -> None:
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        scipy_unseen = stats.chisquare([40, 30, 30], [50.0, 50.0, 0.0])
    assert (
        st.chisquare_gof([50, 50, 0], [40, 30, 30])
        == (math.inf, 0.0)
        == (float(scipy_unseen.statistic), float(scipy_unseen.pvalue))
    )
    assert st.chisquare_gof([30], [45]) == (0.0, 1.0)  # SciPy: p = NaN with one category


def test_statistics_refuse_empty_sides() -> None:
    with pytest.raises(ValueError):
        st.ks_2samp(np.array([1.0]), np.array([1]), np.empty(0))
    with pytest.raises(ValueError):
        st.psi([0, 0], [1, 2])
    with pytest.raises(ValueError):
        st.chi2_homogeneity([1, 2], [0, 0])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("bins", [2, 10, 17])
def test_quantile_edges_are_inverted_cdf_quantiles_with_no_empty_reference_bin(seed: int, bins: int) -> None:
    rng = np.random.default_rng(seed)
    values = np.sort(np.concatenate([rng.integers(0, 4, 300) * 1.0, rng.normal(size=int(rng.integers(1, 400)))]))
    edges = st.quantile_edges(values, bins)
    n = len(values)
    expected = set()
    for level in range(1, bins):
        # The smallest value whose ECDF reaches level/bins.
        expected.add(min(v for v in values if np.count_nonzero(values <= v) * bins >= level * n))
    assert edges.tolist() == sorted(v for v in expected if v < values[-1])
    counts = st.bin_counts(edges, values)
    assert (counts > 0).all() and counts.sum() == n
    brute = [np.count_nonzero((values > lo) & (values <= hi)) for lo, hi in zip([-np.inf, *edges], [*edges, np.inf], strict=True)]
    assert counts.tolist() == brute


def test_quantile_edges_of_a_constant_column_leave_one_bin() -> None:
    values = np.full(10, 2.5)
    edges = st.quantile_edges(values, 10)
    assert edges.size == 0 and st.bin_counts(edges, values).tolist() == [10]
