"""LightGBM and XGBoost models through the serving equivalence check (onnxmltools' converters, real ONNX Runtime)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.checks import equivalence


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=1500, n_features=8, n_informative=5, random_state=0)
    return pd.DataFrame(x, columns=[f"m{i}" for i in range(8)]), y


def test_a_bare_xgboost_classifier_is_served_through_one_stacked_input(frame: tuple[pd.DataFrame, np.ndarray]) -> None:
    from xgboost import XGBClassifier

    features, y = frame
    model = XGBClassifier(n_estimators=30, max_depth=3).fit(features, y)
    found = equivalence.check(model, features.head(300))
    assert found.evidence["converted"] is True and found.onnx is not None, found.evidence
    session = equivalence.Session.of(found.onnx)
    assert session.stacked == tuple(features.columns)
    # The gateway's columns may come in any order: the graph stacks them in the model's.
    shuffled = features.head(5)[list(reversed(features.columns))]
    answered = session.predict_proba(equivalence.columns_of(shuffled))
    assert answered is not None
    assert np.abs(answered - model.predict_proba(features.head(5))).max() <= equivalence.TOLERANCE
    assert model.get_booster().feature_names == list(features.columns)  # the model itself is left as it was


def test_an_xgboost_regressor_agrees_within_its_scale(frame: tuple[pd.DataFrame, np.ndarray]) -> None:
    from xgboost import XGBRegressor

    features, _ = frame
    target = features["m0"] * 30 + 100
    model = XGBRegressor(n_estimators=30).fit(features, target)
    found = equivalence.check(model, features.head(300))
    assert found.evidence["converted"] is True and found.evidence["max_prediction_difference"] < 0.01


def test_a_lightgbm_model_is_checked_and_kept_only_where_it_agrees(frame: tuple[pd.DataFrame, np.ndarray]) -> None:
    from lightgbm import LGBMClassifier

    features, y = frame
    model = LGBMClassifier(n_estimators=40, verbose=-1).fit(features, y)
    found = equivalence.check(model, features.head(300)).evidence
    assert "onnxmltools" in found["converter"] and "max_probability_difference" in found
    # LightGBM splits on doubles and the graph on floats: kept only when that rounding changes nothing.
    assert found["converted"] == (found["max_probability_difference"] <= equivalence.TOLERANCE and not found["classes_differing"])
