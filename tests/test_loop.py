"""The closed loop on a real project: prediction log → monitor run → alert → retrain/webhook/rollback; labels; trace."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from conftest import PRINCIPALS
from shipyard.domain.errors import InvalidSpec, NotFound
from shipyard.predlog import PredictionLog
from shipyard.scaffold import commit_all
from shipyard.service import Shipyard
from test_cli import run

MONITOR = "shipyard.monitor"


def svc(root: Path, actor: str = "alice") -> Shipyard:
    return Shipyard.open(root, actor=actor, env={})


def configure(root: Path, alerts: list[dict[str, Any]], *, monitor_principal: bool = True) -> None:
    config = root / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["models"]["churn"]["monitoring"] = {"min_rows": 100, "drift": {"drift_share": 0.25}, "alerts": alerts}
    data["principals"] = {**PRINCIPALS, **({MONITOR: ["scientist", "deployer"]} if monitor_principal else {})}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    commit_all(root, "Configure monitoring")


def ship(root: Path, version: int) -> None:
    with svc(root) as service:
        service.promote("churn", version, "staging", reason="ready")
    with svc(root, "vera") as service:
        service.approve("churn", version, "production", comment="ok")
    with svc(root, "rui") as service:
        service.promote("churn", version, "production", reason="ship")


def traffic(root: Path, version: int, *, rows: int, shifted: bool, status: int = 200, seed: int = 5) -> list[str]:
    """Log `rows` answered requests as the gateway would, scored by the real model; returns their request ids."""
    from shipyard.examples.churn.generator import generate

    knobs: dict[str, Any] = {"price_rise": 0.3, "month_to_month_share": 0.85} if shifted else {}
    frame = generate(rows, seed=seed, **knobs)
    features = frame.drop(columns=["customer_id", "signup_date", "churned"])
    with svc(root) as service:
        found = service.store.get_version("churn", version)
        model = service.registry.load_sklearn(found.source)
    scores = model.predict_proba(features)[:, 1]
    ids = [f"req-{seed}-{i}" for i in range(rows)]
    with PredictionLog(root / ".shipyard" / "predictions") as log:
        log.append(
            model="churn",
            version=version,
            request_ids=ids,
            received_at=[time.time()] * rows,
            routing=["champion"] * rows,
            features={c: features[c].tolist() for c in features.columns},
            predictions=(scores >= 0.5).astype(int),
            scores=scores,
            latency_ms=[2.0] * rows,
            status=[status] * rows,
        )
    (root / f"labels-{seed}.csv").write_text(
        "request_id,churned\n" + "".join(f"{i},{y}\n" for i, y in zip(ids, frame["churned"], strict=True))
    )
    return ids


@pytest.fixture
def serving(trained_project: Path) -> Path:
    configure(trained_project, [{"signal": "feature_drift_share", "threshold": 0.25, "action": "retrain"}])
    ship(trained_project, 1)
    return trained_project


def test_unshifted_traffic_raises_no_alert(serving: Path) -> None:
    traffic(serving, 1, rows=800, shifted=False)
    with svc(serving) as service:
        (outcome,) = service.monitor("churn", last=800)
    report = outcome.run.report
    assert report["rows"] == 800 and not outcome.run.dataset_drift
    assert report["drift"]["drifted"] == [] and outcome.opened == ()
    assert [s["fired"] for s in report["signals"]] == [False]


def test_an_injected_shift_retrains_exactly_once(serving: Path) -> None:
    traffic(serving, 1, rows=800, shifted=True)
    with svc(serving) as service:
        service.ingest_labels(serving / "labels-5.csv", model="churn")
        (first,) = service.monitor("churn", last=800)
        assert first.run.dataset_drift
        assert {"monthly_charges", "contract_type"} <= set(first.run.report["drift"]["drifted"])
        (alert,) = first.opened
        (action,) = first.actions
        assert action["action"] == "retrain" and action["state"] == "done", action
        version = service.store.get_version("churn", action["version"])
        assert version.registered_by == MONITOR and version.stage.value == "staging", action["staging"]
        # The production gate needs an approval the monitor cannot give: the rollout waits for a person.
        assert action["staging"] == "passed" and str(action["rollout"]).startswith("waiting")
        for _ in range(2):
            (again,) = service.monitor("churn", last=800)
            assert again.opened == () and [a.id for a in again.ongoing] == [alert.id] and again.actions == []
        assert len(service.versions("churn")) == 3
        retrains = [e for e in service.audit_log("churn") if e.action == "alert.retrain"]
        assert len(retrains) == 1
        assert service.audit_verify().ok
    assert action["labelled_rows"] == 800 and Path(action["data"]).parent == serving / "data" / "retrain"


def test_a_retrain_needs_new_data(serving: Path) -> None:
    """Without labelled traffic, or on the data the champion already learned from, a retrain would only copy it."""
    traffic(serving, 1, rows=400, shifted=True)
    with svc(serving) as service:
        (outcome,) = service.monitor("churn", last=400)
        (action,) = outcome.actions
        assert action["state"] == "skipped" and "no labelled production traffic" in action["reason"], action
        assert len(service.versions("churn")) == 2
        service.ingest_labels(serving / "labels-5.csv", model="churn")
        robot = service.as_actor(MONITOR)
        first, again = robot.retraining_data("churn"), robot.retraining_data("churn")
        assert (first.path, first.fingerprint, first.labelled_rows) == (again.path, again.fingerprint, 400)
        state, done = robot.retrain("churn", reason="drift")
        assert state == "done" and done["staging"] == "passed", done
    with svc(serving, "vera") as service:  # the retrained version becomes champion; no new labels arrive
        service.approve("churn", done["version"], "production", comment="ok")
    with svc(serving, "rui") as service:
        service.promote("churn", done["version"], "production", reason="retrained")
    with svc(serving, MONITOR) as robot:
        state, skipped = robot.retrain("churn", reason="drift again")
        assert state == "skipped" and f"churn/{done['version']} was trained on" in skipped["reason"], skipped
        assert len(robot.versions("churn")) == 3


def test_a_monitor_actor_without_roles_fails_the_action_but_keeps_the_alert(serving: Path) -> None:
    configure(serving, [{"signal": "feature_drift_share", "threshold": 0.25, "action": "retrain"}], monitor_principal=False)
    traffic(serving, 1, rows=400, shifted=True)
    with svc(serving) as service:
        (outcome,) = service.monitor("churn", last=400)
        (action,) = outcome.actions
        assert action["state"] == "failed" and MONITOR in action["error"]
        (alert,) = service.alerts("churn")
        assert alert.open and alert.action_state == "failed"


class Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        Receiver.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_webhook_gets_the_alert_and_an_unreachable_one_is_recorded_as_failed(trained_project: Path, receiver: str) -> None:
    from shipyard.serving.server import free_port

    dead = f"http://127.0.0.1:{free_port()}/hook"
    configure(
        trained_project,
        [
            {"signal": "error_rate", "threshold": 0.05, "action": "webhook", "url": receiver},
            {"signal": "feature_drift_share", "threshold": 0.25, "action": "webhook", "url": dead, "retries": 1, "timeout": 1},
        ],
    )
    ship(trained_project, 1)
    traffic(trained_project, 1, rows=300, shifted=True, status=500, seed=6)
    traffic(trained_project, 1, rows=300, shifted=True, seed=7)
    with svc(trained_project) as service:
        (outcome,) = service.monitor("churn", last=600)
    states = {a["alert"]: a for a in outcome.actions}
    by_signal = {a.signal: a for a in outcome.opened}
    assert states[by_signal["error_rate"].id]["delivered"] is True
    assert states[by_signal["feature_drift_share"].id]["state"] == "failed"
    assert states[by_signal["feature_drift_share"].id]["attempts"] == 2
    (payload,) = Receiver.received
    assert payload["alert"]["signal"] == "error_rate" and payload["alert"]["observed"] == pytest.approx(0.5)


def test_labels_give_the_live_metric_and_its_interval(serving: Path) -> None:
    traffic(serving, 1, rows=600, shifted=False, seed=8)
    with svc(serving) as service:
        ingested = service.ingest_labels(serving / "labels-8.csv", model="churn")
        assert (ingested.rows, ingested.matched, ingested.unmatched, ingested.key) == (600, 600, 0, "request_id")
        (outcome,) = service.monitor("churn", last=600)
    performance = outcome.run.report["performance"]
    live = performance["live"]
    assert live["rows"] == 600 and live["ci_low"] < live["value"] < live["ci_high"]
    assert 0.6 < live["value"] < 0.95 and performance["holdout"] > 0.6
    assert performance["decay"] == pytest.approx(performance["holdout"] - live["value"])


def test_labels_default_to_the_models_target_and_ingest_once_per_request(serving: Path) -> None:
    from shipyard.labels import read_labels

    ids = traffic(serving, 1, rows=50, shifted=False, seed=12)
    truth = [line.split(",")[1] for line in (serving / "labels-12.csv").read_text().splitlines()[1:]]
    # A `label` column beside the target: the target (churned) is what the model predicts, so it is read.
    both = serving / "both.csv"
    both.write_text("request_id,label,churned\n" + "".join(f"{i},{1 - int(y)},{y}\n" for i, y in zip(ids, truth, strict=True)))
    with svc(serving) as service:
        first = service.ingest_labels(both, model="churn")
        again = service.ingest_labels(both, model="churn")
        stored = read_labels(service.settings.labels_dir, "churn").to_pylist()
    assert (first.stored, first.unchanged, again.stored, again.unchanged, again.changed) == (50, 0, 0, 50, 0)
    assert len(stored) == 50 and [str(r["label"]) for r in sorted(stored, key=lambda r: ids.index(r["request_id"]))] == truth
    files = sorted((serving / ".shipyard" / "labels" / "model=churn").glob("part-*.parquet"))
    assert len(files) == 1  # the second ingest wrote nothing
    # The other column on request: a correction, stored (the latest label counts), counted as changed.
    with svc(serving) as service:
        corrected = service.ingest_labels(both, model="churn", label_column="label")
    assert (corrected.stored, corrected.changed, corrected.unchanged) == (50, 50, 0)


def test_labels_named_by_class_follow_the_positive_label(tmp_path: Path) -> None:
    from shipyard.labels import ingest, read_labels

    with PredictionLog(tmp_path / "log") as log:
        log.append(
            model="m",
            version=1,
            request_ids=["a", "b", "c"],
            received_at=[time.time()] * 3,
            routing=["champion"] * 3,
            features={"x": [1.0, 2.0, 3.0]},
            predictions=[0, 1, 0],
            scores=[0.1, 0.9, 0.2],
            latency_ms=[1.0] * 3,
            status=[200] * 3,
        )
    path = tmp_path / "labels.csv"
    path.write_text("request_id,outcome\na,No\nb,Yes\nc,No\n")
    ingest(
        path, model="m", log_root=tmp_path / "log", labels_root=tmp_path / "labels", label_column="outcome", positive_label="Yes"
    )
    labels = {r["request_id"]: r["label"] for r in read_labels(tmp_path / "labels", "m").to_pylist()}
    assert labels == {"a": 0, "b": 1, "c": 0}
    path.write_text("request_id,outcome\na,1\nb,0\nc,0\n")  # outcomes written as 0/1 are taken as they are
    ingest(
        path, model="m", log_root=tmp_path / "log", labels_root=tmp_path / "labels", label_column="outcome", positive_label="Yes"
    )
    labels = {r["request_id"]: r["label"] for r in read_labels(tmp_path / "labels", "m").to_pylist()}
    assert labels == {"a": 1, "b": 0, "c": 0}
    path.write_text("request_id,outcome\na,No\nb,\n")
    with pytest.raises(InvalidSpec, match="positive: 'Yes'"):
        ingest(
            path,
            model="m",
            log_root=tmp_path / "log",
            labels_root=tmp_path / "labels",
            label_column="outcome",
            positive_label="Yes",
        )


def test_a_bad_drift_spec_names_its_key(serving: Path) -> None:
    config = serving / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["models"]["churn"]["monitoring"]["drift"] = {"default": {"kind": "magic"}}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    traffic(serving, 1, rows=200, shifted=False, seed=11)
    with svc(serving) as service, pytest.raises(InvalidSpec, match=r"models\.churn\.monitoring\.drift is invalid"):
        service.monitor("churn", last=200)


@pytest.mark.parametrize(
    ("content", "error", "words"),
    [
        ("request_id,churned\nreq-9-0,2\n", InvalidSpec, "not 0 or 1"),
        ("id,outcome\nx,1\n", InvalidSpec, "no label column 'churned'"),
        ("customer,churned\nx,1\n", InvalidSpec, "neither a request_id"),
    ],
)
def test_bad_label_files_are_refused_with_what_is_wrong(serving: Path, content: str, error: type[Exception], words: str) -> None:
    path = serving / "bad.csv"
    path.write_text(content)
    with svc(serving) as service, pytest.raises(error, match=words):
        service.ingest_labels(path, model="churn")
    with svc(serving) as service, pytest.raises(NotFound, match="does not exist"):
        service.ingest_labels(serving / "missing.csv", model="churn")


def test_trace_follows_a_prediction_back_to_data_code_gates_and_approvals(serving: Path) -> None:
    ids = traffic(serving, 1, rows=10, shifted=False, seed=9)
    with svc(serving) as service:
        found = service.trace(ids[3])
        version = service.store.get_version("churn", 1)
    (answer,) = found["answers"]
    assert answer["prediction"]["request_id"] == ids[3] and answer["version"]["version"] == 1
    assert answer["training_run"] == version.run_id and answer["data"]["fingerprint"] == version.data_fingerprint
    assert answer["code"]["git_commit"] == version.git_commit
    assert [g["stage"] for g in answer["gates"] if g["passed"]] == ["staging", "production"]
    assert [a["actor"] for a in answer["approvals"]] == ["vera"]
    assert answer["promotions"][0]["actor"] == "rui"
    assert set(answer["prediction"]["inputs"]) >= {"tenure_months", "contract_type"}


def test_cli_monitor_labels_trace_and_kpis(serving: Path) -> None:
    ids = traffic(serving, 1, rows=300, shifted=False, seed=10)
    root = ["--project", str(serving), "--actor", "alice"]
    result = run(*root, "labels", "ingest", str(serving / "labels-10.csv"), "--model", "churn")
    assert result.exit_code == 0 and "300 matched" in result.output, result.output  # type: ignore[attr-defined]
    result = run(*root, "monitor", "run", "churn", "--last", "300", "--no-act", "--json")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    (document,) = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert document["run"]["rows"] == 300 and document["run"]["report"]["performance"]["labelled"] == 300
    result = run(*root, "trace", ids[0])
    assert result.exit_code == 0 and "churn/1" in result.output and "vera" in result.output  # type: ignore[attr-defined]
    result = run(*root, "trace", "no-such-request")
    assert result.exit_code == 3 and "no prediction with request id" in result.output  # type: ignore[attr-defined]
    result = run(*root, "kpis", "--json")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    result = run(*root, "monitor", "run", "churn", "--window", "1h", "--last", "10")
    assert result.exit_code == 2 and "not both" in result.output  # type: ignore[attr-defined]
    result = run(*root, "monitor", "run", "churn", "--window", "soon")
    assert result.exit_code == 2 and "not a duration" in result.output  # type: ignore[attr-defined]
    result = run("--project", str(serving), "--actor", "val", "monitor", "run")
    assert result.exit_code == 5 and "val may not run the monitor" in result.output  # type: ignore[attr-defined]


def test_rollback_restores_the_previous_champion_through_its_gate_or_aborts_a_rollout(trained_project: Path) -> None:
    configure(trained_project, [{"signal": "error_rate", "threshold": 0.05, "action": "rollback"}])
    ship(trained_project, 1)
    ship(trained_project, 2)  # v1 archived
    traffic(trained_project, 2, rows=200, shifted=False, status=500, seed=12)
    with svc(trained_project) as service:
        (outcome,) = service.monitor("churn", last=200)
        (action,) = outcome.actions
        assert action["state"] == "done" and (action["restored"], action["replaced"]) == (1, 2), action
        stages = {v.version: v.stage.value for v in service.versions("churn")}
        assert stages == {1: "production", 2: "archived"}
        moved = service.store.stage_history("churn", 1)[-1]
        assert moved.actor == MONITOR and moved.reason.startswith("rollback: alert")
        # The same alert stays open while the errors last: no second rollback.
        (again,) = service.monitor("churn", last=200)
        assert again.actions == [] and service.versions("churn")[0].stage.value == "production"


def test_monitoring_a_model_without_a_champion_says_how_to_get_one(trained_project: Path) -> None:
    with svc(trained_project) as service:
        with pytest.raises(NotFound, match="churn has no production version to monitor") as caught:
            service.monitor("churn")
        assert "--to production" in (caught.value.hint or "")
        assert service.monitor() == []  # every model: nothing in production, nothing to judge
