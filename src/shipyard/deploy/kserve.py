"""A model's serving as a KServe InferenceService (Open Inference Protocol, v2).

Outside a rollout the predictor serves the champion's image. During a canary KServe itself splits the traffic:
the predictor names the challenger's image with ``canaryTrafficPercent`` at the rollout's current weight, and
KServe keeps the last fully rolled-out revision (the champion) for the rest. Re-exporting after each step gives
that step's manifest.
"""

from __future__ import annotations

from typing import Any

from shipyard.deploy.target import PORT, ServingTarget, dns_name

FORMAT = "shipyard"
# The packaged version's own gateway (`shipyard package`): KServe, not Shipyard, splits the traffic here.
PACKAGE_ARGS = ["serve", "--package", "/app/package", "--host", "0.0.0.0", "--port", str(PORT), "--no-worker", "--no-auth"]


def serving_runtime(t: ServingTarget) -> dict[str, Any]:
    """The runtime KServe picks for the ``shipyard`` model format: the packaged gateway speaking v2."""
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": dns_name(f"{t.project}-gateway"), "namespace": t.namespace},
        "spec": {
            "supportedModelFormats": [{"name": FORMAT, "version": "1", "autoSelect": True}],
            "protocolVersions": ["v2"],
            "containers": [
                {
                    "name": "kserve-container",
                    "image": t.image,
                    "args": list(PACKAGE_ARGS),
                    "ports": [{"containerPort": PORT, "protocol": "TCP"}],
                    "env": [{"name": "OMP_NUM_THREADS", "value": "1"}],
                }
            ],
        },
    }


def inference_service(
    champion: ServingTarget | None, challenger: ServingTarget | None = None, weight: float | None = None
) -> dict[str, Any]:
    """The InferenceService for the champion, or for a challenger taking ``weight`` percent of the traffic."""
    serving = challenger or champion
    if serving is None:
        raise ValueError("an InferenceService needs a champion or a challenger")
    model: dict[str, Any] = {
        "name": "kserve-container",
        "modelFormat": {"name": FORMAT, "version": "1"},
        "protocolVersion": "v2",
        "runtime": dns_name(f"{serving.project}-gateway"),
        "image": serving.image,
        "args": list(PACKAGE_ARGS),
        "env": [{"name": "OMP_NUM_THREADS", "value": "1"}],
        "resources": serving.resources,
    }
    predictor: dict[str, Any] = {
        "minReplicas": serving.deploy.replicas,
        "maxReplicas": max(serving.deploy.max_replicas, serving.deploy.replicas),
        "model": model,
    }
    annotations = {
        "shipyard.dev/model": serving.model,
        "shipyard.dev/champion": str(champion.version) if champion is not None else "",
    }
    if challenger is not None:
        predictor["canaryTrafficPercent"] = round(weight or 0.0)
        annotations["shipyard.dev/challenger"] = str(challenger.version)
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": dns_name(serving.model),
            "namespace": serving.namespace,
            "labels": serving.labels,
            "annotations": annotations,
        },
        "spec": {"predictor": predictor},
    }
