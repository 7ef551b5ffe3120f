"""The numpy walk of a gradient boosting's trees answers exactly as scikit-learn does."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from shipyard.serving.trees import Forest


def data(classes: int, *, rows: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6))
    x[:, 5] = rng.integers(0, 4, rows)  # few distinct values: rows land exactly on thresholds
    signal = x[:, 0] + 0.5 * x[:, 1] * x[:, 2] + 0.3 * x[:, 5] + rng.normal(0, 0.5, rows)
    y = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, classes + 1)[1:-1]))
    x[rng.random(x.shape) < 0.1] = np.nan  # missing values in training: nodes learn where they go
    return x, y


def hard_rows(x: np.ndarray, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = x[rng.choice(len(x), 2000)].copy()
    rows[rng.random(rows.shape) < 0.15] = np.nan
    rows[rng.random(rows.shape) < 0.02] = np.inf
    rows[rng.random(rows.shape) < 0.02] = -np.inf
    return rows


@pytest.mark.parametrize(
    ("classes", "params"),
    [
        (2, {"max_iter": 60}),
        (3, {"max_iter": 30}),
        (2, {"max_iter": 40, "max_depth": 1}),  # stumps
        (2, {"max_iter": 200, "early_stopping": True, "validation_fraction": 0.2, "n_iter_no_change": 3}),
        (2, {"max_iter": 30, "max_leaf_nodes": 63, "l2_regularization": 1.0}),
    ],
    ids=["binary", "three-classes", "stumps", "early-stopping", "wide-trees"],
)
def test_the_walk_matches_scikit_learn_bit_for_bit(classes: int, params: dict[str, Any]) -> None:
    x, y = data(classes)
    model = HistGradientBoostingClassifier(random_state=0, **params).fit(x, y)
    forest = Forest.of(model)
    assert forest is not None and len(forest.roots) == model.n_iter_ * (1 if classes == 2 else classes)
    for rows in (hard_rows(x), forest.probe(), x[:1]):
        assert np.array_equal(forest.predict_proba(rows), model.predict_proba(rows))


def test_probe_rows_sit_on_thresholds_and_just_above_them() -> None:
    x, y = data(2)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y)
    forest = Forest.of(model)
    assert forest is not None
    probe = forest.probe(rows=500)
    split = forest.left != np.arange(len(forest.left))
    thresholds = set(forest.threshold[split & (forest.feature == 0)].tolist())
    values = probe[:, 0][~np.isnan(probe[:, 0])]
    assert thresholds & set(values.tolist())  # exactly on a threshold: the <= comparison is exercised
    assert {np.nextafter(t, np.inf) for t in thresholds} & set(values.tolist())
    assert np.isnan(probe[:, 0]).any()


def test_categorical_splits_and_other_models_are_left_to_scikit_learn() -> None:
    x, y = data(2)
    categories = np.nan_to_num(x.copy(), nan=0.0)
    categories[:, 5] = np.abs(categories[:, 5]).astype(int)
    categorical = HistGradientBoostingClassifier(max_iter=10, categorical_features=[5], random_state=0).fit(categories, y)
    assert Forest.of(categorical) is None
    assert Forest.of(HistGradientBoostingClassifier()) is None  # not fitted
    assert Forest.of(RandomForestClassifier(n_estimators=3).fit(np.nan_to_num(x), y)) is None
