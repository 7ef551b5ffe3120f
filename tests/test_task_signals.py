"""Delayed labels, live metrics and rollout divergence for regression and multiclass models, on prediction logs
written by the real log writer."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.domain.errors import InvalidSpec
from shipyard.labels import ingest, read_labels
from shipyard.monitoring.monitor import live_performance
from shipyard.predlog import PredictionLog, read_log
from shipyard.rollout import analyze
from test_rollout_analysis import rollout as binary_rollout

CLASSES = ["Adelie", "Chinstrap", "Gentoo"]


def log(
    root: Path,
    ids: list[str],
    *,
    version: int = 1,
    routing: str = "champion",
    predictions: Any,
    scores: Any,
    probabilities: Any = None,
    model: str = "m",
) -> None:
    n = len(ids)
    with PredictionLog(root) as writer:
        writer.append(
            model=model,
            version=version,
            request_ids=ids,
            received_at=[time.time()] * n,
            routing=[routing] * n,
            features={"x": list(range(n))},
            predictions=predictions,
            scores=scores,
            latency_ms=[1.0] * n,
            status=[200] * n,
            model_ms=[0.5] * n,
            probabilities=probabilities,
        )


def labels_file(path: Path, ids: list[str], values: list[Any], column: str = "y") -> Path:
    pd.DataFrame({"request_id": ids, column: values}).to_csv(path, index=False)
    return path


# -- labels ---------------------------------------------------------------------------------------


def test_regression_labels_are_stored_as_values_and_ingest_once(tmp_path: Path) -> None:
    ids = ["a", "b", "c"]
    log(tmp_path / "log", ids, predictions=[9.5, 11.0, 7.2], scores=[9.5, 11.0, 7.2])
    path = labels_file(tmp_path / "labels.csv", ids, [9.0, 12.5, 7.0])
    kwargs: dict[str, Any] = {"model": "m", "log_root": tmp_path / "log", "labels_root": tmp_path / "labels"}
    first = ingest(path, label_column="y", task="regression", **kwargs)
    again = ingest(path, label_column="y", task="regression", **kwargs)
    table = read_labels(tmp_path / "labels", "m")
    assert table.schema.field("label").type == pa.float64()
    assert dict(zip(table.column("request_id").to_pylist(), table.column("label").to_pylist(), strict=True)) == {
        "a": 9.0,
        "b": 12.5,
        "c": 7.0,
    }
    assert (first.stored, again.stored, again.unchanged) == (3, 0, 3)


def test_multiclass_labels_are_stored_as_class_names_and_checked_against_the_label_set(tmp_path: Path) -> None:
    ids = ["a", "b", "c"]
    log(tmp_path / "log", ids, predictions=[0, 2, 1], scores=[0.9, 0.8, 0.7], probabilities=np.eye(3)[[0, 2, 1]])
    kwargs: dict[str, Any] = {"model": "m", "log_root": tmp_path / "log", "labels_root": tmp_path / "labels"}
    path = labels_file(tmp_path / "labels.csv", ids, ["Adelie", "Gentoo", "Gentoo"], column="species")
    ingest(path, label_column="species", task="multiclass", classes=CLASSES, **kwargs)
    table = read_labels(tmp_path / "labels", "m")
    assert table.schema.field("label").type == pa.string()
    assert table.column("label").to_pylist() == ["Adelie", "Gentoo", "Gentoo"]
    labels_file(path, ids, ["Adelie", "Emperor", "Gentoo"], column="species")
    with pytest.raises(InvalidSpec) as caught:
        ingest(path, label_column="species", task="multiclass", classes=CLASSES, **kwargs)
    message = str(caught.value)
    assert "'species'" in message and "'Emperor'" in message and "Adelie, Chinstrap, Gentoo" in message
    # Integer-coded classes are stored as the evidence names them: "0", "1", "2".
    labels_file(path, ids, [0, 2, 1], column="species")
    ingest(path, label_column="species", task="multiclass", classes=["0", "1", "2"], model="n", log_root=tmp_path / "log",
           labels_root=tmp_path / "labels")  # fmt: skip
    assert read_labels(tmp_path / "labels", "n").num_rows == 0  # model n logged nothing: nothing matched
    log(tmp_path / "log", ids, predictions=[0, 2, 1], scores=[0.9, 0.8, 0.7], model="n")
    ingest(path, label_column="species", task="multiclass", classes=["0", "1", "2"], model="n", log_root=tmp_path / "log",
           labels_root=tmp_path / "labels")  # fmt: skip
    assert read_labels(tmp_path / "labels", "n").column("label").to_pylist() == ["0", "2", "1"]


@pytest.mark.parametrize(
    ("task", "values", "words"),
    [
        ("regression", [9.0, "old", "young"], "are not numbers"),
        ("regression", [9.0, None, 3.0], "are not numbers"),
        ("multiclass", ["Adelie", None, "Gentoo"], "are missing"),
        ("binary", [0, 1, 2], "not 0 or 1"),
    ],
)
def test_labels_that_do_not_fit_the_task_are_refused_naming_column_and_values(
    tmp_path: Path, task: str, values: list[Any], words: str
) -> None:
    ids = ["a", "b", "c"]
    log(tmp_path / "log", ids, predictions=[1, 0, 1], scores=[0.9, 0.1, 0.8])
    path = labels_file(tmp_path / "labels.csv", ids, values, column="rings")
    with pytest.raises(InvalidSpec) as caught:
        ingest(path, model="m", log_root=tmp_path / "log", labels_root=tmp_path / "labels", label_column="rings", task=task)
    message = str(caught.value)
    assert words in message and "'rings'" in message
    if task == "regression" and "old" in values:
        assert "'old', 'young'" in message
    assert not (tmp_path / "labels").exists()


def test_label_files_written_as_int8_still_read_and_widen_beside_newer_ones(tmp_path: Path) -> None:
    folder = tmp_path / "model=m"
    folder.mkdir()
    now = pd.Timestamp.now(tz="UTC")

    def part(name: str, label: pa.Array, at: pd.Timestamp) -> None:
        pq.write_table(
            pa.table({"request_id": pa.array(["a", "b"]), "label": label, "ingested_at": pa.array([at, at]),
                      "source_sha256": pa.array(["x", "x"])}),
            folder / f"part-{name}.parquet",
        )  # fmt: skip

    part("1", pa.array([0, 1], pa.int8()), now)
    old = read_labels(tmp_path, "m")
    assert old.schema.field("label").type == pa.int8() and old.column("label").to_pylist() == [0, 1]
    part("2", pa.array([2.5, 1.0], pa.float64()), now + pd.Timedelta(seconds=1))
    both = read_labels(tmp_path, "m")
    assert both.schema.field("label").type == pa.float64() and both.column("label").to_pylist() == [2.5, 1.0]


# -- live metrics ---------------------------------------------------------------------------------


def multiclass_window(tmp_path: Path, *, with_probabilities: bool) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 300
    truth = rng.integers(0, 3, n)
    proba = rng.dirichlet([1, 1, 1], n)
    proba[np.arange(n), truth] += rng.random(n) * 2  # mostly right
    proba /= proba.sum(axis=1, keepdims=True)
    ids = [f"r{i}" for i in range(n)]
    log(tmp_path, ids, predictions=proba.argmax(axis=1), scores=proba.max(axis=1),
        probabilities=proba if with_probabilities else None)  # fmt: skip
    frame = read_log(tmp_path, model="m").to_pandas()
    labels = pd.DataFrame({"request_id": ids, "label": [CLASSES[i] for i in truth]})
    return frame, labels, truth, proba


@pytest.mark.parametrize("with_probabilities", [True, False])
def test_a_multiclass_live_metric_from_delayed_labels(tmp_path: Path, with_probabilities: bool) -> None:
    from sklearn.metrics import f1_score

    frame, labels, truth, proba = multiclass_window(tmp_path, with_probabilities=with_probabilities)
    performance, notes = live_performance(frame, labels, metric="f1_macro", holdout=0.95, task="multiclass", classes=CLASSES)
    assert notes == [] and performance is not None
    live = performance["live"]
    assert live["value"] == pytest.approx(f1_score(truth, proba.argmax(axis=1), average="macro"))
    assert live["ci_low"] < live["value"] < live["ci_high"] and live["rows"] == 300
    assert performance["decay"] == pytest.approx(0.95 - live["value"])
    assert performance["significant"] is (live["ci_high"] < 0.95)


def test_multiclass_log_loss_needs_the_logged_probabilities(tmp_path: Path) -> None:
    frame, labels, truth, proba = multiclass_window(tmp_path, with_probabilities=True)
    performance, _ = live_performance(frame, labels, metric="log_loss", holdout=0.3, task="multiclass", classes=CLASSES)
    assert performance is not None
    expected = float(np.mean(-np.log(proba[np.arange(len(truth)), truth])))
    assert performance["live"]["value"] == pytest.approx(expected)
    assert performance["decay"] == pytest.approx(performance["live"]["value"] - 0.3)  # lower is better


def test_a_multiclass_live_metric_without_classes_says_why(tmp_path: Path) -> None:
    frame, labels, _, _ = multiclass_window(tmp_path, with_probabilities=True)
    performance, notes = live_performance(frame, labels, metric="accuracy", holdout=0.9, task="multiclass", classes=None)
    assert performance is None and "names no classes" in notes[0]


# -- rollout divergence ---------------------------------------------------------------------------


def task_rollout(task: str, strategy: str = "canary", **checks: Any) -> Any:
    base = binary_rollout(**checks)
    return replace(base, strategy=strategy, checks={**base.checks, "task": task})


def class_proba(rng: np.random.Generator, n: int, swap: bool = False) -> np.ndarray:
    """Confident on class 0 or 1, a little on class 2; ``swap`` moves the small mass to class 1 instead."""
    winner = rng.random(n) < 0.5
    top = rng.uniform(0.6, 0.9, n)
    rest = 1 - top
    proba = np.zeros((n, 3))
    proba[np.arange(n), np.where(winner, 0, 1)] = top
    small = np.where(winner, 2 if not swap else 1, 2)
    proba[np.arange(n), small] += rest
    return proba


def test_a_multiclass_challenger_moving_mass_between_classes_fails_per_class_divergence(tmp_path: Path) -> None:
    """Its winning probabilities are the champion's (the predicted class's PSI sees nothing); each class's do not."""
    from shipyard.rollout import score_psi_excess

    rng = np.random.default_rng(5)
    champion, challenger = class_proba(rng, 400), class_proba(rng, 400, swap=True)
    for version, routing, proba in ((1, "champion", champion), (2, "challenger", challenger)):
        log(tmp_path, [f"{routing}-{i}" for i in range(400)], version=version, routing=routing, model="churn",
            predictions=proba.argmax(axis=1), scores=proba.max(axis=1), probabilities=proba)  # fmt: skip
    assert score_psi_excess(champion.max(axis=1), challenger.max(axis=1)) < 0.25
    result = analyze(tmp_path, task_rollout("multiclass"))
    checks = {c.name: c for c in result.checks}
    assert "score divergence (PSI)" not in checks
    divergence = checks["per-class score divergence (PSI)"]
    assert not divergence.passed and "by class" in str(divergence.observed), divergence
    same = tmp_path / "same"
    for version, routing in ((1, "champion"), (2, "challenger")):
        proba = class_proba(rng, 400)
        log(same, [f"{routing}-{i}" for i in range(400)], version=version, routing=routing, model="churn",
            predictions=proba.argmax(axis=1), scores=proba.max(axis=1), probabilities=proba)  # fmt: skip
    assert analyze(same, task_rollout("multiclass")).passed is True


