"""Drift statistics as plain numpy functions, each equal to a SciPy (or Evidently) function.

A numeric reference is a *weighted support*: its sorted distinct values and how often each
occurs (see ``profile.NumericProfile``). The current window is sorted once and that one sort
serves the KS statistic, the Wasserstein distance and the bin counts; nothing else sorts.
The tests hold every function to its SciPy counterpart within 1e-9.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Exact KS p-values (SciPy's) only up to this many rows a side, as ks_2samp(method="auto"), and this product of sizes.
EXACT_KS_MAX_ROWS = 10_000
EXACT_KS_MAX_PRODUCT = 2_000_000
# kstwo_sf sums Smirnov's series itself from this n on; below it SciPy's own term-by-term sum is fast.
SMIRNOV_SERIES_MIN_N = 2_000
# Evidently's floor for the reference standard deviation when normalizing Wasserstein (constant columns).
WASSERSTEIN_MIN_NORM = 0.001


def finite_sorted(values: ArrayLike) -> tuple[FloatArray, int]:
    """The finite values sorted, and how many were NaN or ±inf (drift statistics skip those, as Evidently does)."""
    ordered = np.sort(np.asarray(values, dtype=np.float64).ravel())
    # np.sort puts -inf first and NaN after +inf, so the finite values are one slice.
    low = int(np.searchsorted(ordered, -np.inf, side="right"))
    high = int(np.searchsorted(ordered, np.inf, side="left"))
    return ordered[low:high], len(ordered) - (high - low)


def support(sorted_values: FloatArray) -> tuple[FloatArray, IntArray]:
    """Distinct values of a sorted array and their counts (``np.unique(..., return_counts=True)`` without a sort)."""
    if len(sorted_values) == 0:
        return np.empty(0), np.empty(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], sorted_values[1:] != sorted_values[:-1])))
    counts = np.diff(np.append(starts, len(sorted_values))).astype(np.int64)
    return sorted_values[starts], counts


def _check(values: FloatArray, weights: IntArray, current: FloatArray) -> None:
    if len(values) == 0 or len(current) == 0:
        raise ValueError("drift statistics need at least one value on each side")
    if len(values) != len(weights):
        raise ValueError("values and weights differ in length")


def ks_2samp(
    values: FloatArray, weights: IntArray, current: FloatArray, *, reference_rows: int | None = None
) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov statistic and two-sided p-value; ``current`` must be sorted.

    Equals ``scipy.stats.ks_2samp(np.repeat(values, weights), current, method=ks_method(m, n))``:
    SciPy's exact p-value where it is cheap (see ``ks_method``), else Smirnov's asymptotic
    ``scipy.stats.kstwo.sf(D, round(n·m/(n+m)))``.

    When the support is a sample of a larger reference, ``reference_rows`` is the full size: the
    statistic is then within 1/len(sample) of the full-reference one and the p-value uses the full
    size (asymptotic formula).
    """
    statistic, pvalue, _ = numeric_statistics(values, weights, current, reference_rows=reference_rows, distance=False)
    return statistic, pvalue


def ks_method(reference_rows: int, current_rows: int) -> str:
    """``exact`` when SciPy's exact two-sample p-value is cheap, else ``asymp``.

    SciPy's ``method="auto"`` goes exact up to 10,000 rows a side, but for unequal sizes its
    lattice-path count then takes up to 1.6 s per column on a strong shift; exact is kept for
    equal sizes (a closed form) and for products up to 2·10^6 (at most a few hundredths of a second).
    """
    small = max(reference_rows, current_rows) <= EXACT_KS_MAX_ROWS
    cheap = reference_rows == current_rows or reference_rows * current_rows <= EXACT_KS_MAX_PRODUCT
    return "exact" if small and cheap else "asymp"


def wasserstein(values: FloatArray, weights: IntArray, current: FloatArray) -> float:
    """First Wasserstein distance, the integral of |F - G|; ``current`` must be sorted.

    Equals ``scipy.stats.wasserstein_distance(values, current, u_weights=weights)``.
    """
    return numeric_statistics(values, weights, current, pvalue=False)[2]


