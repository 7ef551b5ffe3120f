"""The gateway, served by a real uvicorn on a loopback port, called over real HTTP."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import ROW, ServeProcess, Server, ship, wait_for

from factories import copy_versions
from shipyard.domain.stages import Stage
from shipyard.predlog import find_request, read_log
from shipyard.service import Shipyard


@pytest.fixture
def served(trained_project: Path) -> Path:
    ship(trained_project, 1)
    return trained_project


def predict(client: httpx.Client, url: str, body: Any, **kw: Any) -> httpx.Response:
    return client.post(f"{url}/v1/models/churn:predict", content=json.dumps(body), **kw)


def test_plain_json_records_and_columns(served: Path) -> None:
    with Server(served) as server, httpx.Client() as client:
        records = predict(client, server.url, {"instances": [ROW, {**ROW, "tenure_months": 60, "contract_type": "two-year"}]})
        assert records.status_code == 200, records.text
        body = records.json()
        assert body["model"] == "churn" and body["version"] == 1 and body["routing"] == "champion"
        assert body["predictions"] in ([1, 0], [0, 0], [1, 1], [0, 1]) and len(body["probabilities"]) == 2
        assert body["probabilities"][0] > body["probabilities"][1]  # a new monthly customer churns more than a loyal one
        assert records.headers["x-request-id"] == body["request_id"]
        columns = predict(
            client, server.url, {"inputs": {k: [v] for k, v in ROW.items()}}, headers={"x-request-id": "client-chosen-id"}
        )
        assert columns.status_code == 200 and columns.json()["request_id"] == "client-chosen-id"
        assert columns.headers["x-request-id"] == "client-chosen-id"
        assert columns.json()["probabilities"][0] == pytest.approx(body["probabilities"][0])
        assert client.get(f"{server.url}/v2/health/live").status_code == 200
        assert client.get(f"{server.url}/v2/health/ready").json() == {"ready": True}
        meta = client.get(f"{server.url}/v2/models/churn").json()
        assert meta["versions"] == ["1"] and {i["name"] for i in meta["inputs"]} == set(ROW)
        metrics = client.get(f"{server.url}/metrics").text
        assert 'shipyard_requests_total{model="churn",status="200",version="1"} 2.0' in metrics
        assert "shipyard_batch_rows_bucket" in metrics and "shipyard_model_load_seconds" in metrics


def test_metrics_export_open_alerts_and_kpis_from_the_store(served: Path) -> None:
    from shipyard.store.monitoring import SignalReading

    with Shipyard.open(served, actor="alice", env={}) as service:
        service.store.record_monitor_run(
            actor="shipyard.monitor",
            model="churn",
            version=1,
            window=(None, None),
            rows=500,
            dataset_drift=True,
            report={},
            readings=[SignalReading(signal="feature_drift_share", observed=0.5, threshold=0.25, fired=True, action="none")],
        )
    with Server(served, worker=True) as server, httpx.Client() as client:
        wait_for(lambda: "shipyard_kpi_audit_chain_valid" in client.get(f"{server.url}/metrics").text)
        metrics = client.get(f"{server.url}/metrics").text
    assert 'shipyard_alerts_open{model="churn",signal="feature_drift_share"} 1.0' in metrics
    assert "shipyard_kpi_audit_chain_valid 1.0" in metrics
    assert 'shipyard_kpi_deployments{model="churn"} 1.0' in metrics
    assert "shipyard_kpi_production_approved_ratio 1.0" in metrics


def test_open_inference_protocol_client(served: Path) -> None:
    """A KServe V2 client library, not hand-written JSON, talks to /v2/.../infer."""
    import numpy as np
    import tritonclient.http as http

    with Server(served) as server:
        client = http.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("churn")
        inputs = []
        for name, value in ROW.items():
            if isinstance(value, str):
                tensor = http.InferInput(name, [2], "BYTES")
                tensor.set_data_from_numpy(np.array([value, value], dtype=object), binary_data=False)
            elif isinstance(value, float):
                tensor = http.InferInput(name, [2], "FP64")
                tensor.set_data_from_numpy(np.array([value, value], dtype=np.float64), binary_data=False)
            else:
                tensor = http.InferInput(name, [2], "INT64")
                tensor.set_data_from_numpy(np.array([value, value], dtype=np.int64), binary_data=False)
            inputs.append(tensor)
        outputs = [
            http.InferRequestedOutput("probability", binary_data=False),
            http.InferRequestedOutput("predict", binary_data=False),
        ]
        result = client.infer("churn", inputs, outputs=outputs, request_id="oip-1")
        probability = result.as_numpy("probability")
        assert probability.shape == (2,) and 0 < probability[0] < 1 and probability[0] == probability[1]
        assert result.get_response()["model_version"] == "1" and result.get_response()["id"] == "oip-1"
        pinned = client.infer("churn", inputs, model_version="1")
        assert pinned.as_numpy("probability")[0] == pytest.approx(probability[0])
        client.close()


def test_open_inference_protocol_client_sees_why_a_request_was_refused(served: Path) -> None:
    """tritonclient shows a refusal's ``error`` text and nothing else: it must name the field and the reason."""
    import numpy as np
    import tritonclient.http as http
    from tritonclient.utils import InferenceServerException

    with Server(served) as server:
        client = http.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        inputs = []
        for name, value in {**ROW, "tenure_months": "three"}.items():
            datatype = "BYTES" if isinstance(value, str) else "FP64" if isinstance(value, float) else "INT64"
            tensor = http.InferInput(name, [1], datatype)
            tensor.set_data_from_numpy(np.array([value], dtype=object if datatype == "BYTES" else None), binary_data=False)
            inputs.append(tensor)
        with pytest.raises(InferenceServerException) as refused:
            client.infer("churn", inputs)
        assert "tensor 'tenure_months' has datatype BYTES" in str(refused.value)
        with pytest.raises(InferenceServerException) as unknown:
            client.infer("fraud", inputs)
        assert "model 'fraud' is not served here" in str(unknown.value)
        with pytest.raises(InferenceServerException) as version:
            client.get_model_metadata("churn", model_version="7")
        assert "version 7 of 'churn' is not served here" in str(version.value)
        client.close()


