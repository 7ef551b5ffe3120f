"""The one-hot pipeline answered without pandas: bit for bit scikit-learn's answer, or scikit-learn answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shipyard.examples.churn.generator import generate
from shipyard.serving.encoded import EncodedForest
from shipyard.serving.inputs import Decoded, Field, InputSchema, batch_columns
from shipyard.serving.runtime import LoadedModel, encoded_model

CATEGORICAL = ["contract_type", "payment_method", "internet_service", "gender"]
TYPES = {
    "tenure_months": "long",
    "contract_type": "string",
    "monthly_charges": "double",
    "payment_method": "string",
    "internet_service": "string",
    "support_calls": "long",
    "gender": "string",
    "senior_citizen": "long",
}
SCHEMA = InputSchema(fields=tuple(Field(name, kind) for name, kind in TYPES.items()))


def customers(rows: int, seed: int) -> pd.DataFrame:
    return generate(rows, seed=seed).drop(columns=["customer_id", "signup_date"])


def pipeline(encoder: Any = None, classifier: Any = None) -> Pipeline:
    frame = customers(3000, seed=1)
    encode = ColumnTransformer(
        [("categorical", encoder or OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)], remainder="passthrough"
    )
    classify = classifier or HistGradientBoostingClassifier(max_iter=40, random_state=0)
    return Pipeline([("encode", encode), ("classify", classify)]).fit(frame.drop(columns=["churned"]), frame["churned"])


def columns(frame: pd.DataFrame) -> dict[str, Any]:
    values = {name: frame[name].tolist() for name in TYPES}
    return batch_columns([Decoded(columns=values, rows=len(frame))], SCHEMA)


def example() -> dict[str, list[Any]]:
    frame = customers(5, seed=2)
    return {name: frame[name].tolist() for name in TYPES}


def test_the_churn_pipeline_answers_as_scikit_learn_including_unseen_categories() -> None:
    model = pipeline()
    encoded = encoded_model(model, SCHEMA, example())
    assert encoded is not None
    frame = customers(60, seed=3)
    frame.loc[::7, "contract_type"] = "lifetime"  # never seen: the encoder ignores it, so does the walk
    fast = LoadedModel(name="churn", version=1, model=model, schema=SCHEMA, load_seconds=0.0, encoded=encoded)
    slow = LoadedModel(name="churn", version=1, model=model, schema=SCHEMA, load_seconds=0.0)
    large = customers(200, seed=6)  # 200 rows x 40 trees: past the walk, the classifier on the encoded array
    assert not encoded.forest.walks(len(large)) and encoded.forest.walks(len(frame))
    for rows in (frame.head(1), frame, large):
        assert encoded.predict_proba(columns(rows)) is not None
        assert np.array_equal(fast.predict(columns(rows))[1], slow.predict(columns(rows))[1])
    assert fast.quick(1) and not slow.quick(1)


def test_an_encoder_that_refuses_unseen_categories_still_refuses_them() -> None:
    model = pipeline(OneHotEncoder(handle_unknown="error"))
    encoded = encoded_model(model, SCHEMA, example())
    assert encoded is not None
    unseen = customers(3, seed=4)
    unseen.loc[1, "contract_type"] = "lifetime"
    assert encoded.predict_proba(columns(unseen)) is None  # scikit-learn decides: its own error, word for word
    fast = LoadedModel(name="churn", version=1, model=model, schema=SCHEMA, load_seconds=0.0, encoded=encoded)
    with pytest.raises(ValueError, match="unknown categor"):
        fast.predict(columns(unseen))


@pytest.mark.parametrize(
    "make",
    [
        lambda: pipeline(OneHotEncoder(handle_unknown="ignore", drop="first")),
        lambda: pipeline(OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=200)),
        lambda: pipeline(classifier=LogisticRegression(max_iter=500)),
        lambda: Pipeline(
            [
                (
                    "encode",
                    ColumnTransformer(
                        [("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)], remainder=StandardScaler()
                    ),
                ),
                ("classify", HistGradientBoostingClassifier(max_iter=10)),
            ]
        ).fit(customers(500, seed=5).drop(columns=["churned"]), customers(500, seed=5)["churned"]),
    ],
    ids=["dropped-category", "infrequent-categories", "not-a-forest", "scaled-remainder"],
)
def test_what_cannot_be_matched_exactly_is_left_to_scikit_learn(make: Any) -> None:
    assert EncodedForest.of(make()) is None


def test_a_lone_request_the_walk_declines_goes_to_the_predict_thread() -> None:
    """The walk answers a lone row on the event loop; a row only scikit-learn may judge must not block it there."""
    import asyncio

    from harness import CountingExecutor, submit_one

    from shipyard.serving.batching import ModelFailed

    model = pipeline(OneHotEncoder(handle_unknown="error"))
    loaded = LoadedModel(
        name="churn", version=1, model=model, schema=SCHEMA, load_seconds=0.0, encoded=encoded_model(model, SCHEMA, example())
    )
    assert loaded.quick(1)
    row = customers(1, seed=4)
    executor = CountingExecutor()
    _, scores = asyncio.run(submit_one(loaded, executor, Decoded(columns={n: row[n].tolist() for n in TYPES}, rows=1)))
    assert executor.calls == 0 and scores == model.predict_proba(row.drop(columns=["churned"]))[:, 1].tolist()
    row.loc[0, "contract_type"] = "lifetime"
    with pytest.raises(ModelFailed, match="Found unknown categories"):
        asyncio.run(submit_one(loaded, executor, Decoded(columns={n: row[n].tolist() for n in TYPES}, rows=1)))
    executor.shutdown()
    assert executor.calls == 1


def test_a_passthrough_value_that_is_not_a_number_goes_to_scikit_learn() -> None:
    encoded = encoded_model(pipeline(), SCHEMA, example())
    assert encoded is not None
    typed = columns(customers(2, seed=7))
    typed["senior_citizen"] = pd.array([True, None], dtype="boolean")  # a missing boolean has no float
    assert encoded.encode(typed) is None
