"""A regression project (abalone) and a multiclass project (penguins) on real data scikit-lego ships:
scaffold, pipeline, evidence, gates, a champion, and the bad inputs each task has."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from conftest import make_project
from shipyard.domain.errors import InvalidSpec
from shipyard.service import Shipyard


def svc(root: Path, actor: str = "alice") -> Shipyard:
    return Shipyard.open(root, actor=actor, env={})


def to_production(root: Path, model: str, version: int) -> None:
    with svc(root) as service:
        service.promote(model, version, "staging", reason="gates passed")
        service.promote(model, version, "production", reason="gates passed")


def serve(root: Path, model: str, rows: pd.DataFrame) -> dict[str, Any]:
    """The champion's answers to ``rows`` through a real gateway, in both protocols, and its metadata."""
    from serving.harness import Server

    records = json.loads(rows.to_json(orient="records"))
    v2 = {"inputs": [{"name": c, "shape": [len(rows)], "datatype": "FP64" if rows[c].dtype.kind == "f" else "BYTES",
                      "data": rows[c].tolist()} for c in rows.columns]}  # fmt: skip
    with Server(root) as server, httpx.Client() as client:
        one = client.post(f"{server.url}/v1/models/{model}:predict", json={"instances": records})
        two = client.post(f"{server.url}/v2/models/{model}/infer", json=v2)
        meta = client.get(f"{server.url}/v2/models/{model}")
    assert one.status_code == 200, one.text
    assert two.status_code == 200, two.text
    return {"v1": one.json(), "v2": {o["name"]: o for o in two.json()["outputs"]}, "metadata": meta.json()}


def test_a_regression_project_from_init_to_a_champion_comparison(tmp_path: Path) -> None:
    root = make_project(tmp_path / "abalone", example="abalone")
    assert len(pd.read_parquet(root / "data" / "abalone.parquet")) == 4177
    with svc(root) as service:
        first = service.run_pipeline("abalone")
        report = service.gate("abalone", first.version.version, "staging")
        evidence = service.evidence("abalone", first.version.version)
    assert report.passed, [(r.name, r.observed) for r in report.results if r.blocking]
    assert evidence is not None and evidence["task"] == "regression" and evidence["task_source"] == "declared"
    holdout = evidence["metrics"]["holdout"]
    assert set(holdout) == {"rmse", "mae", "r2", "mape"} and 0.3 < holdout["r2"] < 1 and holdout["rmse"] > holdout["mae"]
    assert set(evidence["metrics"]["slices"]["sex"]) == {"F", "I", "M"}
    groups = evidence["fairness"]["sex"]["by_group"]
    assert sum(g["count"] for g in groups.values()) == evidence["rows"]["holdout"]
    assert {"mean_error", "mean_prediction"} <= set(groups["I"])
    assert evidence["robustness"]["passed"]

    to_production(root, "abalone", first.version.version)
    rows = pd.read_parquet(root / "data" / "abalone.parquet").head(3)
    served = serve(root, "abalone", rows.drop(columns=["rings"]))
    assert served["v1"]["predictions"] == pytest.approx(served["v2"]["predict"]["data"], rel=1e-6)
    assert "probabilities" not in served["v1"] and served["v2"]["predict"]["datatype"] == "FP64"
    assert all(3 < value < 20 for value in served["v1"]["predictions"])
    assert [o["name"] for o in served["metadata"]["outputs"]] == ["predict"]
    with svc(root) as service:
        second = service.run_pipeline("abalone")
        evidence = service.evidence("abalone", second.version.version)
        report = service.gate("abalone", second.version.version, "staging")
    comparison = evidence["comparison"]
    assert comparison["champion_version"] == first.version.version and comparison["metric"] == "rmse"
    # The same code and data: the same model, so no improvement and no significant difference.
    assert comparison["bootstrap"]["improvement"] == pytest.approx(0.0, abs=1e-9)
    assert "wilcoxon" not in comparison  # no row differs
    [compare] = [r for r in report.results if r.kind == "compare_champion"]
    assert compare.outcome.value == "passed"


