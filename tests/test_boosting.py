"""LightGBM and XGBoost through the pipeline, adoption from their own MLflow flavors, and serving; a generic
pyfunc model with the evidence its predict alone can give. Real libraries, real MLflow runs, real data
(scikit-lego's abalone and penguins)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conftest import make_project
from shipyard.domain.errors import InvalidSpec
from shipyard.registry.integrity import UntrustedFormat
from shipyard.service import Shipyard
from test_tasks import serve, to_production

NUMERIC = ["length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight", "shell_weight"]


def svc(root: Path, actor: str = "alice") -> Shipyard:
    return Shipyard.open(root, actor=actor, env={})


@contextmanager
def team_run(root: Path) -> Iterator[Any]:
    """An MLflow run of the project's experiment, as a team's own training code opens it (fluent API)."""
    import mlflow

    with svc(root) as service:
        uri = service.settings.tracking_uri
        experiment = service.registry.experiment_id(service.settings.experiment)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run(experiment_id=experiment) as run:
            yield run
    finally:
        mlflow.set_tracking_uri(previous)


def logged(root: Path, log: Callable[[], None]) -> str:
    with team_run(root) as run:
        log()
    return str(run.info.run_id)


@pytest.fixture(scope="module")
def abalone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("boosting") / "abalone", example="abalone")


def test_lightgbm_trained_by_the_pipeline(abalone: Path) -> None:
    (abalone / "train.py").write_text(
        "import lightgbm\n"
        "from sklearn.compose import ColumnTransformer\n"
        "from sklearn.pipeline import Pipeline\n"
        "from sklearn.preprocessing import OneHotEncoder\n\n"
        "def train(frame):\n"
        "    encode = ColumnTransformer([('sex', OneHotEncoder(handle_unknown='ignore'), ['sex'])], remainder='passthrough')\n"
        "    model = Pipeline([('encode', encode), ('fit', lightgbm.LGBMRegressor(n_estimators=80, verbose=-1))])\n"
        "    return model.fit(frame.drop(columns=['rings']), frame['rings'])\n"
    )
    with svc(abalone) as service:
        result = service.run_pipeline("abalone")
        evidence = service.evidence("abalone", result.version.version)
        report = service.gate("abalone", result.version.version, "staging")
    assert evidence["task"] == "regression" and 0.4 < evidence["metrics"]["holdout"]["r2"] < 1
    assert "onnxmltools" in evidence["serving_equivalence"]["converter"]
    assert report.passed, [(r.name, r.observed) for r in report.results if r.blocking]


def test_xgboost_adopted_from_its_flavor_and_served(abalone: Path) -> None:
    import mlflow.xgboost
    import xgboost

    frame = pd.read_parquet(abalone / "data" / "abalone.parquet")
    model = xgboost.XGBRegressor(n_estimators=60, max_depth=4).fit(frame[NUMERIC], frame["rings"])
    run_id = logged(abalone, lambda: mlflow.xgboost.log_model(model, name="model", input_example=frame[NUMERIC].head(3)))
    with svc(abalone) as service:
        result = service.register("abalone", run_id)
        evidence = service.evidence("abalone", result.version.version)
    version = result.version.version
    assert evidence["task"] == "regression" and evidence["metrics"]["holdout"]["rmse"] < 3
    assert evidence["serving_equivalence"]["rows"] > 0  # checked; converted or not, with the reason
    to_production(abalone, "abalone", version)
    rows = frame[NUMERIC].head(4)
    served = serve(abalone, "abalone", rows)
    assert served["v1"]["predictions"] == pytest.approx(model.predict(rows).astype(float).tolist(), rel=1e-5)


def test_a_native_lightgbm_booster_is_adopted_and_a_pickled_one_needs_trust(abalone: Path) -> None:
    import lightgbm
    import mlflow.lightgbm

    frame = pd.read_parquet(abalone / "data" / "abalone.parquet")
    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1}, lightgbm.Dataset(frame[NUMERIC], frame["rings"]), num_boost_round=40
    )
    run_id = logged(abalone, lambda: mlflow.lightgbm.log_model(booster, name="model", input_example=frame[NUMERIC].head(3)))
    with svc(abalone) as service:
        result = service.register("abalone", run_id)
        evidence = service.evidence("abalone", result.version.version)
    assert evidence["metrics"]["holdout"]["rmse"] < 3 and result.version.version > 0

    wrapper = lightgbm.LGBMRegressor(n_estimators=20, verbose=-1).fit(frame[NUMERIC], frame["rings"])
    run_id = logged(abalone, lambda: mlflow.lightgbm.log_model(wrapper, name="model", input_example=frame[NUMERIC].head(3)))
    with svc(abalone) as service:
        with pytest.raises(UntrustedFormat, match="pickle"):
            service.register("abalone", run_id)
        trusted = service.register("abalone", run_id, trust_pickle=True)
    assert trusted.metrics["rmse"] < 3.5


def test_a_pyfunc_model_gets_the_evidence_predict_can_give(tmp_path: Path) -> None:
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    root = make_project(tmp_path / "penguins", example="penguins")
    frame = pd.read_parquet(root / "data" / "penguins.parquet")
    columns = ["bill_length_mm", "flipper_length_mm"]

    class Rule(mlflow.pyfunc.PythonModel):  # a hand-written classifier: labels, no probabilities
        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> list[str]:
            long_flipper = model_input["flipper_length_mm"] > 206
            long_bill = model_input["bill_length_mm"] > 44
            return ["Gentoo" if f else "Chinstrap" if b else "Adelie" for f, b in zip(long_flipper, long_bill, strict=True)]

    with warnings.catch_warnings():
        # MLflow warns that this model has no input example, which is the point of it.
        warnings.simplefilter("ignore", UserWarning)
        unsigned = logged(root, lambda: mlflow.pyfunc.log_model(name="model", python_model=Rule()))
    signature = infer_signature(frame[columns], frame["species"])
    example = frame[columns].head(3)
    signed = logged(
        root, lambda: mlflow.pyfunc.log_model(name="model", python_model=Rule(), signature=signature, input_example=example)
    )
    with svc(root) as service:
        with pytest.raises(InvalidSpec, match="no input signature"):
            service.register("penguins", unsigned, trust_pickle=True)
        result = service.register("penguins", signed, trust_pickle=True)
        report = service.gate("penguins", result.version.version, "staging")
        evidence = service.evidence("penguins", result.version.version)
    assert set(evidence["metrics"]["holdout"]) == {"accuracy", "f1_macro", "f1_weighted"}
    assert evidence["metrics"]["holdout"]["accuracy"] > 0.7
    results = {r.name: r for r in report.results}
    listed = results["evidence not applicable"].observed
    assert "metric log_loss" in listed and "robustness" in listed
    # The policy's log_loss rule cannot pass on a model without probabilities: it says why, and blocks.
    [log_loss] = [r for r in report.results if r.kind == "metric" and r.outcome.value == "error"]
    assert "not applicable" in log_loss.observed and "no class probabilities" in log_loss.observed
    assert not report.passed