@pytest.mark.parametrize(("agreeing", "passed"), [(0.97, True), (0.7, False)])
def test_shadowed_multiclass_requests_give_the_class_agreement_rate(tmp_path: Path, agreeing: float, passed: bool) -> None:
    rng = np.random.default_rng(6)
    n = 400
    ids = [f"r{i}" for i in range(n)]
    champion = class_proba(rng, n)
    challenger = champion.copy()
    flipped = rng.random(n) > agreeing
    challenger[flipped] = challenger[flipped][:, [1, 0, 2]]  # the other confident class wins
    log(tmp_path, ids, routing="champion", model="churn", predictions=champion.argmax(axis=1), scores=champion.max(axis=1),
        probabilities=champion)  # fmt: skip
    log(tmp_path, ids, version=2, routing="shadow", model="churn", predictions=challenger.argmax(axis=1),
        scores=challenger.max(axis=1), probabilities=challenger)  # fmt: skip
    result = analyze(tmp_path, task_rollout("multiclass", strategy="shadow", max_divergence=10.0))
    checks = {c.name: c for c in result.checks}
    agreement = checks["class agreement (shadowed requests)"]
    assert agreement.observed.startswith(f"{1 - flipped.mean():.4f} on {n} requests")
    assert agreement.passed is passed and result.passed is passed


