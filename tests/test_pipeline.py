"""The governed training pipeline against a real MLflow store in a temp folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shipyard import pipeline
from shipyard.config import load_settings
from shipyard.data import sha256_file
from shipyard.domain.errors import InvalidSpec, NotFound
from shipyard.domain.stages import Stage
from shipyard.service import Shipyard


def test_time_split_holds_out_the_most_recent_rows(project: Path) -> None:
    settings = load_settings(project, env={})
    spec = settings.model("churn")
    frame = pd.read_parquet(project / "data" / "churn.parquet").sample(frac=1.0, random_state=3)
    parts = pipeline.split(spec, frame)
    assert len(parts.holdout) == round(len(frame) * 0.2)
    assert parts.train["signup_date"].max() <= parts.holdout["signup_date"].min()
    again = pipeline.split(spec, frame.sample(frac=1.0, random_state=4))
    pd.testing.assert_frame_equal(parts.holdout.reset_index(drop=True), again.holdout.reset_index(drop=True))
    assert parts.method == "time:signup_date"


def test_random_split_is_seeded(project: Path) -> None:
    settings = load_settings(project, env={})
    spec = settings.model("churn")
    spec = spec.model_copy(update={"data": spec.data.model_copy(update={"time_column": None})})
    frame = pd.read_parquet(project / "data" / "churn.parquet")
    first, second = pipeline.split(spec, frame), pipeline.split(spec, frame)
    pd.testing.assert_frame_equal(first.holdout, second.holdout)
    assert first.method == "hash:seed=42"
    assert first.holdout["signup_date"].min() < frame["signup_date"].quantile(0.05)  # old rows too, not the newest
    assert abs(len(first.holdout) / len(frame) - 0.2) < 0.02  # about the holdout fraction
    reseeded = spec.model_copy(update={"data": spec.data.model_copy(update={"seed": 7})})
    assert set(pipeline.split(reseeded, frame).holdout["customer_id"]) != set(first.holdout["customer_id"])


@pytest.mark.parametrize("id_column", ["customer_id", None])
def test_rows_appended_for_a_retrain_never_cross_the_split(project: Path, id_column: str | None) -> None:
    """A retrain on the data plus labelled traffic: its holdout holds none of the rows the champion trained on
    (with a shuffle of the whole frame, 306 of a retrained abalone version's 1,119 holdout rows had been its
    champion's training rows)."""
    settings = load_settings(project, env={})
    spec = settings.model("churn")
    spec = spec.model_copy(update={"data": spec.data.model_copy(update={"time_column": None, "id_column": id_column})})
    frame = pd.read_parquet(project / "data" / "churn.parquet")
    old, new_rows = frame.iloc[:15_000], frame.iloc[15_000:]
    champion = pipeline.split(spec, old)
    retrain = pipeline.split(spec, pd.concat([old, new_rows], ignore_index=True))
    assert not set(retrain.holdout["customer_id"]) & set(champion.train["customer_id"])
    assert set(champion.holdout["customer_id"]) <= set(retrain.holdout["customer_id"])
    shuffled = pipeline.split(spec, frame.sample(frac=1.0, random_state=5))  # the order rows come in does not matter
    assert set(shuffled.holdout["customer_id"]) == set(retrain.holdout["customer_id"])


def test_pipeline_logs_everything_and_registers_a_candidate(trained_project: Path) -> None:
    from mlflow import MlflowClient
    from sklearn.metrics import roc_auc_score

    with Shipyard.open(trained_project, actor="bob", env={}) as service:
        result = service.run_pipeline("churn")
        version = result.version
        assert version.version == 3 and version.stage is Stage.CANDIDATE and version.registered_by == "bob"

        data = trained_project / "data" / "churn.parquet"
        assert version.data_fingerprint == sha256_file(data)
        assert version.data_uri == data.resolve().as_uri()
        assert version.git_commit is not None and len(version.git_commit) == 40

        client = MlflowClient(tracking_uri=service.settings.tracking_uri, registry_uri=service.settings.registry_uri)
        run = client.get_run(result.run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["shipyard.data.fingerprint"] == version.data_fingerprint
        assert run.data.tags["mlflow.source.git.commit"] == version.git_commit
        assert run.data.tags["shipyard.git.dirty"] == "false"
        assert run.data.tags["mlflow.user"] == "bob"
        assert run.data.params["shipyard.split"] == "time:signup_date"
        assert run.data.params["classify__max_iter"] == "150"
        for name in ("roc_auc", "accuracy", "f1", "log_loss", "brier"):
            assert run.data.metrics[f"holdout_{name}"] == pytest.approx(result.metrics[name])
        [dataset_input] = run.inputs.dataset_inputs
        assert dataset_input.dataset.digest == version.data_fingerprint[:36]

        mv = client.get_model_version("churn", "3")
        assert mv.tags["shipyard.stage"] == "candidate"
        assert mv.run_id == result.run_id

        # The logged model reproduces the logged metric on the same holdout (reference: scikit-learn).
        import mlflow.sklearn

        model = mlflow.sklearn.load_model(version.source)
        settings = service.settings
        parts = pipeline.split(settings.model("churn"), pd.read_parquet(data))
        features = parts.holdout.drop(columns=["churned", "customer_id", "signup_date"])
        expected = roc_auc_score(parts.holdout["churned"], model.predict_proba(features)[:, 1])
        assert result.metrics["roc_auc"] == pytest.approx(expected, abs=1e-12)

        model_dir = Path(version.source.removeprefix("file://"))
        requirements = (model_dir / "requirements.txt").read_text().split()
        assert any(r.startswith("scikit-learn==") for r in requirements)
        assert any(r.startswith("mlflow==") for r in requirements)
        assert not any(r.startswith(("pytest", "rich")) for r in requirements)
        assert (model_dir / "input_example.json").is_file()
        from mlflow.models import Model

        signature = Model.load(str(model_dir / "MLmodel")).signature
        assert signature is not None
        assert signature.inputs.input_names() == list(features.columns)


def test_dirty_work_tree_is_recorded(trained_project: Path) -> None:
    (trained_project / "train.py").write_text((trained_project / "train.py").read_text() + "\n# tweak\n")
    assert pipeline.git_info(trained_project).dirty is True
    (trained_project / "train.py").write_text((trained_project / "train.py").read_text())


def test_no_git_means_no_commit(tmp_path: Path) -> None:
    assert pipeline.git_info(tmp_path) == pipeline.GitInfo(commit=None, dirty=None)


def _break(project: Path, old: str, new: str, file: str = "shipyard.yaml") -> None:
    path = project / file
    path.write_text(path.read_text().replace(old, new))


@pytest.mark.parametrize(
    ("file", "old", "new", "error", "expected"),
    [
        ("shipyard.yaml", "target: churned", "target: cancelled", InvalidSpec, "has no column 'cancelled'"),
        ("shipyard.yaml", "data/churn.parquet", "data/missing.parquet", NotFound, "missing.parquet does not exist"),
        ("shipyard.yaml", "train.py:train", "train.py:fit", InvalidSpec, "has no function 'fit'"),
        ("shipyard.yaml", "train.py:train", "nope.py:train", NotFound, "nope.py does not exist"),
        # Three text labels make a multiclass target, which roc_auc (the template's primary metric) cannot judge.
        ("shipyard.yaml", "target: churned", "target: contract_type", InvalidSpec, "does not apply to a multiclass model"),
        (
            "train.py",
            "return model.fit(features, frame[TARGET])",
            "raise ValueError('bad hyperparameter')",
            InvalidSpec,
            "train.py:train raised ValueError: bad hyperparameter (at train.py line",
        ),
        ("train.py", "return model.fit(features, frame[TARGET])", "return None", InvalidSpec, "returned None"),
        ("train.py", "from sklearn.compose", "import not_a_module\nfrom sklearn.compose", InvalidSpec, "ModuleNotFoundError"),
    ],
)
def test_bad_project_inputs_are_named(
    project: Path, file: str, old: str, new: str, error: type[Exception], expected: str
) -> None:
    _break(project, old, new, file)
    with Shipyard.open(project, actor="alice", env={}) as service:
        with pytest.raises(error) as caught:
            service.run_pipeline("churn")
        assert expected in str(caught.value)
        assert service.store.list_versions() == []


def test_each_pipeline_step_emits_openlineage_events(trained_project: Path) -> None:
    from shipyard.lineage import read_events
    from test_lineage import openlineage_registry, validate_event

    events = read_events(trained_project / ".shipyard" / "lineage")
    runs = [e for e in events if e["job"]["name"] == "churn.pipeline"]
    assert [e["eventType"] for e in runs] == ["START", "COMPLETE"] * 2  # the template trained twice
    parent = runs[-1]["run"]["runId"]
    children = [e for e in events if e["run"].get("facets", {}).get("parent", {}).get("run", {}).get("runId") == parent]
    steps = [(e["job"]["name"], e["eventType"]) for e in children]
    assert steps == [
        (f"churn.{name}", state) for name in ("load_data", "train", "evaluate", "register") for state in ("START", "COMPLETE")
    ]
    data = children[0]["inputs"] or children[1]["inputs"]
    settings = load_settings(trained_project, env={})
    with Shipyard(settings) as service:
        version = service.store.get_version("churn", 2)
    assert data[0]["facets"]["version"]["datasetVersion"] == version.data_fingerprint
    assert {f["name"] for f in data[0]["facets"]["schema"]["fields"]} >= {"tenure_months", "churned"}
    (model,) = children[-1]["outputs"]
    assert model["name"] == "models/churn" and model["facets"]["version"]["datasetVersion"] == "2"
    schemas = openlineage_registry()
    for event in events:
        validate_event(event, schemas)
