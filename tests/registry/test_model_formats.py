"""A model adopted from a run is loaded only when loading cannot run code from its files, unless the run is trusted."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from mlflow_store import small_frame
from shipyard.registry import Registry, UntrustedFormat


@contextmanager
def tracking(registry: Registry) -> Iterator[str]:
    """The team's own training code points MLflow's fluent API at the store; yields the experiment id."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(registry.tracking_uri)
    try:
        yield registry.experiment_id("team")
    finally:
        mlflow.set_tracking_uri(previous)


def log_run(registry: Registry, model: Any, **options: Any) -> tuple[str, str]:
    """A run logged with mlflow.sklearn.log_model; its id and the model's source."""
    import mlflow
    import mlflow.sklearn

    frame, _ = small_frame()
    with tracking(registry) as experiment, mlflow.start_run(experiment_id=experiment) as run:
        # Fixed requirements: MLflow would otherwise infer them in a subprocess, seconds a model.
        mlflow.sklearn.log_model(model, name="clf", input_example=frame.head(3), pip_requirements=["scikit-learn"], **options)
    return run.info.run_id, registry.model_source(run.info.run_id, "clf")


def fitted(model: Any) -> Any:
    frame, y = small_frame()
    return model.fit(frame, y)


@pytest.mark.parametrize("form", ["cloudpickle", "pickle"])
def test_a_pickled_model_is_refused_unless_the_run_is_trusted(registry: Registry, form: str) -> None:
    from sklearn.linear_model import LogisticRegression

    run_id, source = log_run(registry, fitted(LogisticRegression()), serialization_format=form)
    assert registry.model_format(source) == form
    with pytest.raises(UntrustedFormat) as caught:
        registry.load_files(source, run_id=run_id)
    error = caught.value
    assert f"the model of run {run_id}" in error.message and f"saved as {form}" in error.message
    assert "--trust-pickle" in (error.hint or "") and "serialization_format='skops'" in (error.hint or "")
    trusted = registry.load_files(source, run_id=run_id, allow_pickle=True)
    assert trusted.serialization_format == form and trusted.model.predict(small_frame(rows=3)[0]).shape == (3,)


def test_a_skops_model_of_scikit_learn_types_loads_without_trust(registry: Registry) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = fitted(HistGradientBoostingClassifier(max_iter=5))
    trusted = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
    run_id, source = log_run(registry, model, serialization_format="skops", skops_trusted_types=trusted)
    assert registry.model_format(source) == "skops"
    loaded = registry.load_files(source, run_id=run_id)
    assert loaded.serialization_format == "skops" and loaded.digests == registry.file_digests(source)


def test_a_skops_model_that_trusts_other_callables_is_refused_unless_the_run_is_trusted(registry: Registry) -> None:
    """skops reads the types to trust from the model's own MLmodel, so a run can trust anything it likes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    model = fitted(make_pipeline(FunctionTransformer(operator.neg), LogisticRegression()))
    run_id, source = log_run(registry, model, serialization_format="skops", skops_trusted_types=["_operator.neg"])
    with pytest.raises(UntrustedFormat) as caught:
        registry.load_sklearn(source, run_id=run_id)
    assert "_operator.neg" in caught.value.message and "--trust-pickle" in (caught.value.hint or "")
    assert registry.load_sklearn(source, run_id=run_id, allow_pickle=True) is not None


def test_a_model_that_brings_its_own_code_is_refused_unless_the_run_is_trusted(registry: Registry, tmp_path: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    code = tmp_path / "helpers.py"
    code.write_text("VALUE = 1\n")
    run_id, source = log_run(registry, fitted(LogisticRegression()), serialization_format="skops", code_paths=[str(code)])
    with pytest.raises(UntrustedFormat, match="names a code folder"):
        registry.load_sklearn(source, run_id=run_id)


def test_a_registered_version_was_trusted_when_it_was_registered(registry: Registry) -> None:
    """Its digests show the files are those accepted then: the gateway loads an adopted cloudpickle version."""
    from datetime import UTC, datetime

    from sklearn.linear_model import LogisticRegression

    from shipyard.domain.entities import ModelVersion
    from shipyard.domain.stages import Stage

    run_id, source = log_run(registry, fitted(LogisticRegression()), serialization_format="cloudpickle")
    adopted = registry.load_files(source, run_id=run_id, allow_pickle=True)
    now = datetime.now(UTC)
    version = ModelVersion(
        model="churn",
        version=1,
        stage=Stage.CANDIDATE,
        run_id=run_id,
        source=source,
        data_uri=None,
        data_fingerprint=None,
        git_commit=None,
        files_sha256=adopted.digests,
        registered_by="bob",
        registered_at=now,
        updated_at=now,
    )
    assert registry.load_version(version).serialization_format == "cloudpickle"
    with pytest.raises(UntrustedFormat):  # the same files, not registered: no trust to carry forward
        registry.load_files(source, run_id=run_id)
