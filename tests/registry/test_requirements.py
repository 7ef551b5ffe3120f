"""A model's requirements: exact pins, with the module → distribution index kept between commands."""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

import pytest

from shipyard.registry.requirements import environment_key, model_requirements


def small_pipeline() -> object:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression())


def test_pins_are_the_models_distributions_and_the_cache_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = small_pipeline()
    plain = model_requirements(model)
    assert f"scikit-learn=={md.version('scikit-learn')}" in plain and f"mlflow=={md.version('mlflow')}" in plain
    assert model_requirements(model, cache_dir=tmp_path) == plain
    assert len(list(tmp_path.glob("packages-distributions-*.json"))) == 1
    scans: list[int] = []
    real = md.packages_distributions
    # Counting calls (the real function still answers): the second command must not scan again.
    monkeypatch.setattr(md, "packages_distributions", lambda: scans.append(1) or real())
    assert model_requirements(model, cache_dir=tmp_path) == plain and scans == []


def test_an_unreadable_cache_is_rebuilt(tmp_path: Path) -> None:
    (tmp_path / f"packages-distributions-{environment_key()}.json").write_text("{not json")
    assert model_requirements(small_pipeline(), cache_dir=tmp_path) == model_requirements(small_pipeline())