BAD: list[tuple[str, Any, int, str | None, str]] = [
    ("wrong type", {"instances": [{**ROW, "tenure_months": "three"}]}, 422, "tenure_months", "expected"),
    ("missing column", {"instances": [{k: v for k, v in ROW.items() if k != "gender"}]}, 422, "gender", "missing"),
    ("unknown column", {"instances": [{**ROW, "colour": "red"}]}, 422, "colour", "unknown column"),
    ("null where required", {"instances": [{**ROW, "monthly_charges": None}]}, 422, "monthly_charges", ""),
    ("no rows", {"instances": []}, 422, None, "no rows"),
    ("two forms", {"instances": [ROW], "inputs": {}}, None, None, ""),
    ("not an object", [ROW], 400, None, ""),
]


@pytest.mark.parametrize(("case", "body", "status", "field", "reason"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_4xx_naming_field_and_reason(
    served: Path, case: str, body: Any, status: int | None, field: str | None, reason: str
) -> None:
    with Server(served) as server, httpx.Client() as client:
        response = predict(client, server.url, body)
        assert 400 <= response.status_code < 500, response.text
        if status is not None:
            assert response.status_code == status, response.text
        error = response.json()
        if field is not None:
            assert error["field"] == field
        assert reason in error["error"] and error["code"] == "invalid_input"


def test_transport_level_refusals(served: Path) -> None:
    with Server(served, max_body_bytes=2000) as server, httpx.Client() as client:
        malformed = client.post(f"{server.url}/v1/models/churn:predict", content=b'{"instances": [')
        assert malformed.status_code == 400 and "JSON" in malformed.json()["error"]
        huge = predict(client, server.url, {"instances": [ROW] * 50})
        assert huge.status_code == 413
        other = client.post(f"{server.url}/v1/models/fraud:predict", content=json.dumps({"instances": [ROW]}))
        assert other.status_code == 404 and "Served models: churn" in other.json()["hint"]
        version = client.post(f"{server.url}/v2/models/churn/versions/7/infer", content=b'{"inputs": []}')
        assert version.status_code == 404 and "Served versions: 1" in version.json()["hint"]
        bad_version = client.post(f"{server.url}/v2/models/churn/versions/abc/infer", content=b"{}")
        assert bad_version.status_code == 400 and bad_version.json()["field"] == "version"
        superscript = client.get(f"{server.url}/v2/models/churn/versions/%C2%B3")  # "³" passes str.isdigit()
        assert superscript.status_code == 400 and superscript.json()["field"] == "version"


def v2_body(row: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
    """An Open Inference Protocol request for one row, one tensor per column."""
    kinds = {str: "BYTES", float: "FP64", int: "INT64", bool: "BOOL"}
    inputs = [{"name": k, "shape": [1], "datatype": kinds[type(v)], "data": [v]} for k, v in row.items()]
    return {"inputs": inputs} if request_id is None else {"id": request_id, "inputs": inputs}


def counted(metrics: str, line: str) -> float:
    """The value of one sample in Prometheus text, 0 when it is absent."""
    for row in metrics.splitlines():
        if row.startswith(line + " "):
            return float(row.rsplit(" ", 1)[1])
    return 0.0


def test_hostile_json_is_a_counted_4xx(served: Path) -> None:
    """What Python's json refuses or cannot print back is a 4xx naming it, counted like any invalid input."""
    url_v1, url_v2 = "/v1/models/churn:predict", "/v2/models/churn/infer"
    with Server(served) as server, httpx.Client() as client:
        huge = client.post(server.url + url_v1, content=b'{"instances": [{"tenure_months": ' + b"9" * 5000 + b"}]}")
        assert huge.status_code == 400 and huge.json()["error"] == "a number in the body has more than 4300 digits"
        sent = 1
        row = json.dumps({"instances": [{**ROW, "tenure_months": "@"}]}).encode()
        for depth in range(700, 1001):  # somewhere in here a value parses but is too deep to print back
            nested = client.post(server.url + url_v1, content=row.replace(b'"@"', b"[" * depth + b"]" * depth))
            assert nested.status_code in (400, 422), (depth, nested.text)
            sent += 1
        for request_id in ("line\nbreak", "\ud800", "x" * 10_000):  # the id travels in a header and the log
            odd = client.post(server.url + url_v2, content=json.dumps(v2_body(ROW, request_id)))
            assert odd.status_code == 400 and '"id" must be' in odd.json()["error"], (request_id[:20], odd.text[:200])
            sent += 1
        text = client.post(server.url + url_v2, content=json.dumps(v2_body(ROW, "caf\u00e9 \u2615")))
        assert text.status_code == 200 and text.json()["id"] == "caf\u00e9 \u2615"
        assert text.headers["x-request-id"] == "caf%C3%A9%20%E2%98%95"  # a header carries ASCII: percent-encoded
        metrics = client.get(f"{server.url}/metrics").text
    assert counted(metrics, 'shipyard_errors_total{model="churn",reason="invalid_input"}') == sent
    assert sum(counted(metrics, f'shipyard_requests_total{{model="churn",status="{s}",version="-"}}') for s in (400, 422)) == sent


def series(metrics: str) -> set[str]:
    return {line.rsplit(" ", 1)[0] for line in metrics.splitlines() if line and not line.startswith("#")}


def test_unknown_models_and_versions_share_one_label(served: Path) -> None:
    """Names and versions a client makes up must not each create Prometheus series: they would grow without bound."""
    body = json.dumps({"instances": [ROW]})

    def made_up(client: httpx.Client, url: str, start: int, count: int) -> None:
        for i in range(start, start + count):
            assert client.post(f"{url}/v1/models/fraud-{i}:predict", content=body).status_code == 404
            assert client.post(f"{url}/v2/models/fraud-{i}/infer", content=body).status_code == 404
            assert client.post(f"{url}/v2/models/churn/versions/{i + 100}/infer", content=body).status_code == 404
            assert client.post(f"{url}/v2/models/churn/versions/{'0' * i}1/infer", content=b"{").status_code == 400
            assert client.post(f"{url}/v2/models/churn/versions/v{i}/infer", content=body).status_code == 400
            assert client.post(f"{url}/v2/models/fraud-{i}/versions/v{i}/infer", content=body).status_code == 400

    with Server(served) as server, httpx.Client() as client:
        made_up(client, server.url, 1, 3)
        before = series(client.get(f"{server.url}/metrics").text)
        made_up(client, server.url, 4, 100)
        metrics = client.get(f"{server.url}/metrics").text
    assert series(metrics) == before
    assert counted(metrics, 'shipyard_requests_total{model="<unknown>",status="404",version="-"}') == 2 * 103
    assert counted(metrics, 'shipyard_requests_total{model="churn",status="404",version="<unknown>"}') == 103
    assert counted(metrics, 'shipyard_requests_total{model="churn",status="400",version="1"}') == 103  # "0001" is version 1
    assert counted(metrics, 'shipyard_requests_total{model="churn",status="400",version="<unknown>"}') == 103
    assert counted(metrics, 'shipyard_requests_total{model="<unknown>",status="400",version="<unknown>"}') == 103
    assert counted(metrics, 'shipyard_errors_total{model="<unknown>",reason="NotServed"}') == 2 * 103


def test_prediction_log_and_graceful_shutdown(served: Path) -> None:
    """Every answered request is in the Parquet log once the gateway has stopped."""
    server = Server(served, log_flush_seconds=30.0)  # nothing flushes on time: only shutdown can save them
    ids = [f"req-{i}" for i in range(40)]
    with server, httpx.Client() as client:
        for request_id in ids:
            assert predict(client, server.url, {"instances": [ROW]}, headers={"x-request-id": request_id}).status_code == 200
    table = read_log(served / ".shipyard" / "predictions", model="churn")
    assert sorted(table.column("request_id").to_pylist()) == sorted(ids)
    row = find_request(served / ".shipyard" / "predictions", "req-7")
    assert len(row) == 1 and row[0]["version"] == 1 and row[0]["routing"] == "champion"
    assert row[0]["f_contract_type"] == "month-to-month" and 0 < row[0]["score"] < 1


def test_hot_reload_under_load_fails_no_request(served: Path) -> None:
    statuses: list[int] = []
    versions: set[int] = set()
    stop = threading.Event()
    # Bounded in time, not in count: 5,000 requests could all be answered before the promotion lands, and then no
    # request would ever see version 2.
    deadline = time.monotonic() + 120

    def hammer(server: Server) -> None:
        with httpx.Client() as client:
            while not stop.is_set() and time.monotonic() < deadline:
                response = predict(client, server.url, {"instances": [ROW]})
                statuses.append(response.status_code)
                if response.status_code == 200:
                    versions.add(response.json()["version"])

    with Server(served) as server:
        workers = [threading.Thread(target=hammer, args=(server,)) for _ in range(4)]
        for worker in workers:
            worker.start()
        wait_for(lambda: len(statuses) > 50)
        ship(served, 2)  # a new champion while requests are in flight
        wait_for(lambda: 2 in versions)
        seen_after = len(statuses)
        wait_for(lambda: len(statuses) > seen_after + 50)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    assert statuses and set(statuses) == {200}
    assert versions == {1, 2}


def test_weighted_sticky_and_shadow_routing(served: Path) -> None:
    ship(served, 2)  # v2 champion; v1 comes back as a challenger
    with Shipyard.open(served, actor="rui", env={}) as service:
        service.store.set_deployment(
            actor="rui", model="churn", challenger=1, mode="canary", weight=0.5, routing_key="x-customer"
        )
    with Server(served) as server, httpx.Client() as client:
        seen = [predict(client, server.url, {"instances": [ROW]}).json()["version"] for _ in range(60)]
        assert set(seen) == {1, 2}
        for customer in ("c1", "c2", "c3", "c4"):
            sticky = {
                predict(client, server.url, {"instances": [ROW]}, headers={"x-customer": customer}).json()["version"]
                for _ in range(5)
            }
            assert len(sticky) == 1
        with Shipyard.open(served, actor="rui", env={}) as service:
            service.store.set_deployment(actor="rui", model="churn", challenger=1, mode="shadow", weight=0.0)
        wait_for(lambda: server.gateway.routes["churn"].mode == "shadow")
        shadowed = predict(client, server.url, {"instances": [ROW]}, headers={"x-request-id": "shadowed"})
        assert shadowed.json()["version"] == 2 and shadowed.json()["routing"] == "champion"
    rows = find_request(served / ".shipyard" / "predictions", "shadowed")
    assert sorted((r["routing"], r["version"]) for r in rows) == [("champion", 2), ("shadow", 1)]


def test_tampered_model_is_refused_and_the_champion_keeps_serving(served: Path) -> None:
    """Promotion refuses a tampered version (test_governance); the gateway checks again on its own, so a
    version moved to production behind the service's back (here: by writing the store directly) is not served."""
    with Shipyard.open(served, actor="val", env={}) as service:
        model_file = service.registry.local_model_dir(service.store.get_version("churn", 2).source) / "MLmodel"
    with Server(served) as server, httpx.Client() as client:
        original = model_file.read_bytes()
        try:
            model_file.write_bytes(original + b"\n# tampered\n")
            with Shipyard.open(served, actor="rui", env={}) as service:
                service.store.transition(actor="rui", model="churn", version=2, to=Stage.STAGING, reason="around the gate")
                service.store.transition(actor="rui", model="churn", version=2, to=Stage.PRODUCTION, reason="around the gate")
            wait_for(lambda: ("churn", 2) in server.gateway.failures)
            assert "differ from the digests recorded at registration" in server.gateway.failures[("churn", 2)]
            assert "changed: MLmodel" in server.gateway.failures[("churn", 2)]
            response = predict(client, server.url, {"instances": [ROW]})
            assert response.status_code == 200 and response.json()["version"] == 1
        finally:
            model_file.write_bytes(original)


def test_a_champion_that_cannot_load_is_reported_while_the_previous_one_serves(served: Path) -> None:
    """The gateway keeps serving v1 when the store's new champion v2 cannot load, and says so where
    operators look: the readiness bodies and a gauge an alert can fire on. (A promotion refuses a tampered
    version, so v2 reaches production here by writing the store directly.)"""
    with Shipyard.open(served, actor="val", env={}) as service:
        model_file = service.registry.local_model_dir(service.store.get_version("churn", 2).source) / "MLmodel"
    original = model_file.read_bytes()
    with Server(served) as server, httpx.Client() as client:
        metrics = client.get(f"{server.url}/metrics").text
        assert counted(metrics, 'shipyard_model_stale{model="churn"}') == 0.0 and "shipyard_model_stale{" in metrics
        try:
            model_file.write_bytes(original + b"\n# tampered\n")
            with Shipyard.open(served, actor="rui", env={}) as service:
                for stage in (Stage.STAGING, Stage.PRODUCTION):
                    service.store.transition(actor="rui", model="churn", version=2, to=stage, reason="around the gate")
            wait_for(lambda: ("churn", 2) in server.gateway.failures)
        finally:
            model_file.write_bytes(original)
        assert predict(client, server.url, {"instances": [ROW]}).json()["version"] == 1  # still serving, as intended
        ready = client.get(f"{server.url}/v2/health/ready")
        assert ready.status_code == 200
        [stale] = ready.json()["stale"]
        assert stale["model"] == "churn" and stale["served"] == 1 and stale["deployed"] == 2
        assert "differ from the digests recorded at registration" in stale["error"]
        model = client.get(f"{server.url}/v2/models/churn/ready")
        assert model.status_code == 200 and model.json()["ready"] is True
        assert model.json()["stale"] == {"served": 1, "deployed": 2, "error": stale["error"]}
        assert counted(client.get(f"{server.url}/metrics").text, 'shipyard_model_stale{model="churn"}') == 1.0
        with Shipyard.open(served, actor="rui", env={}) as service:  # any deployment change: the gateway tries again
            service.store.set_deployment(actor="rui", model="churn", challenger=None, mode="single", weight=0.0)
        wait_for(lambda: server.gateway.routes["churn"].champion.loaded.version == 2)
        assert client.get(f"{server.url}/v2/health/ready").json() == {"ready": True}
        assert "stale" not in client.get(f"{server.url}/v2/models/churn/ready").json()
        assert counted(client.get(f"{server.url}/metrics").text, 'shipyard_model_stale{model="churn"}') == 0.0


def test_a_challenger_that_breaks_loading_unexpectedly_leaves_the_gateway_following_the_store(
    served: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading v2 raises an error no code path expects (patched in: no real model fails this way on
    demand). The gateway records it, serves v1, and still applies the store's next change."""
    from shipyard.serving import runtime

    real_load = runtime.load
    broken = {"churn/2": 1}  # the first load of v2 breaks

    def load(version: Any, *args: Any, **kwargs: Any) -> Any:
        if broken.get(version.subject, 0) > 0:
            broken[version.subject] -= 1
            raise RuntimeError("unpickling hit a bug")
        return real_load(version, *args, **kwargs)

    monkeypatch.setattr(runtime, "load", load)
    with Server(served) as server, httpx.Client() as client, Shipyard.open(served, actor="rui", env={}) as service:
        service.store.set_deployment(actor="rui", model="churn", challenger=2, mode="canary", weight=0.5)
        wait_for(lambda: ("churn", 2) in server.gateway.failures)
        assert server.gateway.failures[("churn", 2)] == "RuntimeError: unpickling hit a bug"
        answers = {predict(client, server.url, {"instances": [ROW]}).json()["version"] for _ in range(20)}
        assert answers == {1}
        service.store.set_deployment(actor="rui", model="churn", challenger=2, mode="canary", weight=1.0)
        wait_for(lambda: server.gateway.routes["churn"].challenger is not None)
        assert predict(client, server.url, {"instances": [ROW]}).json()["version"] == 2
        assert ("churn", 2) not in server.gateway.failures


def test_bearer_tokens(served: Path) -> None:
    with Shipyard.open(served, actor="rui", env={}) as service:
        _, token = service.create_token("dashboard", scope="predict")
        assert service.store.token_hashes() and token not in repr(service.store.token_hashes())
    with Server(served, auth=True) as server, httpx.Client() as client:
        assert predict(client, server.url, {"instances": [ROW]}).status_code == 401
        assert client.get(f"{server.url}/metrics").status_code == 401
        wrong = predict(client, server.url, {"instances": [ROW]}, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = predict(client, server.url, {"instances": [ROW]}, headers={"authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert client.get(f"{server.url}/v2/health/ready").status_code == 200  # probes stay open


def test_a_token_created_while_the_gateway_runs_is_accepted_without_a_deployment_change(served: Path) -> None:
    with Server(served, auth=True) as server, httpx.Client() as client:
        generation = server.gateway.generation
        with Shipyard.open(served, actor="rui", env={}) as service:
            _, token = service.create_token("late-dashboard", scope="predict")
        headers = {"authorization": f"Bearer {token}"}
        wait_for(lambda: predict(client, server.url, {"instances": [ROW]}, headers=headers).status_code == 200, timeout=20)
        assert client.get(f"{server.url}/metrics", headers=headers).status_code == 200
        assert server.gateway.generation == generation  # read on a reload tick, not because a deployment moved


def test_schemathesis_finds_no_server_error(served: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    with Server(served) as server:
        done = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "25",
                "--request-timeout",
                "10",
            ],
            cwd=tmp_path,  # its cache of findings stays out of the work tree
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_unknown_category_is_refused_where_the_policy_forbids_it(served: Path) -> None:
    with Server(served) as server, httpx.Client() as client:
        lenient = predict(client, server.url, {"instances": [{**ROW, "contract_type": "lifetime"}]})
        assert lenient.status_code == 200  # the encoder ignores unseen categories by default
    policy = served / "policies" / "churn.yaml"
    policy.write_text(policy.read_text() + "\nserving: {reject_unknown_categories: true}\n")
    with Server(served) as server, httpx.Client() as client:
        strict = predict(client, server.url, {"instances": [ROW, {**ROW, "contract_type": "lifetime"}]})
        assert strict.status_code == 422
        assert strict.json()["field"] == "contract_type" and "unknown category 'lifetime'" in strict.json()["error"]
        assert predict(client, server.url, {"instances": [ROW]}).status_code == 200


def test_sigterm_drains_and_flushes_the_log(served: Path) -> None:
    """The real `shipyard serve` process: SIGTERM while clients are sending loses no logged prediction."""
    answered: list[str] = []
    with ServeProcess(served) as server, httpx.Client() as client:
        for i in range(30):
            response = predict(client, server.url, {"instances": [ROW]}, headers={"x-request-id": f"term-{i}"})
            assert response.status_code == 200
            answered.append(f"term-{i}")
        status, errors = server.terminate()  # a requested stop: drained, then exit status 0
        assert status == 0, errors
        # Its decisions are narrated at INFO on stderr, one line each (they were written but never shown).
        assert re.search(r"INFO shipyard\S*: deployment generation \d+ applied: churn v1", errors), errors[-2000:]
    logged = read_log(served / ".shipyard" / "predictions", model="churn").column("request_id").to_pylist()
    assert sorted(logged) == sorted(answered)


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return False
    return True


def test_sigterm_turns_readiness_off_and_drains_without_failing_a_request(served: Path) -> None:
    """`shipyard serve` as Kubernetes stops it: on SIGTERM readiness turns 503 at once while requests are still
    answered for the drain period (--drain-seconds: the load balancer takes time to notice), then the gateway
    stops accepting and exits 0 once the requests it took are answered.

    Clients send until nothing listens any more: a refused connection means the request was never sent, and
    is how they learn the gateway is gone; any other failure (a reset, a request left unanswered) counts."""
    outcomes: list[object] = []
    refused = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=30) as session:
            while True:
                try:
                    outcomes.append(predict(session, server.url, {"instances": [ROW]}).status_code)
                except httpx.ConnectError:
                    refused.set()
                    return
                except httpx.HTTPError as exc:
                    outcomes.append(repr(exc))

    body = json.dumps({"instances": [ROW]})
    with ServeProcess(served, args=("--drain-seconds", "3")) as server, httpx.Client() as probe:
        idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)  # a keep-alive connection, left idle
        clients = [threading.Thread(target=client) for _ in range(4)]
        for thread in clients:
            thread.start()
        wait_for(lambda: len(outcomes) > 40)
        server.sigterm()
        wait_for(lambda: probe.get(f"{server.url}/v2/health/ready").status_code == 503, timeout=5)
        draining = probe.get(f"{server.url}/v2/health/ready").json()
        assert draining["ready"] is False and draining["draining"] is True and "shutting down" in draining["reason"]
        answered = len(outcomes)
        wait_for(lambda: len(outcomes) > answered + 100)  # predictions are still answered while readiness says 503
        assert not refused.is_set()
        idle.request("POST", "/v1/models/churn:predict", body=body)  # within uvicorn's 5 s keep-alive of the end
        warm = idle.getresponse()
        assert warm.status == 200 and warm.read()
        wait_for(lambda: not accepts(server.port), timeout=30, every=0.01)
        # The drain is over and nothing new is accepted, but a request on an open connection is still answered,
        # with "Connection: close" (uvicorn alone closes idle connections then, losing a request sent meanwhile).
        idle.request("POST", "/v1/models/churn:predict", body=body)
        last = idle.getresponse()
        assert last.status == 200 and last.getheader("connection") == "close"
        for thread in clients:
            thread.join(timeout=60)
        status, errors = server.terminate()
    assert status == 0, errors
    assert len(outcomes) > answered + 100 and set(outcomes) == {200}, [o for o in outcomes if o != 200][:5]


def test_sigint_stops_at_once_and_exits_0(served: Path) -> None:
    """Ctrl-C at a terminal: no drain to wait for, and no traceback."""
    import signal

    with ServeProcess(served) as server, httpx.Client() as client:
        assert predict(client, server.url, {"instances": [ROW]}).status_code == 200
        assert server.process is not None
        server.process.send_signal(signal.SIGINT)
        _, errors = server.process.communicate(timeout=60)
        assert server.process.returncode == 0, errors
        assert "Traceback" not in errors and "Aborted" not in errors


def test_two_gateways_on_postgresql_converge(served: Path, postgres_url: str) -> None:
    """Replicas share deployment state through one PostgreSQL store."""
    from shipyard.store.repository import Store

    Store.open(postgres_url, auto_migrate=True).close()
    local = Store.open(f"sqlite:///{served / '.shipyard' / 'shipyard.db'}")
    shared = Store.open(postgres_url)
    for v in copy_versions(local, shared):
        for stage in ("staging", "production") if v.version == 1 else ("staging",):
            shared.transition(actor="rui", model="churn", version=v.version, to=Stage(stage), reason="setup")
    local.close()
    env = {"SHIPYARD_STORE_URL": postgres_url}

    with Server(served, env=env) as first, Server(served, env=env) as second, httpx.Client() as client:
        for server in (first, second):
            assert predict(client, server.url, {"instances": [ROW]}).json()["version"] == 1
        shared.set_deployment(actor="rui", model="churn", challenger=2, mode="bluegreen", weight=1.0)
        wait_for(lambda: all(s.gateway.generation == shared.serving_generation() for s in (first, second)), timeout=10)
        for server in (first, second):
            assert predict(client, server.url, {"instances": [ROW]}).json()["version"] == 2
    shared.close()
