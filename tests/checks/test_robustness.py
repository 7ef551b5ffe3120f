from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shipyard.checks.robustness import UNSEEN, probe
from shipyard.domain.errors import InvalidSpec
from shipyard.examples.churn.generator import generate

CATEGORICAL = ["contract_type", "payment_method", "internet_service", "gender"]
PROBES = {"missing_values", "out_of_range", "unseen_categories", "noise"}


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return generate(3000, seed=11)


@pytest.fixture(scope="module")
def features(data: pd.DataFrame) -> pd.DataFrame:
    return data.drop(columns=["customer_id", "signup_date", "churned"])


def fit(data: pd.DataFrame, features: pd.DataFrame, classifier: ClassifierMixin, handle_unknown: str = "ignore") -> Pipeline:
    """The template's pipeline shape, with a choice of classifier and unknown-category handling."""
    # Scaling lets a linear model converge without warnings; it passes NaN through, as the template's passthrough does.
    numbers = StandardScaler() if isinstance(classifier, LogisticRegression) else "passthrough"
    encode = ColumnTransformer([("categorical", OneHotEncoder(handle_unknown=handle_unknown), CATEGORICAL)], remainder=numbers)
    return Pipeline([("encode", encode), ("classify", classifier)]).fit(features, data["churned"])


def positive(model: Pipeline) -> Callable[[pd.DataFrame], np.ndarray]:
    return lambda rows: model.predict_proba(rows)[:, 1]


@pytest.fixture(scope="module")
def template_model(data: pd.DataFrame, features: pd.DataFrame) -> Pipeline:
    return fit(data, features, HistGradientBoostingClassifier(max_iter=40, learning_rate=0.1, max_depth=4, random_state=0))


def assert_json(result: dict[str, Any]) -> None:
    assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_the_template_model_passes_every_probe(template_model: Pipeline, features: pd.DataFrame) -> None:
    result = probe(positive(template_model), features)
    assert result["passed"] is True
    assert set(result["probes"]) == PROBES
    for name, outcome in result["probes"].items():
        assert (outcome["ok"], outcome["error"], outcome["valid_outputs"], outcome["rows"]) == (True, None, True, 200), name
    assert set(result["probes"]["unseen_categories"]["columns"]) == set(CATEGORICAL)
    assert set(result["probes"]["out_of_range"]["columns"]) == {
        "tenure_months",
        "monthly_charges",
        "support_calls",
        "senior_citizen",
    }
    assert_json(result)


def test_an_encoder_that_refuses_unknown_categories_fails_that_probe(data: pd.DataFrame, features: pd.DataFrame) -> None:
    model = fit(data, features, HistGradientBoostingClassifier(max_iter=10, random_state=0), handle_unknown="error")
    result = probe(positive(model), features)
    unseen = result["probes"]["unseen_categories"]
    assert result["passed"] is False
    assert unseen["ok"] is False
    assert unseen["valid_outputs"] is False
    assert unseen["error"].startswith("ValueError: Found unknown categories")
    assert UNSEEN in unseen["error"]
    assert result["probes"]["out_of_range"]["ok"] is True
    assert_json(result)


def test_a_model_without_an_imputer_fails_on_missing_values(data: pd.DataFrame, features: pd.DataFrame) -> None:
    model = fit(data, features, LogisticRegression(max_iter=200))
    result = probe(positive(model), features)
    missing = result["probes"]["missing_values"]
    assert missing["ok"] is False
    assert missing["error"].startswith("ValueError: Input X contains NaN")
    assert {name for name, outcome in result["probes"].items() if not outcome["ok"]} == {"missing_values"}
    assert_json(result)


def test_noise_moves_predictions_more_when_it_is_larger(template_model: Pipeline, features: pd.DataFrame) -> None:
    small = probe(positive(template_model), features, noise=0.01)["probes"]["noise"]
    large = probe(positive(template_model), features, noise=0.5)["probes"]["noise"]
    none = probe(positive(template_model), features, noise=0.0)["probes"]["noise"]
    assert (none["mean_abs_change"], none["max_abs_change"]) == (0.0, 0.0)
    assert 0.0 < small["mean_abs_change"] < 0.02
    assert large["mean_abs_change"] > 5 * small["mean_abs_change"]
    assert large["max_abs_change"] >= large["mean_abs_change"]
    assert (small["noise"], large["noise"]) == (0.01, 0.5)


