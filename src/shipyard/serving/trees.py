"""A fitted HistGradientBoostingClassifier's trees, walked all at once with numpy.

scikit-learn predicts tree by tree: one Python call and one OpenMP region per tree,
which for 100 trees and one row is over a millisecond of overhead around a few
microseconds of comparisons. A serving gateway answers one row at a time more often
than not, so here every tree takes one step per numpy operation: ``depth`` steps
bring every tree of every row to its leaf (leaves point to themselves, so trees that
arrive early stay put).

The result is scikit-learn's to the last bit: the same comparisons (``x <= threshold``,
missing values to the side each node learned), the leaves added tree by tree in
scikit-learn's order (a running sum, not numpy's pairwise one) onto the same baseline,
and the model's own loss turning raw scores into probabilities. The gateway still
checks that at load (`array_model` and `encoded_model` in `shipyard.serving.runtime`)
and keeps scikit-learn's own predict when anything differs. Categorical splits are
left to scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


FOREST_CELLS = 4096  # rows × trees up to which numpy's walk beats scikit-learn (benchmarks/tree_predict.py)


@dataclass(frozen=True, slots=True)
class Forest:
    feature: np.ndarray  # per node, all trees end to end: the column a split reads (0 at leaves)
    threshold: np.ndarray  # go left when the value is <= this
    missing_left: np.ndarray  # where a missing value goes
    left: np.ndarray  # child indices into the flat arrays; a leaf's children are itself
    right: np.ndarray
    value: np.ndarray  # a leaf's raw score
    roots: np.ndarray  # each tree's first node, iteration-major (iteration i, class k at i * per_iteration + k)
    depth: int  # the deepest leaf: steps that bring every tree to a leaf
    baseline: np.ndarray  # (per_iteration,) raw score before any tree
    per_iteration: int  # trees per boosting iteration: 1 for two classes, one per class beyond
    to_proba: Callable[[np.ndarray], np.ndarray]  # the model's loss: raw scores to class probabilities

    @classmethod
    def of(cls, model: Any) -> Forest | None:
        """The forest of a fitted numeric HistGradientBoostingClassifier; None for anything else."""
        import numpy as np
        from sklearn.ensemble import HistGradientBoostingClassifier

        if not isinstance(model, HistGradientBoostingClassifier) or getattr(model, "_preprocessor", None) is not None:
            return None
        try:
            iterations = model._predictors
            baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
            to_proba = model._loss.predict_proba
        except AttributeError:  # not fitted, or a scikit-learn whose internals moved: keep its own predict
            return None
        per_iteration = len(iterations[0]) if iterations else 0
        if not per_iteration or any(len(trees) != per_iteration for trees in iterations) or len(baseline) != per_iteration:
            return None
        tables = [tree.nodes for trees in iterations for tree in trees]
        if any(table["is_categorical"].any() for table in tables):
            return None
        sizes = np.array([len(table) for table in tables])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        nodes = np.concatenate(tables)
        own = np.arange(len(nodes), dtype=np.intp)
        shift = np.repeat(offsets, sizes)
        leaf = nodes["is_leaf"].astype(bool)
        return cls(
            feature=np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp),
            threshold=nodes["num_threshold"].astype(np.float64),
            missing_left=nodes["missing_go_to_left"].astype(bool),
            left=np.where(leaf, own, nodes["left"].astype(np.intp) + shift),
            right=np.where(leaf, own, nodes["right"].astype(np.intp) + shift),
            value=nodes["value"].astype(np.float64),
            roots=offsets,
            depth=int(nodes["depth"].max()),
            baseline=baseline,
            per_iteration=per_iteration,
            to_proba=to_proba,
        )

    def walks(self, rows: int) -> bool:
        """Whether numpy's walk beats scikit-learn's tree-by-tree predict on ``rows`` rows."""
        return rows <= self.quick_rows

    @property
    def quick_rows(self) -> int:
        """The most rows numpy's walk answers (beyond them scikit-learn's own predict is faster)."""
        return FOREST_CELLS // len(self.roots)

    def raw(self, rows: np.ndarray) -> np.ndarray:
        """Raw scores, shape (rows, per_iteration), as scikit-learn's ``_raw_predict`` computes them."""
        import numpy as np

        count = rows.shape[0]
        node = np.broadcast_to(self.roots, (count, len(self.roots)))
        at = np.arange(count)[:, None]
        missing = bool(np.isnan(rows).any())
        for _ in range(self.depth):
            x = rows[at, self.feature[node]]
            go_left = x <= self.threshold[node]
            if missing:
                go_left |= np.isnan(x) & self.missing_left[node]
            node = np.where(go_left, self.left[node], self.right[node])
        steps = self.value[node].reshape(count, len(self.roots) // self.per_iteration, self.per_iteration)
        start = np.broadcast_to(self.baseline, (count, 1, self.per_iteration))
        # cumsum adds left to right, as scikit-learn's `raw += tree.predict(X)` does iteration by iteration.
        total: np.ndarray = np.concatenate([start, steps], axis=1).cumsum(axis=1)[:, -1, :]
        return total

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        import numpy as np

        return np.asarray(self.to_proba(self.raw(np.asarray(rows, dtype=np.float64))))

    def probe(self, rows: int = 256, seed: int = 0) -> np.ndarray:
        """Rows that reach many leaves: each value a split threshold, just above one, or missing."""
        import numpy as np

        rng = np.random.default_rng(seed)
        columns = int(self.feature.max()) + 1
        split = self.left != np.arange(len(self.left))
        probe = np.zeros((rows, columns))
        for column in range(columns):
            cuts = np.unique(self.threshold[split & (self.feature == column)])
            if len(cuts):
                values = np.concatenate([cuts, np.nextafter(cuts, np.inf), [np.nan]])
                probe[:, column] = rng.choice(values, rows)
        return probe
