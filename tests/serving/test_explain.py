"""The explain verb, ``POST /v1/models/{name}:explain``, on a real gateway: its attributions are shap's."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from harness import ROW, Server, ship

from shipyard.examples.churn.generator import generate
from shipyard.service import Shipyard


@pytest.fixture
def served(trained_project: Path) -> Path:
    ship(trained_project, 1)
    return trained_project


def rows(count: int) -> list[dict[str, Any]]:
    frame = generate(count, seed=11).drop(columns=["customer_id", "signup_date", "churned"])
    return json.loads(frame.to_json(orient="records"))


def shap_reference(root: Path, records: list[dict[str, Any]]) -> tuple[np.ndarray, list[str]]:
    """shap's TreeExplainer on the served version's own model, each one-hot dummy added to its input column."""
    import shap

    with Shipyard.open(root, actor="rui", env={}) as service:
        model = service.registry.load_version(service.version("churn", 1)).model
    frame = pd.DataFrame(records)
    columns = list(frame.columns)
    raw = shap.TreeExplainer(model[-1]).shap_values(model[:-1].transform(frame))
    summed = np.zeros((len(frame), len(columns)))
    for j, name in enumerate(model[:-1].get_feature_names_out()):
        encoded = str(name).split("__", 1)[1]
        source = max((c for c in columns if encoded == c or encoded.startswith(f"{c}_")), key=len)
        summed[:, columns.index(source)] += raw[:, j]
    return summed, columns


def explain(client: httpx.Client, url: str, body: Any, path: str = "churn:explain") -> httpx.Response:
    return client.post(f"{url}/v1/models/{path}", content=json.dumps(body))


def test_explain_answers_shaps_attributions_for_the_served_version(served: Path) -> None:
    records = rows(5)
    expected, columns = shap_reference(served, records)
    with Server(served) as server, httpx.Client(timeout=60) as client:
        answer = explain(client, server.url, {"instances": records})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == "churn" and body["version"] == 1 and body["explainer"] == "TreeExplainer"
        assert body["features"] == columns and body["output"] == "log-odds"
        got = np.array([[row[c] for c in columns] for row in body["explanations"]])
        np.testing.assert_allclose(got, expected, atol=1e-9)
        # Base value plus a row's attributions is the log-odds of the probability the gateway predicts.
        scores = client.post(f"{server.url}/v1/models/churn:predict", content=json.dumps({"instances": records})).json()
        for attributions, probability in zip(got, scores["probabilities"], strict=True):
            assert body["base_value"] + attributions.sum() == pytest.approx(math.log(probability / (1 - probability)), abs=1e-6)
        pinned = explain(client, server.url, {"inputs": {k: [v] for k, v in ROW.items()}}, "churn/versions/1:explain")
        assert pinned.status_code == 200 and len(pinned.json()["explanations"]) == 1


def test_concurrent_explanations_share_a_call_and_each_gets_its_own_rows(served: Path) -> None:
    records = rows(16)
    expected, columns = shap_reference(served, records)
    with Server(served) as server, httpx.Client(timeout=60) as client:
        explain(client, server.url, {"instances": records[:1]})  # the explainer is built on the first request
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda r: explain(client, server.url, {"instances": [r]}), records))
    for i, answer in enumerate(answers):
        assert answer.status_code == 200, answer.text
        [row] = answer.json()["explanations"]
        np.testing.assert_allclose([row[c] for c in columns], expected[i], atol=1e-9)


def test_bad_explain_requests_are_4xx_saying_why(served: Path) -> None:
    with Server(served) as server, httpx.Client(timeout=60) as client:
        missing = explain(client, server.url, {"instances": [{k: v for k, v in ROW.items() if k != "gender"}]})
        assert missing.status_code in (400, 422) and "gender" in missing.json()["error"]
        unknown = explain(client, server.url, {"instances": [ROW]}, "fraud:explain")
        assert unknown.status_code == 404 and "fraud" in unknown.json()["error"]
        version = explain(client, server.url, {"instances": [ROW]}, "churn/versions/7:explain")
        assert version.status_code == 404 and "Served versions: 1" in version.json()["hint"]
        malformed = client.post(f"{server.url}/v1/models/churn:explain", content=b"{not json")
        assert malformed.status_code == 400 and "malformed JSON" in malformed.json()["error"]
