"""/metrics of a real gateway, read with Prometheus' own parser: types, names, units and labels by convention."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
from harness import ROW, Server, ship, wait_for
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from shipyard import __version__


@pytest.fixture
def served(trained_project: Path) -> Path:
    ship(trained_project, 1)
    return trained_project


def families(text: str) -> dict[str, Metric]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def labelled(family: Metric, suffix: str = "", **labels: str) -> list[float]:
    return [
        s.value for s in family.samples if s.name == family.name + suffix and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def test_metrics_follow_prometheus_conventions(served: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shipyard.serving")
    with Server(served, worker=True) as server, httpx.Client() as client:
        for _ in range(3):
            ok = client.post(f"{server.url}/v1/models/churn:predict", content=json.dumps({"instances": [ROW]}))
            assert ok.status_code == 200, ok.text
        bad = client.post(f"{server.url}/v1/models/churn:predict", content=json.dumps({"instances": [{"tenure_months": 1}]}))
        assert bad.status_code in (400, 422), bad.text
        assert client.post(f"{server.url}/v1/models/fraud:predict", content=b"{}").status_code == 404
        wait_for(lambda: "shipyard_kpi_audit_chain_valid" in client.get(f"{server.url}/metrics").text)
        text = client.get(f"{server.url}/metrics").text
    found = families(text)

    # latency for every status, refusals included, in seconds
    latency = found["shipyard_request_seconds"]
    assert latency.type == "histogram" and latency.unit in ("", "seconds")
    assert labelled(latency, "_count", model="churn", version="1", status="200") == [3.0]
    assert labelled(latency, "_count", model="churn", status=str(bad.status_code)) == [1.0]
    assert labelled(latency, "_count", model="<unknown>", status="404") == [1.0]
    assert labelled(found["shipyard_requests"], "_total", model="churn", version="1", status="200") == [3.0]
    # the model's own time per predict call
    model_time = found["shipyard_model_seconds"]
    assert model_time.type == "histogram" and labelled(model_time, "_count", model="churn", version="1")[0] >= 1
    assert 0 < labelled(model_time, "_sum", model="churn", version="1")[0] < 10
    # what only accumulates is a counter, exposed with _total
    for name in ("shipyard_requests", "shipyard_errors", "shipyard_challenger_failures", "shipyard_prediction_log_dropped_rows"):
        assert found[name].type == "counter", name
    assert labelled(found["shipyard_prediction_log_dropped_rows"], "_total") == [0.0]
    assert found["shipyard_kpi_audit_events"].type == "counter" and labelled(found["shipyard_kpi_audit_events"], "_total")[0] > 0
    # the build and the process
    build = found["shipyard_build_info"]
    assert build.type == "gauge" and [(s.labels["version"], s.value) for s in build.samples] == [(__version__, 1.0)]
    assert found["process_cpu_seconds"].type == "counter" and labelled(found["process_cpu_seconds"], "_total")[0] > 0
    assert found["process_resident_memory_bytes"].type == "gauge"
    assert labelled(found["process_resident_memory_bytes"])[0] > 1e6
    # the KPIs the worker adds: seconds, a per-second rate, medians and p90s as gauges of their own
    assert labelled(found["shipyard_kpi_window_seconds"]) == [30 * 86400.0]
    assert found["shipyard_kpi_deployments_per_second"].type == "gauge"
    lead = found["shipyard_kpi_lead_time_median_seconds"]
    assert lead.type == "gauge" and labelled(lead, **{"from": "registration"})[0] >= 0

    for family in found.values():
        assert family.documentation, f"{family.name} has no help text"
        shipyard = family.name.startswith("shipyard_")
        for sample in family.samples:
            assert "quantile" not in sample.labels or family.type == "summary", sample
            if family.type == "counter":
                assert sample.name in (family.name + "_total", family.name + "_created"), sample.name
            else:
                assert not sample.name.endswith("_total"), f"{sample.name} ends in _total but is a {family.type}"
        if shipyard:  # base units only: seconds, not milliseconds or days
            for unit in ("_ms", "millisecond", "per_day", "_minutes", "_hours", "_days"):
                assert unit not in family.name, family.name
            assert family.type in ("counter", "gauge", "histogram"), family.name

    # the gateway's log says, in one line, what it now serves
    lines = [r.getMessage() for r in caplog.records if r.name == "shipyard.serving" and "applied" in r.getMessage()]
    assert lines and "\n" not in lines[0] and lines[0].endswith(": churn v1"), lines


def test_metrics_show_the_latest_monitor_run_for_prometheus_to_alert_on(
    served: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The readings of `shipyard monitor run` reach /metrics, where the exported PrometheusRule judges them.

    PROMETHEUS_MULTIPROC_DIR is set as importing Feast sets it: prometheus_client then warns at every label
    removal (an error under this suite's warning filter), which once stopped stale readings from going away."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "feast-metrics"))
    from shipyard.config import SIGNALS
    from shipyard.examples.churn.generator import generate
    from shipyard.predlog import read_log
    from shipyard.service import Shipyard

    rows = generate(200, seed=11).drop(columns=["customer_id", "signup_date", "churned"])
    with Server(served) as server, httpx.Client() as client:
        body = '{"instances": ' + rows.to_json(orient="records") + "}"
        answered = client.post(f"{server.url}/v1/models/churn:predict", content=body)
        assert answered.status_code == 200, answered.text
        logged = served / ".shipyard" / "predictions"
        wait_for(lambda: read_log(logged, model="churn").num_rows >= 200)
        with Shipyard.open(served, actor="rui", env={}) as service:
            (first,) = service.monitor("churn", last=200, act=False)
        wait_for(lambda: "shipyard_monitor_run_timestamp_seconds{" in client.get(f"{server.url}/metrics").text)
        found = families(client.get(f"{server.url}/metrics").text)
        with Shipyard.open(served, actor="rui", env={}) as service:
            (second,) = service.monitor("churn", last=50, act=False)  # too few rows to judge anything
        at = second.run.at.timestamp()
        wait_for(
            lambda: labelled(families(client.get(f"{server.url}/metrics").text)["shipyard_monitor_run_timestamp_seconds"]) == [at]
        )
        after = families(client.get(f"{server.url}/metrics").text)

    # Without labels the decay is not judged; drift and errors are, and each reading is shown as recorded.
    readings = {s["signal"]: s["observed"] for s in first.run.report["signals"]}
    assert set(readings) == {"feature_drift_share", "prediction_drift", "error_rate"}
    signal = found["shipyard_monitor_signal"]
    assert signal.type == "gauge"
    assert {s.labels["signal"]: s.value for s in signal.samples} == readings
    assert {s.labels["model"] for s in signal.samples} == {"churn"} and set(readings) <= set(SIGNALS)
    assert labelled(found["shipyard_monitor_run_timestamp_seconds"], model="churn") == [first.run.at.timestamp()]
    assert labelled(found["shipyard_monitor_metric_decay_significant"]) == []
    # A later run that judged nothing leaves no stale reading behind, only its time.
    assert second.run.report["signals"] == [] and labelled(after["shipyard_monitor_signal"]) == []