def numeric_statistics(
    values: FloatArray,
    weights: IntArray,
    current: FloatArray,
    *,
    reference_rows: int | None = None,
    pvalue: bool = True,
    distance: bool = True,
) -> tuple[float, float, float]:
    """KS statistic, its p-value and the Wasserstein distance in one pass (see ``ks_2samp`` and ``wasserstein``).

    One search of the reference values into the sorted current serves both statistics.
    """
    from scipy import stats as sps  # about a second to import: only the statistics that need it pay

    _check(values, weights, current)
    n = len(current)
    cum = np.cumsum(weights)
    total = int(cum[-1])
    below = np.searchsorted(current, values, side="left")  # current values < each reference value
    upto = below.copy()  # current values <= each reference value: more only where one equals it
    tied = np.flatnonzero(current[np.minimum(below, n - 1)] == values)
    upto[tied] = np.searchsorted(current, values[tied], side="right")
    levels = np.concatenate(([0], cum)) / total  # F left of values[0], then right of each value
    # Both ECDFs are steps, so sup |F - G| is at a reference value (both right-continuous) or just
    # left of one (F's previous level against G's left limit): K candidates, not K + n.
    statistic = float(max(np.max(np.abs(levels[1:] - upto / n)), np.max(np.abs(levels[:-1] - below / n))))
    p = math.nan
    if pvalue:
        ref_rows = total if reference_rows is None else int(reference_rows)
        if ref_rows == total and ks_method(total, n) == "exact":
            with warnings.catch_warnings():
                # SciPy warns when its exact method overflows and falls back to the asymptotic one used below anyway.
                warnings.simplefilter("ignore", RuntimeWarning)
                result = sps.ks_2samp(np.repeat(values, weights), current, method="exact")
            statistic, p = float(result.statistic), float(result.pvalue)
        else:
            big, small = sorted((float(ref_rows), float(n)), reverse=True)
            p = float(np.clip(kstwo_sf(statistic, int(np.round(big * small / (big + small)))), 0.0, 1.0))
    return statistic, p, _wasserstein(values, current, levels, below, upto) if distance else math.nan


def _wasserstein(values: FloatArray, current: FloatArray, levels: FloatArray, below: IntArray, upto: IntArray) -> float:
    # Between consecutive current values G is constant, and so is F unless a reference value lies
    # inside: one dot product over the current gaps, one correction per such reference value, and
    # the stretches beyond either end of the current give the integral without merging the samples.
    n = len(current)
    scaled = np.repeat(levels * n, np.diff(np.concatenate(([0], below, [n]))))[:-1]  # n·F at each current value
    scaled -= np.arange(1, n, dtype=np.float64)  # minus n·G
    np.abs(scaled, out=scaled)
    total = _dot(scaled, np.diff(current)) / n
    # A reference value strictly between current values j and j+1 (j = below-1) moves F from the
    # previous level to its own for the rest of that gap, where G = below/n.
    inside = np.flatnonzero((below == upto) & (below > 0) & (below < n))
    if len(inside):
        g = below[inside] / n
        change = np.abs(levels[inside + 1] - g) - np.abs(levels[inside] - g)
        total += _dot(change, current[below[inside]] - values[inside])
    # Left of the first current value G = 0, so F itself integrates up to that value.
    head = int(np.searchsorted(upto, 0, side="right"))
    if head:
        ends = np.append(values[1:head], current[0])
        total += _dot(levels[1 : head + 1], ends - values[:head])
    # Right of the last current value G = 1, so 1 - F integrates up to the last reference value.
    tail = int(np.searchsorted(below, n, side="left"))
    if tail < len(values):
        starts = np.concatenate(([current[-1]], values[tail:-1]))
        total += _dot(1.0 - levels[tail:-1], values[tail:] - starts)
    return total


def _dot(a: FloatArray, b: FloatArray) -> float:
    # Not np.dot: BLAS may wake threads for it, which costs more than the sum on a busy machine.
    # Every caller passes a temporary as b, so it is reused for the products.
    return float(np.multiply(a, b, out=b).sum())


