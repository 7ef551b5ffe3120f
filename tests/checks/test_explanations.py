"""Explanations on the bundled examples' own models: shap's figures, summed back to the input columns."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.checks import explanations
from shipyard.examples.churn.generator import generate

EXAMPLES = Path(explanations.__file__).parents[1] / "examples"
CHURN_FEATURES = [
    "tenure_months",
    "contract_type",
    "monthly_charges",
    "payment_method",
    "internet_service",
    "support_calls",
    "gender",
    "senior_citizen",
]
ARRESTS_FEATURES = ["colour", "age", "sex", "employed", "citizen", "checks"]


def train_example(example: str, frame: pd.DataFrame) -> Any:
    path = EXAMPLES / example / "template" / "train.py"
    spec = importlib.util.spec_from_file_location(f"train_{example}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.train(frame)


@pytest.fixture(scope="module")
def churn() -> tuple[Any, pd.DataFrame]:
    frame = generate(3000, seed=5)
    model = train_example("churn", frame[[*CHURN_FEATURES, "churned"]])
    return model, frame


@pytest.fixture(scope="module")
def arrests() -> tuple[Any, pd.DataFrame]:
    from sklego.datasets import load_arrests

    frame = load_arrests(as_frame=True)
    frame["released"] = (frame["released"] == "Yes").astype(int)
    return train_example("arrests", frame[[*ARRESTS_FEATURES, "released"]]), frame


def test_tree_pipeline_attributions_are_shaps_own_with_dummies_summed(churn: tuple[Any, pd.DataFrame]) -> None:
    import shap

    model, frame = churn
    rows = frame[CHURN_FEATURES].head(40)
    explainer = explanations.attributor(model, frame[CHURN_FEATURES].head(100))
    assert explainer.method == "tree"
    values, base = explainer.explain(rows)
    # The reference: shap on the encoded rows, each dummy added to the column its name starts with.
    encoded = model[:-1].transform(rows)
    raw = shap.TreeExplainer(model[-1]).shap_values(encoded)
    names = list(model[:-1].get_feature_names_out())
    expected = np.zeros((len(rows), len(CHURN_FEATURES)))
    for j, name in enumerate(names):
        source = next(c for c in CHURN_FEATURES if name.split("__", 1)[1] == c or name.split("__", 1)[1].startswith(c + "_"))
        expected[:, CHURN_FEATURES.index(source)] += raw[:, j]
    np.testing.assert_allclose(values, expected, atol=1e-9)
    # And SHAP's additivity: base plus attributions is the model's log-odds.
    np.testing.assert_allclose(values.sum(axis=1) + base, model.decision_function(rows), atol=1e-6)


def test_linear_pipeline_is_explained_exactly(arrests: tuple[Any, pd.DataFrame]) -> None:
    model, frame = arrests
    explainer = explanations.attributor(model, frame[ARRESTS_FEATURES].head(100))
    assert explainer.method == "linear"
    rows = frame[ARRESTS_FEATURES].tail(30)
    values, base = explainer.explain(rows)
    assert values.shape == (30, len(ARRESTS_FEATURES))
    np.testing.assert_allclose(values.sum(axis=1) + base, model.decision_function(rows), atol=1e-6)


def test_evidence_ranks_columns_by_slice_and_group_and_against_the_champion(churn: tuple[Any, pd.DataFrame]) -> None:
    model, frame = churn
    found = explanations.explain(
        model,
        frame,
        CHURN_FEATURES,
        seed=3,
        slices=["contract_type"],
        sensitive=["gender"],
        champion=(1, model, CHURN_FEATURES),
    )
    assert found["available"] and found["rows"] == explanations.SAMPLE_ROWS
    assert sorted(found["ranking"]) == sorted(CHURN_FEATURES)  # input columns, never their dummies
    shares = [found["share"][f] for f in found["ranking"]]
    assert shares == sorted(shares, reverse=True) and sum(shares) == pytest.approx(1, abs=1e-3)
    assert set(found["by_slice"]["contract_type"]) == set(frame["contract_type"].unique())
    assert sum(g["rows"] for g in found["by_group"]["gender"].values()) == found["rows"]
    assert found["champion"]["ranking"] == found["ranking"]  # the same model: nothing moved
    again = explanations.explain(model, frame, CHURN_FEATURES, seed=3)
    assert again["mean_abs"] == found["mean_abs"]  # seeded


def test_rank_changes_count_places_moved() -> None:
    changes = explanations.rank_changes(["a", "b", "c", "d"], ["b", "a", "d", "c"], top=2)
    assert changes == {"a": 1, "b": 1}
    assert explanations.rank_changes(["a", "new"], ["a", "b"], top=2) == {"a": 0, "new": 1, "b": 1}


def test_other_models_get_the_model_agnostic_explainer(arrests: tuple[Any, pd.DataFrame]) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    _, frame = arrests
    categorical = ["colour", "sex", "employed", "citizen"]
    knn = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), categorical), remainder="passthrough"),
        KNeighborsClassifier(),
    ).fit(frame[ARRESTS_FEATURES], frame["released"])
    explainer = explanations.attributor(knn, frame[ARRESTS_FEATURES].head(explanations.AGNOSTIC_BACKGROUND))
    assert explainer.method == "kernel" and explainer.output == "probability"
    rows = frame[ARRESTS_FEATURES].tail(5)
    values, base = explainer.explain(rows)
    np.testing.assert_allclose(values.sum(axis=1) + base, knn.predict_proba(rows)[:, 1], atol=1e-6)


def test_a_model_no_explainer_supports_gets_evidence_saying_why() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    wide = pd.DataFrame(rng.normal(size=(200, explanations.AGNOSTIC_MAX_COLUMNS + 5))).add_prefix("x")
    target = (wide["x0"] > 0).astype(int)
    model = KNeighborsClassifier().fit(wide, target)
    found = explanations.explain(model, wide, list(wide.columns), seed=0, sensitive=["x1"])
    assert found["available"] is False
    assert "TreeExplainer does not support KNeighborsClassifier" in found["reason"]
    assert f"stops at {explanations.AGNOSTIC_MAX_COLUMNS}" in found["reason"]
    assert found["sensitive"] == ["x1"]
