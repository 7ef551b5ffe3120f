"""The Open Inference Protocol with Triton's extensions, through a real gateway, as tritonclient speaks it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as http
from harness import ROW, Server, ship
from tritonclient.utils import InferenceServerException

from shipyard import __version__

# The churn model's columns: strings, a double, and integers (tenure, support calls, senior citizen).
NUMERIC_AS: list[tuple[str, dict[str, tuple[str, Any]]]] = [
    ("INT64 and FP64", {"int": ("INT64", np.int64), "float": ("FP64", np.float64)}),
    ("INT32 and FP32", {"int": ("INT32", np.int32), "float": ("FP32", np.float32)}),
    ("FP64 for integers", {"int": ("FP64", np.float64), "float": ("FP64", np.float64)}),
]


@pytest.fixture
def served(trained_project: Path) -> Path:
    ship(trained_project, 1)
    return trained_project


def inputs(types: dict[str, tuple[str, Any]], *, binary: bool, rows: int = 3) -> list[http.InferInput]:
    out = []
    for name, value in ROW.items():
        values = [value] * rows
        if isinstance(value, str):
            datatype, array = "BYTES", np.array(values, dtype=object)
        else:
            datatype, dtype = types["float" if isinstance(value, float) else "int"]
            array = np.array(values, dtype=dtype)
        tensor = http.InferInput(name, [rows], datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        out.append(tensor)
    return out


@pytest.mark.parametrize(("case", "types"), NUMERIC_AS, ids=[case for case, _ in NUMERIC_AS])
def test_tritonclient_at_its_defaults_and_with_binary_outputs_answers_as_the_json_path(
    served: Path, case: str, types: dict[str, tuple[str, Any]]
) -> None:
    with Server(served) as server:
        client = http.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        try:
            # Defaults: binary inputs, and no outputs named, so tritonclient asks for every output in binary.
            default = client.infer("churn", inputs(types, binary=True))
            assert {o["name"]: "binary_data_size" in o.get("parameters", {}) for o in default.get_response()["outputs"]} == {
                "predict": True,
                "probability": True,
            }
            plain = client.infer(
                "churn",
                inputs(types, binary=False),
                outputs=[http.InferRequestedOutput(n, binary_data=False) for n in ("predict", "probability")],
            )
            assert all("data" in o for o in plain.get_response()["outputs"])
            for name in ("predict", "probability"):
                assert default.as_numpy(name).tolist() == plain.as_numpy(name).tolist()
            probability = default.as_numpy("probability")
            assert probability.dtype == np.float64 and probability.shape == (3,) and 0 < probability[0] < 1
            # Binary inputs, one output asked for in binary, pinned to a version.
            one = client.infer(
                "churn",
                inputs(types, binary=True),
                model_version="1",
                outputs=[http.InferRequestedOutput("probability", binary_data=True)],
            )
            assert [o["name"] for o in one.get_response()["outputs"]] == ["probability"]
            assert one.as_numpy("probability").tolist() == probability.tolist()
        finally:
            client.close()


def test_bool_tensors_travel_in_binary_and_reach_the_column_check(served: Path) -> None:
    """Churn has no boolean column: a BOOL tensor in binary is decoded and then refused for what it is."""
    with Server(served) as server:
        client = http.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        tensors = inputs({"int": ("INT64", np.int64), "float": ("FP64", np.float64)}, binary=True)
        tensors = [t for t in tensors if t.name() != "senior_citizen"]
        flag = http.InferInput("senior_citizen", [3], "BOOL")
        flag.set_data_from_numpy(np.array([True, False, True]))
        with pytest.raises(InferenceServerException) as refused:
            client.infer("churn", [*tensors, flag])
        client.close()
    assert refused.value.status() == "422"
    assert "tensor 'senior_citizen' has datatype BOOL, which does not fit a long column (send INT64)" in str(refused.value)


def _raw(server: Server, body: bytes, header: str | None) -> httpx.Response:
    headers = {"content-type": "application/octet-stream"}
    if header is not None:
        headers["Inference-Header-Content-Length"] = header
    return httpx.post(f"{server.url}/v2/models/churn/infer", content=body, headers=headers)


def test_malformed_binary_bodies_get_a_400_naming_the_problem(served: Path) -> None:
    body, length = http.InferenceServerClient.generate_request_body(
        inputs({"int": ("INT64", np.int64), "float": ("FP64", np.float64)}, binary=True)
    )
    doc, data = json.loads(body[:length]), body[length:]

    def rebuilt(change: Any) -> tuple[bytes, str]:
        copy = json.loads(json.dumps(doc))
        change(copy)
        head = json.dumps(copy).encode()
        return head + data, str(len(head))

    def size(name: str, value: object) -> Any:
        return lambda d: next(t for t in d["inputs"] if t["name"] == name)["parameters"].update(binary_data_size=value)

    cases = [
        ((body[:length], str(length + 100)), "the body has only"),
        (rebuilt(size("tenure_months", 20)), "shape [3] of INT64 takes 24 bytes"),
        (rebuilt(size("gender", -1)), "binary_data_size -1"),
        ((body, None), "send the Inference-Header-Content-Length header"),
    ]
    with Server(served) as server:
        for (content, header), message in cases:
            response = _raw(server, content, header)
            assert response.status_code == 400, response.text
            assert message in response.json()["error"]


def test_server_metadata_statistics_and_repository_index(served: Path) -> None:
    with Server(served) as server:
        client = http.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        try:
            assert client.get_server_metadata() == {
                "name": "shipyard",
                "version": __version__,
                "extensions": ["binary_tensor_data", "model_configuration", "statistics"],
            }
            before = client.get_inference_statistics("churn")["model_stats"]
            assert [(s["name"], s["version"], s["inference_count"]) for s in before] == [("churn", "1", 0)]
            for _ in range(2):
                client.infer("churn", inputs({"int": ("INT64", np.int64), "float": ("FP64", np.float64)}, binary=True))
            (after,) = client.get_inference_statistics("churn", model_version="1")["model_stats"]
            assert after["inference_count"] == 6 and after["execution_count"] >= 1
            success = after["inference_stats"]["success"]
            assert success["count"] == 2 and success["ns"] > 0
            assert after["inference_stats"]["compute_infer"]["count"] == after["execution_count"]
            assert after["last_inference"] > 0
            assert client.get_inference_statistics()["model_stats"] == [after]
            with pytest.raises(InferenceServerException) as missing:
                client.get_inference_statistics("churn", model_version="9")
            assert missing.value.status() == "404" and "version 9 of 'churn' is not served here" in str(missing.value)
            assert client.get_model_repository_index() == [{"name": "churn", "version": "1", "state": "READY"}]
            ready_only = httpx.post(f"{server.url}/v2/repository/index", json={"ready": "yes"})
            assert ready_only.status_code == 400 and '"ready" must be true or false' in ready_only.json()["error"]
        finally:
            client.close()


def test_model_configuration_names_inputs_outputs_batching_and_runtime(served: Path) -> None:
    with Server(served) as server:
        client = http.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        try:
            config = client.get_model_config("churn")
            pinned = client.get_model_config("churn", model_version="1")
            with pytest.raises(InferenceServerException) as missing:
                client.get_model_config("churn", model_version="9")
            metadata = client.get_model_metadata("churn")
        finally:
            client.close()
    assert config == pinned and config["name"] == "churn" and config["backend"] == "numpy-trees"
    assert config["max_batch_size"] == server.gateway.config.max_batch
    assert config["version_policy"] == {"specific": {"versions": ["1"]}}
    # The same inputs as the metadata route, in Triton's configuration types.
    assert [(i["name"], i["data_type"]) for i in config["input"]] == [
        (i["name"], "TYPE_STRING" if i["datatype"] == "BYTES" else f"TYPE_{i['datatype']}") for i in metadata["inputs"]
    ]
    assert {i["data_type"] for i in config["input"]} >= {"TYPE_STRING", "TYPE_FP64"}
    assert [o["name"] for o in config["output"]] == [o["name"] for o in metadata["outputs"]]
    assert missing.value.status() == "404" and "version 9 of 'churn' is not served here" in str(missing.value)


def test_unknown_routes_and_methods_answer_the_json_error_body(served: Path) -> None:
    with Server(served) as server, httpx.Client() as client:
        missing = client.get(f"{server.url}/v2/models/churn/trace/setting")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"
        assert missing.json()["error"].startswith("no route '/v2/models/churn/trace/setting'")
        method = client.get(f"{server.url}/v2/models/churn/infer")
        assert method.status_code == 405 and "POST" in method.headers["allow"]
        assert "GET is not allowed on '/v2/models/churn/infer'" in method.json()["error"]
        tc = http.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        with pytest.raises(InferenceServerException) as refused:
            tc.get_trace_settings("churn")
        tc.close()
    assert "no route '/v2/models/churn/trace/setting'" in str(refused.value)  # the readable text, not just a code