def kstwo_sf(statistic: float, n: int) -> float:
    """Survival function of the two-sided one-sample KS statistic; equals ``scipy.stats.kstwo.sf(statistic, n)``.

    Where SciPy sums Smirnov's exact series one term at a time (140 < n ≤ 1,000,000 and
    2.2 ≤ n·D² < 370: about a second at n = 500,000) the same series is summed here in one
    vectorized pass with SciPy's binomial pmf, agreeing to about 1e-12; elsewhere SciPy is fast
    and is called as is.
    """
    from scipy import stats as sps  # about a second to import: only the statistics that need it pay

    t = n * statistic
    squared = t * statistic
    if not (SMIRNOV_SERIES_MIN_N <= n <= 1_000_000 and statistic < 0.5 and 1.0 < t < n - 1 and 2.2 <= squared < 350.0):
        # Beyond n·D² ≈ 354 SciPy's series underflows to 0, which it returns at once.
        return float(sps.kstwo.sf(statistic, n))
    return min(1.0, 2.0 * _smirnov(n, statistic))


def _smirnov(n: int, x: float) -> float:
    """One-sided P(D+_n >= x) = x · Σ_v C(n, v) (x + v/n)^(v-1) (1 - x - v/n)^(n-v), as ``scipy.special.smirnov``.

    Each term is binom.pmf(v; n, a)/a with a = x + v/n. Chernoff's bound pmf ≤ exp(-n·KL(v/n ‖ a))
    is concave in v, so the terms above e^-80 of the largest bound form one interval, found on a
    coarse grid; the rest add less than 1e-25 relative and are skipped.
    """
    from scipy import stats as sps  # about a second to import: only the statistics that need it pay

    last = math.floor(n * (1 - x))
    grid = np.linspace(0.0, last / n, 2001)
    share = np.minimum(grid + x, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = -n * (special.xlogy(grid, grid / share) + special.xlogy(1 - grid, (1 - grid) / (1 - share))) - np.log(share)
    bound = np.nan_to_num(bound, nan=-np.inf, posinf=-np.inf)
    kept = np.flatnonzero(bound >= bound.max() - 80.0)
    low = max(0, math.floor(grid[max(kept[0] - 1, 0)] * n) - 1)
    high = min(last, math.ceil(grid[min(kept[-1] + 1, len(grid) - 1)] * n) + 1)
    v = np.arange(low, high + 1, dtype=np.float64)
    share = x + v / n
    return x * float(np.sum(sps.binom.pmf(v, n, share) / share))


def wasserstein_normed(distance: float, reference_std: float) -> float:
    """Wasserstein distance in reference standard deviations, floored at 0.001 as Evidently's ``wasserstein`` test does."""
    return distance / max(reference_std, WASSERSTEIN_MIN_NORM)


def quantile_edges(sorted_values: FloatArray, bins: int) -> FloatArray:
    """Inner edges of right-closed bins at the reference's 1/bins … (bins-1)/bins quantiles.

    Each edge is the smallest value whose ECDF reaches its level (the inverted-CDF quantile), so it
    is a data value; repeated edges merge and an edge at the maximum is dropped, which leaves every
    reference bin non-empty (PSI then never needs a reference epsilon).
    """
    n = len(sorted_values)
    if n == 0:
        return np.empty(0)
    ranks = (np.arange(1, bins, dtype=np.int64) * n + bins - 1) // bins - 1
    edges = np.unique(sorted_values[ranks])
    kept: FloatArray = edges[edges < sorted_values[-1]]
    return kept


def bin_counts(edges: FloatArray, sorted_values: FloatArray) -> IntArray:
    """Counts in the bins (-inf, e0], (e0, e1], …, (e_last, inf); ``sorted_values`` must be sorted."""
    cuts = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate(([0], cuts, [len(sorted_values)]))).astype(np.int64)


def _shares(counts: ArrayLike) -> FloatArray:
    array = np.asarray(counts, dtype=np.float64)
    total = array.sum()
    if not total > 0:
        raise ValueError("counts must have a positive total")
    return np.asarray(array / total, dtype=np.float64)


