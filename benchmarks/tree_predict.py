"""The gateway's numpy walk of a gradient boosting's trees beside scikit-learn's own predict_proba.

The model is the serving benchmark's reference: a 20-feature HistGradientBoostingClassifier
(100 iterations) on make_classification data. Both sides take the same float arrays; the
table gives the median time per call over interleaved rounds, the ratio, and whether the
probabilities are identical to the bit (they must be: the gateway checks it at load).

    .venv/bin/python benchmarks/tree_predict.py [--calls 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as `shipyard serve` runs

import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier

from shipyard.serving.runtime import FOREST_CELLS
from shipyard.serving.trees import Forest


def per_call(predict: object, rows: np.ndarray, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        predict(rows)  # type: ignore[operator]
    return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    x, y = make_classification(n_samples=20_000, n_features=20, n_informative=12, random_state=0)
    model = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(x, y)
    forest = Forest.of(model)
    assert forest is not None
    print(
        f"{len(forest.roots)} trees, {len(forest.value)} nodes, depth {forest.depth}; {args.rounds} rounds of {args.calls} calls"
    )
    print(f"{'rows':>5} {'sklearn ms':>11} {'numpy ms':>9} {'ratio':>7}  identical  gateway uses")
    for count in (1, 8, 32, 64, 128):
        rows = x[:count].copy()
        identical = np.array_equal(model.predict_proba(rows), forest.predict_proba(rows))
        theirs, ours = [], []
        for _ in range(args.rounds):
            per_call(model.predict_proba, rows, 20)
            theirs.append(per_call(model.predict_proba, rows, args.calls))
            per_call(forest.predict_proba, rows, 20)
            ours.append(per_call(forest.predict_proba, rows, args.calls))
        a, b = statistics.median(theirs) * 1000, statistics.median(ours) * 1000
        uses = "numpy" if count * len(forest.roots) <= FOREST_CELLS else "scikit-learn"
        print(f"{count:>5} {a:>11.3f} {b:>9.3f} {a / b:>6.1f}×  {identical!s:>9}  {uses}")


if __name__ == "__main__":
    main()