@pytest.mark.parametrize(("offset", "passed"), [(0.1, True), (2.0, False)])
def test_shadowed_regression_requests_give_the_mean_absolute_difference(tmp_path: Path, offset: float, passed: bool) -> None:
    rng = np.random.default_rng(7)
    n = 400
    ids = [f"r{i}" for i in range(n)]
    champion = rng.normal(10, 3, n)
    challenger = champion + offset
    log(tmp_path, ids, routing="champion", model="churn", predictions=champion, scores=champion)
    log(tmp_path, ids, version=2, routing="shadow", model="churn", predictions=challenger, scores=challenger)
    result = analyze(tmp_path, task_rollout("regression", strategy="shadow", max_divergence=10.0))
    checks = {c.name: c for c in result.checks}
    difference = checks["mean absolute difference (shadowed requests)"]
    assert difference.observed.startswith(f"{offset:.4g} ({offset / champion.std():.3f} sd)")
    assert difference.passed is passed and result.passed is passed
    assert "score divergence (PSI)" in checks  # the distribution distance stays beside it


def test_a_binary_rollout_keeps_its_checks(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for version, routing in ((1, "champion"), (2, "challenger")):
        scores = rng.beta(2, 5, 400)
        log(tmp_path, [f"{routing}-{i}" for i in range(400)], version=version, routing=routing, model="churn",
            predictions=(scores >= 0.5).astype(int), scores=scores)  # fmt: skip
    names = [c.name for c in analyze(tmp_path, binary_rollout()).checks]
    assert names == ["challenger requests", "error rate increase", "p95 latency factor", "p95 model time factor",
                     "score divergence (PSI)"]  # fmt: skip


# -- score drift per class --------------------------------------------------------------------------


def test_monitor_drift_reads_each_class_probability(tmp_path: Path) -> None:
    """The predicted class's probability keeps its distribution while the mass moves between the other classes:
    the per-class comparison shows it, and the prediction-drift reading takes the largest PSI."""
    from shipyard.monitoring.drift import drift_report
    from shipyard.monitoring.profile import Profile, build_profile, load_profile, save_profile

    rng = np.random.default_rng(9)
    reference = class_proba(rng, 1000)
    frame = pd.DataFrame({"x": rng.normal(size=1000)})
    profile = build_profile(frame, scores=reference.max(axis=1), class_scores=reference)
    save_profile(profile, tmp_path / "profile.json")
    assert load_profile(tmp_path / "profile.json") == profile and set(profile.class_scores) == {"0", "1", "2"}
    assert "class_scores" not in build_profile(frame, scores=reference.max(axis=1)).to_dict()  # other tasks: as before
    assert Profile.from_dict(build_profile(frame).to_dict()).class_scores == {}

    calm = class_proba(rng, 500)
    moved = class_proba(rng, 500, swap=True)
    current = pd.DataFrame({"x": rng.normal(size=500)})
    same = drift_report(profile, current, scores=calm.max(axis=1), class_scores=calm)
    shifted = drift_report(profile, current, scores=moved.max(axis=1), class_scores=moved)
    assert same.score_psi is not None and same.score_psi < 0.1
    assert shifted.score is not None and shifted.score.statistics["psi"] < 0.1  # the predicted class's: unchanged
    assert shifted.score_psi is not None and shifted.score_psi > 0.25
    assert set(shifted.to_dict()["class_scores"]) == {"0", "1", "2"}
