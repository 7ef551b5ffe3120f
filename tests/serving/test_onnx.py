"""The ONNX fast path: converted and checked at registration, served by ONNX Runtime, covered by the digests."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from harness import Server
from prometheus_client.parser import text_string_to_metric_families

from conftest import make_project
from shipyard.checks.equivalence import TOLERANCE
from shipyard.domain.stages import Stage
from shipyard.registry import ONNX_ARTIFACT, TamperedModel
from shipyard.service import Shipyard
from shipyard.serving import runtime

LINEAR_TRAIN = """
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler

TARGET = "churned"
CATEGORICAL = ["contract_type", "payment_method", "internet_service", "gender"]
NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "senior_citizen"]


def train(frame):
    numeric = Pipeline([("scale", StandardScaler()), ("poly", PolynomialFeatures(2))])
    categorical = OneHotEncoder(handle_unknown="ignore")
    encode = ColumnTransformer([("numeric", numeric, NUMERIC), ("categorical", categorical, CATEGORICAL)])
    model = Pipeline([("encode", encode), ("classify", LogisticRegression(max_iter=1000))])
    return model.fit(frame[NUMERIC + CATEGORICAL], frame[TARGET])
"""


@pytest.fixture(scope="module")
def linear_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A churn project whose train.py fits the linear pipeline, with one candidate version trained."""
    root = make_project(tmp_path_factory.mktemp("linear") / "project")
    (root / "train.py").write_text(LINEAR_TRAIN)
    with Shipyard.open(root, actor="alice", env={}) as service:
        service.run_pipeline("churn")
    return root