def test_a_multiclass_project_with_per_class_evidence(tmp_path: Path) -> None:
    root = make_project(tmp_path / "penguins", example="penguins")
    with svc(root) as service:
        first = service.run_pipeline("penguins")
        report = service.gate("penguins", first.version.version, "staging")
        evidence = service.evidence("penguins", first.version.version)
    assert report.passed, [(r.name, r.observed) for r in report.results if r.blocking]
    assert evidence["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert set(evidence["metrics"]["holdout"]) == {"accuracy", "f1_macro", "f1_weighted", "log_loss"}
    assert set(evidence["metrics"]["per_class_recall"]) == {"Adelie", "Chinstrap", "Gentoo"}
    island = evidence["fairness"]["island"]["by_group"]
    assert set(island["Biscoe"]["selection_rate"]) == {"Adelie", "Chinstrap", "Gentoo"}
    assert sum(island["Biscoe"]["selection_rate"].values()) == pytest.approx(1.0)

    to_production(root, "penguins", first.version.version)
    rows = pd.read_parquet(root / "data" / "penguins.parquet").iloc[[0, 200, 300]]
    served = serve(root, "penguins", rows.drop(columns=["species", "sex"]))
    assert served["v1"]["predictions"] == rows["species"].tolist() == served["v2"]["predict"]["data"]
    assert served["v2"]["predict"]["datatype"] == "BYTES"
    probability = served["v2"]["probability"]
    assert probability["shape"] == [3, 3] and probability["datatype"] == "FP64"
    assert [sum(row) for row in served["v1"]["probabilities"]] == pytest.approx([1.0, 1.0, 1.0])
    [meta] = [o for o in served["metadata"]["outputs"] if o["name"] == "probability"]
    assert meta["shape"] == [-1, 3] and meta["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    # The data's labels change: a version predicting another label set blocks, with the reason.
    data = root / "data" / "penguins.parquet"
    frame = pd.read_parquet(data)
    frame["species"] = frame["species"].replace({"Gentoo": "Gentoo papua"})
    frame.to_parquet(data, index=False)
    with svc(root) as service:
        second = service.run_pipeline("penguins")
        report = service.gate("penguins", second.version.version, "staging")
    assert not report.passed
    [label_set] = [r for r in report.results if r.name == "label set"]
    assert "Gentoo papua" in label_set.observed and label_set.blocking


def test_a_continuous_target_declared_binary_is_refused_with_column_and_values(tmp_path: Path) -> None:
    root = make_project(tmp_path / "abalone", example="abalone")
    config = root / "shipyard.yaml"
    config.write_text(
        config.read_text().replace("task: regression", "task: binary").replace("primary_metric: rmse", "primary_metric: roc_auc")
    )
    with svc(root) as service, pytest.raises(InvalidSpec) as caught:
        service.run_pipeline("abalone")
    message = str(caught.value)
    assert "'rings'" in message and "task: binary (declared)" in message and "28 distinct values" in message


def test_the_task_is_inferred_and_recorded_when_not_declared(tmp_path: Path) -> None:
    root = make_project(tmp_path / "penguins", example="penguins")
    config = root / "shipyard.yaml"
    config.write_text(config.read_text().replace("    task: multiclass\n", ""))
    with svc(root) as service:
        result = service.run_pipeline("penguins")
        evidence = service.evidence("penguins", result.version.version)
    assert evidence["task"] == "multiclass" and evidence["task_source"] == "inferred"
    # The monitor and a rollout judge it by its evidenced task's metric (f1_macro), not the binary default.
    import time

    from shipyard.predlog import PredictionLog

    version = result.version.version
    to_production(root, "penguins", version)
    frame = pd.read_parquet(root / "data" / "penguins.parquet").dropna(subset=["bill_length_mm"]).reset_index(drop=True)
    features = frame.drop(columns=["species", "sex"])
    with svc(root) as service:
        assert service.task_of("penguins") == ("multiclass", ["Adelie", "Chinstrap", "Gentoo"])
        model = service.registry.load_version(service.store.get_version("penguins", version)).model
    proba = model.predict_proba(features)
    ids = [f"p{i}" for i in range(len(frame))]
    with PredictionLog(root / ".shipyard" / "predictions") as log:
        log.append(
            model="penguins", version=version, request_ids=ids, received_at=[time.time()] * len(ids),
            routing=["champion"] * len(ids), features={c: features[c].tolist() for c in features.columns},
            predictions=proba.argmax(axis=1), scores=proba.max(axis=1), latency_ms=[1.0] * len(ids),
            status=[200] * len(ids), probabilities=proba,
        )  # fmt: skip
    labels = root / "labels.csv"
    pd.DataFrame({"request_id": ids, "species": frame["species"]}).to_csv(labels, index=False)
    with svc(root) as service:
        service.ingest_labels(labels, model="penguins")
        (outcome,) = service.monitor("penguins", last=len(ids))
    live = outcome.run.report["performance"]["live"]
    assert live["metric"] == "f1_macro" and live["rows"] == len(ids) and live["value"] > 0.9


def test_regression_output_drift_is_watched(tmp_path: Path) -> None:
    """Abalone served and logged: heavier shells than the training data's move the predicted rings, and the
    monitor's prediction drift (PSI of the logged predictions against the holdout's) alerts."""
    import time

    import yaml

    from shipyard.predlog import PredictionLog

    root = make_project(tmp_path / "abalone", example="abalone")
    config = root / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["models"]["abalone"]["monitoring"] = {
        "min_rows": 100,
        "alerts": [{"signal": "prediction_drift", "threshold": 0.25, "action": "none"}],
    }
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    with svc(root) as service:
        version = service.run_pipeline("abalone").version.version
    to_production(root, "abalone", version)
    frame = pd.read_parquet(root / "data" / "abalone.parquet").drop(columns=["rings"])
    with svc(root) as service:
        model = service.registry.load_version(service.store.get_version("abalone", version)).model

    def log(rows: pd.DataFrame, tag: str) -> None:
        values = model.predict(rows)
        with PredictionLog(root / ".shipyard" / "predictions") as predictions:
            predictions.append(
                model="abalone", version=version, request_ids=[f"{tag}-{i}" for i in range(len(rows))],
                received_at=[time.time()] * len(rows), routing=["champion"] * len(rows),
                features={c: rows[c].tolist() for c in rows.columns}, predictions=values, scores=values,
                latency_ms=[1.0] * len(rows), status=[200] * len(rows),
            )  # fmt: skip

    log(frame.sample(600, random_state=1), "same")
    with svc(root) as service:
        (calm,) = service.monitor("abalone", last=600)
    [reading] = calm.run.report["signals"]
    assert reading["fired"] is False and reading["observed"] < 0.25
    heavy = frame.sample(600, random_state=2).reset_index(drop=True)
    for column in ("whole_weight", "shucked_weight", "viscera_weight", "shell_weight", "length", "diameter"):
        heavy[column] = heavy[column] * 1.6
    log(heavy, "heavy")
    with svc(root) as service:
        (shifted,) = service.monitor("abalone", last=600)
    [reading] = shifted.run.report["signals"]
    assert reading["fired"] is True and reading["observed"] > 0.25
    assert len(shifted.opened) == 1
