"""The whole loop for a regression project (abalone) and a multiclass one (penguins), on the real data scikit-lego
ships: pipeline → gates → production → a canary rollout through `shipyard serve` under load → a population
shift served → labels → drift found → the retrain rule trains, gates and rolls out a new version."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from harness import Load, ServeProcess, wait_for

from conftest import PRINCIPALS, make_project
from shipyard.predlog import read_log
from shipyard.scaffold import commit_all
from shipyard.service import Shipyard

MONITOR = "shipyard.monitor"


def svc(root: Path, actor: str) -> Shipyard:
    return Shipyard.open(root, actor=actor, env={})


def abalone_shift(frame: pd.DataFrame) -> pd.DataFrame:
    """The heaviest third of the abalone: older animals, so the predicted rings move up."""
    return frame[frame["shell_weight"] >= frame["shell_weight"].quantile(2 / 3)]


def penguins_shift(frame: pd.DataFrame) -> pd.DataFrame:
    """Only Gentoo penguins (all from Biscoe): the measurements and the island move together."""
    return frame[frame["species"] == "Gentoo"]


CASES: dict[str, dict[str, Any]] = {
    "abalone": {
        "target": "rings",
        "drop": [],
        "alert": {"signal": "prediction_drift", "threshold": 0.25, "action": "retrain"},
        "shift": abalone_shift,
        "metric": "rmse",
        "divergence": "score divergence (PSI)",
    },
    "penguins": {
        "target": "species",
        "drop": ["sex"],
        "alert": {"signal": "feature_drift_share", "threshold": 0.25, "action": "retrain"},
        "shift": penguins_shift,
        "metric": "f1_macro",
        "divergence": "per-class score divergence (PSI)",
    },
}


def configure(root: Path, model: str, alert: dict[str, Any]) -> None:
    config = root / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    spec = data["models"][model]
    spec["rollout"] = {"interval": 1.0, "failure_limit": 2, "checks": {"min_requests": 100}}
    spec["monitoring"] = {"min_rows": 100, "alerts": [alert]}
    # The worker inside `shipyard serve` drives the rollout; the monitor's retrain trains and rolls out.
    data["principals"] = {**PRINCIPALS, MONITOR: ["scientist", "deployer"]}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    commit_all(root, "Configure the rollout and monitoring")


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a client sends them (JSON values; rows with a missing measurement left out)."""
    clean = frame.dropna()
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in clean.to_dict(orient="records")]


def logged(root: Path, model: str, request_ids: set[str]) -> bool:
    table = read_log(root / ".shipyard" / "predictions", model=model, columns=["request_id"])
    return request_ids <= set(table.column("request_id").to_pylist())


@pytest.mark.parametrize("model", sorted(CASES))
def test_the_whole_loop_for_each_task(tmp_path: Path, model: str) -> None:
    case = CASES[model]
    target: str = case["target"]
    shift: Callable[[pd.DataFrame], pd.DataFrame] = case["shift"]
    root = make_project(tmp_path / model, example=model)
    configure(root, model, case["alert"])
    data = pd.read_parquet(root / "data" / f"{model}.parquet").drop(columns=case["drop"]).dropna().reset_index(drop=True)

    # pipeline → gates → production, then a challenger waiting in staging
    with svc(root, "alice") as service:
        first = service.run_pipeline(model).version.version
        service.promote(model, first, "staging", reason="gates passed")
        service.promote(model, first, "production", reason="ship")
        second = service.run_pipeline(model).version.version
        service.promote(model, second, "staging", reason="gates passed")
        assert service.task_of(model) == (
            ("multiclass", ["Adelie", "Chinstrap", "Gentoo"]) if model == "penguins" else ("regression", None)
        )

    everyone = records(data.drop(columns=[target]))
    shifted = shift(data)
    shifted_rows = records(shifted.drop(columns=[target]))
    with ServeProcess(root) as server:
        # a canary rollout under load, judged by the worker inside `shipyard serve`
        with Load(server.url, model=model, rows=everyone) as load:
            wait_for(lambda: len(load.statuses) > 20)
            with svc(root, "rui") as service:
                rollout = service.start_rollout(model, second, steps=[50, 100])
            assert rollout.checks["task"] == ("multiclass" if model == "penguins" else "regression")
            assert rollout.checks["metric"] == case["metric"]

            def state() -> str:
                with svc(root, "val") as service:
                    found, _ = service.rollout_status(model, judge=False)
                return found.state if found else "none"

            wait_for(lambda: state() in ("promoted", "rolled_back"), timeout=90, every=0.5)
        assert set(load.statuses) == {200}
        with svc(root, "val") as service:
            done, _ = service.rollout_status(model, judge=False)
            assert service.champion(model).version == second  # type: ignore[union-attr]
        assert done is not None and done.state == "promoted", [e.get("analysis") for e in done.history]
        judged = [c["name"] for c in done.history[1]["analysis"]["checks"]]
        assert case["divergence"] in judged

        # a shifted population, served by the new champion
        # one client: the same 300 rows in the same order every run, so the retraining data is the same too
        with Load(server.url, model=model, rows=shifted_rows, max_requests=300, clients=1) as shifted_load:
            wait_for(lambda: len(shifted_load.statuses) >= 300, timeout=60)
        assert set(shifted_load.statuses) == {200}
        answered = shifted_load.answered
        wait_for(lambda: logged(root, model, {rid for rid, _ in answered}), timeout=30, every=0.2)

    # the outcomes arrive; the monitor finds the shift and its retrain rule acts
    truth = shifted.dropna().reset_index(drop=True)[target]
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": [rid for rid, _ in answered], target: [truth[i] for _, i in answered]}).to_csv(
        labels, index=False
    )
    with svc(root, "alice") as service:
        ingested = service.ingest_labels(labels, model=model)
        assert ingested.matched == len(answered) and ingested.stored == len(answered)
        (outcome,) = service.monitor(model, last=len(answered))
        report = outcome.run.report
        live = report["performance"]["live"]
        assert live["metric"] == case["metric"] and live["rows"] == len(answered) and math.isfinite(live["value"])
        if model == "penguins":  # each class's probability, as the gateway logged it, against the holdout's
            assert set(report["drift"]["class_scores"]) == {"0", "1", "2"}
        [fired] = [s for s in report["signals"] if s["signal"] == case["alert"]["signal"]]
        assert fired["fired"] is True, report
        (action,) = outcome.actions
        assert action["action"] == "retrain" and action["state"] == "done", action
        assert action["labelled_rows"] == len(answered)
        retrained = service.store.get_version(model, action["version"])
        assert retrained.registered_by == MONITOR and action["version"] == second + 1
        [staging] = [r for r in service.gate_reports(model, retrained.version) if r["stage"] == "staging"]
        evidence = service.evidence(model, retrained.version)
    assert evidence is not None and evidence["task"] == ("multiclass" if model == "penguins" else "regression")
    # trained on the configured data plus the labelled traffic: the retraining file, named by its content
    assert retrained.data_fingerprint and Path(action["data"]).name == f"{model}-{retrained.data_fingerprint[:16]}.parquet"
    assert staging["passed"] == (action["staging"] == "passed")
    # The retrained version enters staging (its holdout holds none of the champion's training rows: the split
    # keeps each row on its side as rows are added) and, its production gate needing no approval, a rollout
    # starts at once.
    assert action["staging"] == "passed" and isinstance(action["rollout"], int), action