@pytest.fixture
def linear(linear_template: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "linear"
    shutil.copytree(linear_template, target)
    return target


def to_production(root: Path, version: int) -> None:
    """Straight into production through the store: what is served is under test here, not the gates."""
    with Shipyard.open(root, actor="rui", env={}) as service:
        for stage in (Stage.STAGING, Stage.PRODUCTION):
            service.store.transition(actor="rui", model="churn", version=version, to=stage, reason="serving test")


def test_the_linear_pipeline_is_converted_and_agrees_within_the_tolerance(linear: Path) -> None:
    with Shipyard.open(linear, actor="rui", env={}) as service:
        version = service.store.get_version("churn", 1)
        found = service.store.evidence("churn", 1)["serving_equivalence"]
        folder = service.registry.local_model_dir(version.source)
    assert found["converted"] is True and found["runtime"] == "onnxruntime" and found["reason"] is None
    assert found["tolerance"] == TOLERANCE and 0 <= found["max_probability_difference"] <= TOLERANCE
    assert found["classes_differing"] == 0 and found["rows"] > 1000 and found["seconds"] > 0
    # The file sits beside the model and its digest is recorded with the others.
    assert (folder / ONNX_ARTIFACT).is_file()
    assert version.files_sha256 is not None and version.files_sha256[ONNX_ARTIFACT] == found["onnx_sha256"]


def test_a_gateway_serves_the_linear_pipeline_through_onnxruntime(linear: Path) -> None:
    """Runtime: onnxruntime. Answers: the same class as scikit-learn's and probabilities within the tolerance."""
    to_production(linear, 1)
    data = pd.read_parquet(linear / "data" / "churn.parquet")
    with Shipyard.open(linear, actor="rui", env={}) as service:
        model = service.registry.load_version(service.store.get_version("churn", 1)).model
    rows = data[list(model.feature_names_in_)].head(200).reset_index(drop=True)
    expected = model.predict_proba(rows)[:, 1]
    records = json.loads(rows.to_json(orient="records"))
    with Server(linear) as server, httpx.Client() as client:
        assert server.gateway.routes["churn"].champion.loaded.runtime == "onnxruntime"
        meta = client.get(f"{server.url}/v2/models/churn").json()
        assert meta["parameters"] == {"runtime": "onnxruntime"}
        one = client.post(f"{server.url}/v1/models/churn:predict", content=json.dumps({"instances": records[:1]}))
        many = client.post(f"{server.url}/v1/models/churn:predict", content=json.dumps({"instances": records}))
        metrics = client.get(f"{server.url}/metrics").text
    for response in (one, many):
        assert response.status_code == 200, response.text
    answered = many.json()
    assert answered["version"] == 1
    # float32 arithmetic: a row alone and in a batch may round differently, within the tolerance still.
    assert abs(one.json()["probabilities"][0] - expected[0]) <= TOLERANCE
    scores, labels = np.array(answered["probabilities"]), np.array(answered["predictions"])
    assert np.array_equal(labels, (expected >= 0.5).astype(int))
    assert np.abs(scores - expected).max() <= TOLERANCE
    info = [
        sample.labels
        for family in text_string_to_metric_families(metrics)
        if family.name == "shipyard_model_runtime_info"
        for sample in family.samples
    ]
    assert {"model": "churn", "version": "1", "runtime": "onnxruntime"} in info


def test_the_gradient_boosting_champion_keeps_its_exact_tree_walk(trained_project: Path) -> None:
    """Runtime: numpy-trees. The HistGradientBoosting pipeline converts and agrees, and its ONNX file is kept, but
    numpy's walk of its trees is exact and serves it. The conversion does not depend on the process's warning
    filter: under `-W error` (as in this suite) onnx's deprecation of bool attributes once made it fail."""
    with Shipyard.open(trained_project, actor="rui", env={}) as service:
        version = service.store.get_version("churn", 1)
        found = service.store.evidence("churn", 1)["serving_equivalence"]
        loaded = runtime.load(version, service.registry, equivalence=found)
    assert found["converted"] is True and found["reason"] is None, found
    assert found["max_probability_difference"] <= found["tolerance"] and found["classes_differing"] == 0
    assert ONNX_ARTIFACT in (version.files_sha256 or {})
    assert loaded.runtime == "numpy-trees" and loaded.onnx is None
    assert loaded.runtime_reason == "the exact tree walk"


def test_a_tampered_onnx_file_is_refused_like_any_model_file(linear: Path) -> None:
    """Runtime: none. The ONNX file's digest is recorded at registration, so a changed file refuses the whole version."""
    with Shipyard.open(linear, actor="rui", env={}) as service:
        version = service.store.get_version("churn", 1)
        found = service.store.evidence("churn", 1)["serving_equivalence"]
        onnx_file = service.registry.local_model_dir(version.source) / ONNX_ARTIFACT
        assert runtime.load(version, service.registry, equivalence=found).runtime == "onnxruntime"
        onnx_file.write_bytes(onnx_file.read_bytes() + b"\x00")
        with pytest.raises(TamperedModel, match=f"changed: {ONNX_ARTIFACT}"):
            runtime.load(version, service.registry, equivalence=found)
        with pytest.raises(TamperedModel):
            service.registry.verify_version(version)


def test_evidence_that_kept_no_onnx_file_keeps_scikit_learn(linear: Path) -> None:
    """Runtime: scikit-learn. The file is served only when the evidence names it (its sha256)."""
    with Shipyard.open(linear, actor="rui", env={}) as service:
        version = service.store.get_version("churn", 1)
        found = service.store.evidence("churn", 1)["serving_equivalence"]
        other = runtime.load(version, service.registry, equivalence={**found, "onnx_sha256": "0" * 64})
        none = runtime.load(version, service.registry, equivalence=None)
    assert other.runtime == "scikit-learn" and "not the one the equivalence check kept" in other.runtime_reason
    assert none.runtime == "scikit-learn"


def test_an_adopted_run_gets_the_same_check_and_never_overwrites_another_versions_file(linear: Path) -> None:
    """Runtime: onnxruntime for the adopted version too; the file version 1's digests cover is left as it was."""
    with Shipyard.open(linear, actor="alice", env={}) as service:
        first = service.store.get_version("churn", 1)
        adopted = service.register("churn", first.run_id or "").version
        found = service.store.evidence("churn", adopted.version)["serving_equivalence"]
        service.registry.verify_version(first)  # still byte for byte what version 1 registered
        loaded = runtime.load(adopted, service.registry, equivalence=found)
    assert found["converted"] is True and found["max_probability_difference"] <= TOLERANCE, found
    assert adopted.files_sha256 is not None and adopted.files_sha256[ONNX_ARTIFACT] == found["onnx_sha256"]
    assert loaded.runtime == "onnxruntime"


def test_adopting_a_run_whose_folder_holds_another_onnx_file_leaves_it_and_keeps_scikit_learn(linear: Path) -> None:
    """Runtime: scikit-learn. A folder's different model.onnx (another version's digests may cover it) is not replaced."""
    with Shipyard.open(linear, actor="alice", env={}) as service:
        first = service.store.get_version("churn", 1)
        onnx_file = service.registry.local_model_dir(first.source) / ONNX_ARTIFACT
        other = onnx_file.read_bytes() + b"\x00"
        onnx_file.write_bytes(other)
        adopted = service.register("churn", first.run_id or "").version
        found = service.store.evidence("churn", adopted.version)["serving_equivalence"]
        loaded = runtime.load(adopted, service.registry, equivalence=found)
    assert found["converted"] is False and "already holds another model.onnx" in found["reason"]
    assert onnx_file.read_bytes() == other and loaded.runtime == "scikit-learn"


def test_the_runtime_setting_pins_scikit_learn_for_every_model(linear: Path, trained_project: Path) -> None:
    """Runtime: scikit-learn for both the ONNX-converted pipeline and the tree-walked champion when the gateway is
    told `runtime: scikit-learn`; the reason names the setting."""
    for root in (linear, trained_project):
        with Shipyard.open(root, actor="rui", env={}) as service:
            version = service.store.get_version("churn", 1)
            found = service.store.evidence("churn", 1)["serving_equivalence"]
            pinned = runtime.load(version, service.registry, equivalence=found, fast=False)
        assert pinned.runtime == "scikit-learn" and pinned.onnx is None and pinned.on_arrays is None
        assert "runtime setting" in pinned.runtime_reason


def test_serve_refuses_an_unknown_runtime(linear: Path) -> None:
    from typer.testing import CliRunner

    from shipyard.cli import app

    done = CliRunner().invoke(app, ["--project", str(linear), "serve", "--runtime", "tensorrt"])
    assert done.exit_code == 2 and "--runtime must be auto or scikit-learn, got 'tensorrt'" in done.output