def _fill_zeros(shares: FloatArray) -> FloatArray:
    # Evidently 0.7's get_binned_data(feel_zeroes=True): a zero share becomes 1e-4, or a millionth
    # of the smallest non-zero share when that is itself at most 1e-4.
    smallest = float(shares[shares > 0].min())
    epsilon = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return np.asarray(np.where(shares == 0, epsilon, shares), dtype=np.float64)


def psi(reference_counts: ArrayLike, current_counts: ArrayLike) -> float:
    """Population stability index Σ (p - q)·ln(p/q) over aligned bins or categories.

    Equals Evidently 0.7's ``psi`` on the same bins, including its zero fill (see ``_fill_zeros``):
    an empty bin or unseen category adds a large but finite term. It is the symmetrized
    Kullback–Leibler divergence, Σ rel_entr(p, q) + rel_entr(q, p) on the filled shares.
    """
    p = _fill_zeros(_shares(reference_counts))
    q = _fill_zeros(_shares(current_counts))
    return float(np.sum((p - q) * np.log(p / q)))


def jensenshannon(reference_counts: ArrayLike, current_counts: ArrayLike) -> float:
    """Jensen–Shannon distance (natural log, so at most √ln2 ≈ 0.833); zeros need no epsilon.

    Equals ``scipy.spatial.distance.jensenshannon(reference_counts, current_counts)``, except that a
    rounding-negative divergence is clamped to 0 where SciPy returns NaN.
    """
    p = _shares(reference_counts)
    q = _shares(current_counts)
    middle = (p + q) / 2.0
    divergence = float(np.sum(special.rel_entr(p, middle)) + np.sum(special.rel_entr(q, middle)))
    return math.sqrt(max(divergence, 0.0) / 2.0)


def chi2_homogeneity(reference_counts: ArrayLike, current_counts: ArrayLike) -> tuple[float, float]:
    """Pearson chi-square test that both samples share one categorical distribution.

    Equals ``scipy.stats.chi2_contingency([reference_counts, current_counts], correction=False)``
    on the categories seen on either side (a category empty on both carries no information and
    would make SciPy raise). With one category left there is nothing to compare: (0.0, 1.0).
    """
    from scipy import stats as sps  # about a second to import: only the statistics that need it pay

    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    seen = (ref + cur) > 0
    observed = np.vstack([ref[seen], cur[seen]])
    if observed.shape[1] < 2:
        return 0.0, 1.0
    if not (observed.sum(axis=1) > 0).all():
        raise ValueError("both samples need at least one value")
    rows = observed.sum(axis=1, keepdims=True)
    columns = observed.sum(axis=0, keepdims=True)
    expected = rows * columns / observed.sum()
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return statistic, float(sps.chi2.sf(statistic, observed.shape[1] - 1))


def chisquare_gof(reference_counts: ArrayLike, current_counts: ArrayLike) -> tuple[float, float]:
    """Pearson goodness-of-fit of the current counts to the reference shares, as Evidently 0.7's ``chisquare``.

    Equals ``scipy.stats.chisquare(current, f_exp=reference * (n_current / n_reference))`` on the
    categories seen on either side. It treats the reference as exact, so with a reference no
    larger than the window it rejects far more often than ``alpha`` under no drift; prefer
    ``chi2_homogeneity`` unless matching Evidently. A category the reference never saw makes the
    statistic infinite and the p-value 0 (SciPy: the same, with a division warning). With one
    category: (0.0, 1.0), where SciPy returns a NaN p-value.
    """
    from scipy import stats as sps  # about a second to import: only the statistics that need it pay

    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    seen = (ref + cur) > 0
    ref, cur = ref[seen], cur[seen]
    if len(ref) < 2:
        return 0.0, 1.0
    if not (ref.sum() > 0 and cur.sum() > 0):
        raise ValueError("both samples need at least one value")
    if (ref == 0).any():
        return math.inf, 0.0
    expected = ref * (cur.sum() / ref.sum())
    statistic = float(np.sum((cur - expected) ** 2 / expected))
    return statistic, float(sps.chi2.sf(statistic, len(ref) - 1))