def test_probes_are_seeded_and_leave_the_sample_alone(template_model: Pipeline, features: pd.DataFrame) -> None:
    before = features.copy()
    first = probe(positive(template_model), features, seed=3)
    assert probe(positive(template_model), features, seed=3) == first
    assert probe(positive(template_model), features, seed=4)["probes"]["noise"] != first["probes"]["noise"]
    pd.testing.assert_frame_equal(features, before)


def test_rows_are_capped(template_model: Pipeline, features: pd.DataFrame) -> None:
    assert probe(positive(template_model), features, max_rows=50)["probes"]["noise"]["rows"] == 50
    assert probe(positive(template_model), features.head(30))["probes"]["missing_values"]["rows"] == 30


def test_each_probe_damages_what_it_says(features: pd.DataFrame) -> None:
    seen: list[pd.DataFrame] = []

    def record(rows: pd.DataFrame) -> np.ndarray:
        seen.append(rows)
        return np.full(len(rows), 0.5)

    probe(record, features, max_rows=100)
    clean, missing, out_of_range, unseen, noisy = seen
    assert missing.isna().sum().tolist() == [10] * len(features.columns)
    assert set(out_of_range["tenure_months"]) == {720, -720}
    assert (unseen[CATEGORICAL] == UNSEEN).all().all()
    assert not np.allclose(noisy["monthly_charges"], clean["monthly_charges"])
    assert (noisy["contract_type"] == clean["contract_type"]).all()


@pytest.mark.parametrize(
    ("outputs", "error"),
    [
        (lambda rows: np.full(len(rows), 1.5), None),
        (lambda rows: np.where(np.arange(len(rows)) == 3, np.nan, 0.2), None),
        (lambda rows: np.full((len(rows), 2), 0.5), "got shape"),
    ],
    ids=["above_one", "nan", "two_columns"],
)
def test_invalid_outputs_fail_every_probe(
    outputs: Callable[[pd.DataFrame], np.ndarray], error: str | None, features: pd.DataFrame
) -> None:
    result = probe(outputs, features)
    assert result["passed"] is False
    for outcome in result["probes"].values():
        assert (outcome["ok"], outcome["valid_outputs"]) == (False, False)
        assert outcome["error"] is None if error is None else error in outcome["error"]
    assert result["probes"]["noise"]["mean_abs_change"] is None
    assert_json(result)


def test_a_model_that_always_raises_is_reported_not_raised(features: pd.DataFrame) -> None:
    def broken(rows: pd.DataFrame) -> np.ndarray:
        raise RuntimeError("model server unreachable")

    result = probe(broken, features)
    assert {o["error"] for o in result["probes"].values()} == {"RuntimeError: model server unreachable"}
    assert_json(result)


def test_model_warnings_are_recorded_not_raised(features: pd.DataFrame) -> None:
    def noisy(rows: pd.DataFrame) -> np.ndarray:
        import warnings

        warnings.warn("feature names unseen at fit time", UserWarning, stacklevel=2)
        return np.full(len(rows), 0.3)

    result = probe(noisy, features)
    assert result["passed"] is True
    assert result["probes"]["noise"]["warnings"] == ["UserWarning: feature names unseen at fit time"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"noise": -0.1}, "noise"), ({"max_rows": 0}, "max_rows")],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], match: str, features: pd.DataFrame) -> None:
    with pytest.raises(InvalidSpec, match=match):
        probe(lambda rows: np.zeros(len(rows)), features, **kwargs)
    with pytest.raises(InvalidSpec, match="non-empty"):
        probe(lambda rows: np.zeros(len(rows)), features.head(0))


def test_noise_cannot_pass_when_the_clean_sample_fails(features: pd.DataFrame) -> None:
    calls = 0

    def fails_first(rows: pd.DataFrame) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyError("tenure_months")
        return np.full(len(rows), 0.4)

    noise = probe(fails_first, features)["probes"]["noise"]
    assert noise["ok"] is False
    assert noise["error"] == "the clean sample could not be scored: KeyError: 'tenure_months'"
    assert noise["mean_abs_change"] is None
