"""Champion/challenger statistics: Shipyard's vectorized paired bootstrap against a
scikit-learn loop over the same resamples, side by side, with the ratio.

    .venv/bin/python benchmarks/comparison.py [--rows 4000] [--resamples 2000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import accuracy_score, roc_auc_score

from shipyard.checks.comparison import paired_bootstrap


def sklearn_loop(y: np.ndarray, a: np.ndarray, b: np.ndarray, metric: str, resamples: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    score = roc_auc_score if metric == "roc_auc" else (lambda t, p: accuracy_score(t, p >= 0.5))
    diffs = []
    while len(diffs) < resamples:
        idx = rng.integers(0, len(y), len(y))
        if len(np.unique(y[idx])) < 2:
            continue
        diffs.append(score(y[idx], a[idx]) - score(y[idx], b[idx]))
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    y = (rng.random(args.rows) < 0.25).astype(int)
    a = np.clip(0.25 + 0.3 * (y - 0.25) + rng.normal(0, 0.2, args.rows), 0, 1)
    b = np.clip(0.25 + 0.28 * (y - 0.25) + rng.normal(0, 0.2, args.rows), 0, 1)
    print(f"{args.rows} rows, {args.resamples} paired resamples, best of {args.repeat}")
    print(f"{'metric':<10} {'shipyard s':>11} {'sklearn loop s':>15} {'ratio':>7}  CIs (shipyard | loop)")
    for metric in ("roc_auc", "accuracy"):
        ours, theirs = [], []
        for _ in range(args.repeat):  # interleaved, so machine noise hits both alike
            start = time.perf_counter()
            result = paired_bootstrap(y, a, b, metric=metric, resamples=args.resamples, seed=1)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            low, high = sklearn_loop(y, a, b, metric, args.resamples, 1)
            theirs.append(time.perf_counter() - start)
        print(
            f"{metric:<10} {min(ours):>11.3f} {min(theirs):>15.3f} {min(theirs) / min(ours):>6.1f}×  "
            f"[{result.ci_low:+.4f}, {result.ci_high:+.4f}] | [{low:+.4f}, {high:+.4f}]"
        )


if __name__ == "__main__":
    main()
