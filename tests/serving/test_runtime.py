"""A served model reads a plain float array only where that answers exactly as the frame does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from harness import CountingExecutor, submit_one
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.serving.inputs import Field, InputSchema
from shipyard.serving.runtime import LoadedModel, array_model

SCHEMA = InputSchema(fields=(Field("age", "long"), Field("income", "double"), Field("score", "double")))


def training(seed: int = 0, rows: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.integers(18, 90, rows), "income": rng.normal(50, 15, rows), "score": rng.random(rows)})
    return frame, (frame["income"] / 50 + frame["score"] + rng.normal(0, 0.3, rows) > 1.5).astype(int).to_numpy()


def columns_of(frame: pd.DataFrame) -> dict[str, Any]:
    """Typed as the gateway types a batch: integers as int64, reals as float64."""
    return {
        "age": frame["age"].to_numpy(np.int64),
        "income": frame["income"].to_numpy(np.float64),
        "score": frame["score"].to_numpy(np.float64),
    }


def example(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {name: frame[name].head(5).tolist() for name in frame.columns}


@pytest.mark.parametrize(
    "make",
    [
        lambda: HistGradientBoostingClassifier(max_iter=20, random_state=0),
        lambda: LogisticRegression(),
        lambda: Pipeline([("scale", StandardScaler()), ("classify", LogisticRegression())]),
    ],
    ids=["gradient-boosting", "logistic", "pipeline"],
)
def test_a_numeric_model_answers_arrays_as_it_answers_frames(make: Any) -> None:
    frame, y = training()
    model = make().fit(frame, y)
    plain = array_model(model, SCHEMA, example(frame))
    assert plain is not None and plain.plain is not model
    # A gradient boosting's trees are walked by numpy for small batches (checked bit for bit at load).
    assert (plain.forest is not None) == isinstance(model, HistGradientBoostingClassifier)
    assert list(model.feature_names_in_) == ["age", "income", "score"]  # the registry's model keeps its names
    batch, _ = training(seed=1, rows=64)
    large, _ = training(seed=2, rows=400)  # beyond FOREST_CELLS: scikit-learn's own predict on the array
    on_frame = LoadedModel(name="m", version=1, model=model, schema=SCHEMA, load_seconds=0.0)
    on_arrays = LoadedModel(name="m", version=1, model=model, schema=SCHEMA, load_seconds=0.0, on_arrays=plain)
    for rows in (batch.head(1), batch, large):  # pytest turns any warning (such as "no feature names") into a failure
        labels, scores = on_arrays.predict(columns_of(rows))
        expected_labels, expected_scores = on_frame.predict(columns_of(rows))
        assert np.allclose(scores, expected_scores, rtol=1e-12, atol=0) and np.array_equal(labels, expected_labels)


def test_columns_in_another_order_than_the_model_was_fitted_with_keep_the_frame() -> None:
    frame, y = training()
    model = LogisticRegression().fit(frame[["income", "age", "score"]], y)
    assert array_model(model, SCHEMA, example(frame)) is None


def test_a_string_column_keeps_the_frame() -> None:
    frame, y = training()
    frame["plan"] = "basic"
    schema = InputSchema(fields=(*SCHEMA.fields, Field("plan", "string")))
    model = LogisticRegression().fit(frame[["age", "income", "score"]], y)
    assert array_model(model, schema, example(frame)) is None


def test_a_model_whose_parts_keep_their_column_names_keeps_the_frame() -> None:
    frame, y = training()
    voting = VotingClassifier([("a", LogisticRegression()), ("b", LogisticRegression(C=0.1))], voting="soft").fit(frame, y)
    assert array_model(voting, SCHEMA, example(frame)) is None  # its estimators would warn on an array


def test_a_model_that_selects_columns_by_name_keeps_the_frame() -> None:
    frame, y = training()
    by_name = Pipeline(
        [
            ("pick", ColumnTransformer([("scale", StandardScaler(), ["income", "score"])], remainder="passthrough")),
            ("classify", LogisticRegression()),
        ]
    ).fit(frame, y)
    assert array_model(by_name, SCHEMA, example(frame)) is None


def test_the_trial_rows_come_from_the_input_example_logged_with_the_model() -> None:
    from shipyard.serving.runtime import _example

    # The layout MLflow writes for a frame's input example (pandas "split" orient, without the index).
    logged = {"columns": ["score", "age", "income", "plan"], "data": [[0.5, 30, 41.0, "pro"], [0.25, 61, 52.5, "basic"]]}
    assert _example(logged, SCHEMA) == {"age": [30, 61], "income": [41.0, 52.5], "score": [0.5, 0.25]}
    for other in ({"inputs": [1, 2]}, None):  # another layout, or no example: a row of ones instead
        assert _example(other, SCHEMA) == {"age": [1.0], "income": [1.0], "score": [1.0]}


@pytest.mark.parametrize(("make", "hops"), [(lambda: HistGradientBoostingClassifier(max_iter=20), 0), (LogisticRegression, 1)])
def test_a_lone_request_skips_the_thread_only_where_the_model_answers_in_a_moment(make: Any, hops: int) -> None:
    """The walked trees answer one row faster than a thread hands the call over; other models keep the thread."""
    import asyncio
    import json

    from shipyard.serving.inputs import decode_v1

    frame, y = training()
    model = make().fit(frame, y)
    loaded = LoadedModel(
        name="m", version=1, model=model, schema=SCHEMA, load_seconds=0.0, on_arrays=array_model(model, SCHEMA, example(frame))
    )
    executor = CountingExecutor()
    row = {"age": 40, "income": 55.0, "score": 0.5}
    _, scores = asyncio.run(submit_one(loaded, executor, decode_v1(json.dumps({"instances": [row]}).encode(), SCHEMA)))
    executor.shutdown()
    expected = model.predict_proba(pd.DataFrame([row]).astype({"age": "int64"}))[:, 1]
    assert executor.calls == hops and np.allclose(scores, expected, rtol=1e-12, atol=0)


def test_a_bookkeeping_failure_costs_no_answer_and_does_not_stop_the_batcher(caplog: pytest.LogCaptureFixture) -> None:
    """Metrics and the prediction log run after the answers: if they raise, the requests still succeed,
    the error is logged, and the next batches are served."""
    import asyncio

    from shipyard.serving.batching import BatchDone, Batcher
    from shipyard.serving.inputs import Decoded

    frame, y = training()
    model = LogisticRegression().fit(frame, y)
    loaded = LoadedModel(name="m", version=1, model=model, schema=SCHEMA, load_seconds=0.0)
    booked: list[int] = []

    def bookkeep(done: BatchDone) -> None:
        booked.append(len(done.jobs))
        if len(booked) == 1:
            raise RuntimeError("the log is full")

    rows = [{"age": [40], "income": [55.0], "score": [0.5]}, {"age": [70], "income": [20.0], "score": [0.1]}]

    async def two_in_turn() -> list[tuple[list[int], list[float]]]:
        batcher = Batcher(loaded, executor=None, on_batch=bookkeep)
        batcher.start()
        try:
            return [
                await batcher.submit(Decoded(columns=row, rows=1), request_id=f"r{i}", routing="champion", received_at=0.0)
                for i, row in enumerate(rows)
            ]
        finally:
            await batcher.stop()

    answers = asyncio.run(asyncio.wait_for(two_in_turn(), 30))  # a dead batcher would leave the second waiting
    expected = [model.predict_proba(pd.DataFrame(row))[0, 1] for row in rows]
    assert [a[1][0] for a in answers] == pytest.approx(expected, rel=1e-12)
    assert booked == [1, 1]
    assert "bookkeeping of a batch of ('m', 1) failed" in caplog.text and "the log is full" in caplog.text


# -- loading a registered version: the registry's integrity check ------------------------------


@pytest.fixture
def registered(tmp_path: Path) -> tuple[Any, Any]:
    """A real MLflow store in a temp folder and a small model registered in it."""
    from mlflow_store import local_registry, register_small_model

    registry = local_registry(tmp_path)
    return registry, register_small_model(registry)


def test_a_served_version_is_read_from_the_files_that_were_checked(registered: tuple[Any, Any]) -> None:
    from shipyard.serving import runtime

    registry, version = registered
    loaded = runtime.load(version, registry)
    assert [f.name for f in loaded.schema.fields] == ["age", "income"] and loaded.on_arrays is not None
    labels, scores = loaded.predict({"age": np.array([30, 70]), "income": np.array([20.0, 90.0])})
    assert labels.tolist() == [0, 1] and scores[0] < scores[1]


def test_the_gateway_refuses_a_tampered_version_with_the_registry_check(registered: tuple[Any, Any]) -> None:
    from mlflow_store import model_folder
    from shipyard.registry import TamperedModel
    from shipyard.serving import runtime

    registry, version = registered
    (model_folder(version) / "MLmodel").write_text("flavors: {}\n")
    with pytest.raises(TamperedModel, match="changed: MLmodel"):
        runtime.load(version, registry)


def test_a_version_without_recorded_digests_is_not_served(registered: tuple[Any, Any]) -> None:
    """Fail closed: the gateway used to serve such a version unchecked."""
    import dataclasses

    from shipyard.registry import UnverifiedModel
    from shipyard.serving import runtime

    registry, version = registered
    with pytest.raises(UnverifiedModel, match="refusing to load churn/1"):
        runtime.load(dataclasses.replace(version, files_sha256=None), registry)
