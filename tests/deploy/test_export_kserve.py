"""`shipyard export kserve`: the InferenceService for the champion, and for each rollout step, round-tripped
through the KServe SDK's models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.service import Shipyard


def roundtrip(obj: Any, model: str) -> Any:
    """Build the SDK's model from ``obj`` (its constructors check types and enums) and serialize it back.

    The SDK's own deserializer cannot resolve the Kubernetes types its models nest (V1ObjectMeta, V1Container…,
    which live in the kubernetes client) nor its typing-style hints (``Dict[str, str]``), so the walk is
    written here; the checks are the models' own.
    """
    from kserve import ApiClient

    return ApiClient().sanitize_for_serialization(_build(obj, model))


def _build(data: Any, klass: str) -> Any:
    import re

    import kserve.models
    import kubernetes.client.models

    if data is None:
        return None
    listed = re.fullmatch(r"(?:list|List)\[(.*)\]", klass)
    if listed:
        return [_build(item, listed.group(1)) for item in data]
    mapped = re.fullmatch(r"(?:dict\(|Dict\[)[^,]*, (.*)[)\]]", klass)
    if mapped:
        return {key: _build(value, mapped.group(1)) for key, value in data.items()}
    if klass in ("str", "int", "float", "bool", "object", "date", "datetime"):
        return data
    model = getattr(kserve.models, klass, None) or getattr(kubernetes.client.models, klass)
    if not isinstance(data, dict):
        raise TypeError(f"{klass} expects an object, got {data!r}")
    by_json = {json_name: attr for attr, json_name in model.attribute_map.items()}
    unknown = set(data) - set(by_json)
    if unknown:
        raise ValueError(f"{klass} has no field {sorted(unknown)}")
    return model(**{by_json[k]: _build(v, model.openapi_types[by_json[k]]) for k, v in data.items()})


def export(root: Path, out: Path) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["--project", str(root), "export", "kserve", "churn", "--out", str(out)])
    assert result.exit_code == 0, result.output
    service = yaml.safe_load((out / "churn-inferenceservice.yaml").read_text())
    runtime = yaml.safe_load((out / "churn-servingruntime.yaml").read_text())
    assert roundtrip(service, "V1beta1InferenceService") == service  # nothing the SDK does not know, nothing lost
    assert roundtrip(runtime, "V1alpha1ServingRuntime") == runtime
    return service


def test_champion_then_each_canary_step(shipped: Path, tmp_path: Path) -> None:
    champion = export(shipped, tmp_path / "champion")
    predictor = champion["spec"]["predictor"]
    assert champion["apiVersion"] == "serving.kserve.io/v1beta1" and champion["kind"] == "InferenceService"
    assert predictor["model"]["protocolVersion"] == "v2"
    assert predictor["model"]["image"] == "churn-demo-churn:v1"
    assert "canaryTrafficPercent" not in predictor

    with Shipyard.open(shipped, actor="rui", env={}) as service:
        service.start_rollout("churn", 2, steps=[25, 50, 100])
        first = export(shipped, tmp_path / "step1")["spec"]["predictor"]
        # The controller's decision, applied as the worker would after a passing analysis.
        service.store.advance_rollout(actor="rui", model="churn", action="next")
        second = export(shipped, tmp_path / "step2")["spec"]["predictor"]
    assert (first["model"]["image"], first["canaryTrafficPercent"]) == ("churn-demo-churn:v2", 25)
    assert (second["model"]["image"], second["canaryTrafficPercent"]) == ("churn-demo-churn:v2", 50)


def test_the_sdk_refuses_a_wrong_object() -> None:
    """The round trip can fail: the models refuse a container without its required name, and an unknown field."""
    nameless = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "spec": {"supportedModelFormats": [{"name": "shipyard"}], "containers": [{"image": "x"}]},
    }
    with pytest.raises(ValueError, match="name"):
        roundtrip(nameless, "V1alpha1ServingRuntime")
    unknown = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "spec": {"predictr": {}}}
    with pytest.raises(ValueError, match="predictr"):
        roundtrip(unknown, "V1beta1InferenceService")


def test_no_champion_is_a_clear_error(trained_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["--project", str(trained_project), "export", "kserve", "churn", "--out", str(out)])
    assert result.exit_code != 0 and "no version in production" in result.stderr
    assert not out.exists()
    unknown = CliRunner().invoke(app, ["--project", str(trained_project), "export", "kserve", "nosuch", "--out", str(out)])
    assert unknown.exit_code != 0 and "nosuch" in unknown.stderr and not out.exists()
