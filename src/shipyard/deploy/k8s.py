"""The gateway as Kubernetes objects: a kustomize base and one overlay per environment.

The pods run `shipyard serve` for one model from the packaged project (`shipyard package --project`) and
follow the shared store (its URL from a Secret): they serve whatever the store deploys, so Shipyard's own
rollouts keep routing traffic inside the cluster. The exported version sizes the pods (its footprint).
"""

from __future__ import annotations

from typing import Any

from shipyard.deploy.target import PORT, ServingTarget, dns_name
from shipyard.location import is_object_store

SHARED_CLAIM = "shipyard-shared"  # deploy.shared_path: the volume every replica records into
STORE_SECRET = "shipyard-store"  # holds `url`: the shared store (team mode); optional for a single replica
# deploy.shared_path in an object store: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, … for the pods,
# optional (a pod role, e.g. EKS's IRSA, needs none).
OBJECT_STORE_SECRET = "shipyard-object-store"


def deployment(t: ServingTarget) -> dict[str, Any]:
    probe = {"port": "http"}
    container = {
        "name": "gateway",
        "image": t.project_image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["serve", "--host", "0.0.0.0", "--port", str(PORT), "--models", t.model, "--no-worker"],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": [
            # OpenMP threads fighting over a replica's cores cost 9-23% throughput (PERFORMANCE.md).
            {"name": "OMP_NUM_THREADS", "value": "1"},
            {"name": "SHIPYARD_PROJECT", "value": "/app"},
            {
                "name": "SHIPYARD_STORE_URL",
                "valueFrom": {"secretKeyRef": {"name": STORE_SECRET, "key": "url", "optional": True}},
            },
        ],
        "resources": t.resources,
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", **probe},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", **probe},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "startupProbe": {"httpGet": {"path": "/v2/health/live", **probe}, "periodSeconds": 2, "failureThreshold": 60},
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod: dict[str, Any] = {
        # The gateway drains on SIGTERM (reports not ready, then stops): give it the time to.
        "terminationGracePeriodSeconds": 30,
        "containers": [container],
    }
    shared = t.deploy.shared_path
    if shared and is_object_store(shared):
        # Every replica records into one bucket prefix; its credentials and endpoint come from the AWS variables.
        container["envFrom"] = [{"secretRef": {"name": OBJECT_STORE_SECRET, "optional": True}}]
    elif shared:
        # Every replica records into one volume (a ReadWriteMany claim the cluster provides), so rollouts and
        # monitors judge the traffic of all of them.
        mount = shared if shared.startswith("/") else f"/app/{shared}"
        container["volumeMounts"] = [{"name": "shared", "mountPath": mount}]
        pod["volumes"] = [{"name": "shared", "persistentVolumeClaim": {"claimName": SHARED_CLAIM}}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": t.name, "labels": t.labels, "annotations": t.annotations},
        "spec": {
            "replicas": t.deploy.replicas,
            "selector": {"matchLabels": t.labels},
            "template": {
                "metadata": {"labels": t.labels, "annotations": t.annotations},
                "spec": pod,
            },
        },
    }


def service(t: ServingTarget) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": t.name, "labels": t.labels},
        "spec": {
            "selector": t.labels,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def autoscaler(t: ServingTarget) -> dict[str, Any]:
    d = t.deploy
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": t.name, "labels": t.labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": t.name},
            "minReplicas": d.replicas,
            "maxReplicas": max(d.max_replicas, d.replicas),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": d.target_cpu_percent}},
                },
                {
                    # Requests per second per pod, served to the HPA by a metrics adapter from the gateway's
                    # shipyard_requests_total (prometheus-adapter: rate over 1m).
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "shipyard_requests_per_second"},
                        "target": {"type": "AverageValue", "averageValue": _quantity(d.target_requests_per_second)},
                    },
                },
            ],
        },
    }


def _quantity(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{round(value * 1000)}m"


def disruption_budget(t: ServingTarget) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": t.name, "labels": t.labels},
        "spec": {"minAvailable": 1 if t.deploy.replicas > 1 else 0, "selector": {"matchLabels": t.labels}},
    }


def network_policy(t: ServingTarget) -> dict[str, Any]:
    """Only the gateway's port is reachable, from the namespace and from the monitoring namespace's Prometheus."""
    port = [{"protocol": "TCP", "port": PORT}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": t.name, "labels": t.labels},
        "spec": {
            "podSelector": {"matchLabels": t.labels},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"podSelector": {}}], "ports": port},
                {
                    "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                    "ports": port,
                },
            ],
        },
    }


def service_monitor(t: ServingTarget) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": t.name, "labels": t.labels},
        "spec": {
            "selector": {"matchLabels": t.labels},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s", "scheme": "http"}],
        },
    }


# What each monitor signal's alert says; the monitor fires at or above the threshold, and so do these.
MONITOR_SUMMARIES = {
    "feature_drift_share": "share of drifted features at or above {threshold}",
    "prediction_drift": "PSI of the prediction scores at or above {threshold}",
    "metric_decay": "live primary metric significantly worse than the holdout's, by {threshold} or more,",
}
STALE_RUNS = 3  # scheduled monitor runs that may go by before the missing readings are an alert


def alert_rules(t: ServingTarget) -> list[dict[str, Any]]:
    """Prometheus alerting rules mirroring every alert rule of the model, and one for a monitor that stopped.

    ``error_rate`` is judged on the gateway's request counters; the drift and decay signals on the readings of
    the latest `shipyard monitor run` (the CronJob or CronWorkflow), which the gateway shows as
    ``shipyard_monitor_signal``, with the same comparison the monitor makes.
    """
    model = t.model.replace("\\", "\\\\").replace('"', '\\"')
    rules: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for rule in t.alerts:
        seen[rule.signal] = count = seen.get(rule.signal, 0) + 1
        name = f"Shipyard{_camel(t.model)}{_camel(rule.signal)}{count if count > 1 else ''}"
        labels = {"severity": "critical" if rule.action == "rollback" else "warning", "shipyard_model": t.model}
        if rule.signal == "error_rate":
            # As the monitor judges it: the share of answers that were server errors (5xx), at or above the threshold.
            failed = f'sum(rate(shipyard_requests_total{{model="{model}",status=~"5.."}}[5m]))'
            answered = f'sum(rate(shipyard_requests_total{{model="{model}"}}[5m]))'
            rules.append(
                {
                    "alert": name,
                    "expr": f"{failed} / {answered} >= {rule.threshold!r}",
                    "for": "5m",
                    "labels": labels,
                    "annotations": {
                        "summary": f"{t.model}: share of server errors at or above {rule.threshold:g}",
                        "shipyard_action": rule.action,
                    },
                }
            )
            continue
        # Every replica shows the same reading (they read one store): max() makes them one alert.
        # repr: every digit of the threshold (the monitor compares with all of them), where :g keeps six.
        expr = f'max(shipyard_monitor_signal{{model="{model}",signal="{rule.signal}"}}) >= {rule.threshold!r}'
        if rule.signal == "metric_decay":  # the monitor fires only on a decay its bootstrap interval makes significant
            expr += f' and max(shipyard_monitor_metric_decay_significant{{model="{model}"}}) == 1'
        rules.append(
            {
                "alert": name,
                "expr": expr,
                "labels": labels,
                "annotations": {
                    "summary": f"{t.model}: {MONITOR_SUMMARIES[rule.signal].format(threshold=f'{rule.threshold:g}')} "
                    "in the latest monitor run",
                    "shipyard_action": rule.action,
                },
            }
        )
    if any(rule.signal != "error_rate" for rule in t.alerts):
        stale = STALE_RUNS * t.monitor_seconds
        rules.append(
            {
                "alert": f"Shipyard{_camel(t.model)}MonitorStale",
                "expr": f'time() - max(shipyard_monitor_run_timestamp_seconds{{model="{model}"}}) > {stale:g}',
                "labels": {"severity": "warning", "shipyard_model": t.model},
                "annotations": {
                    "summary": f"{t.model}: no monitor run recorded in {stale / 60:g} minutes ({STALE_RUNS} scheduled "
                    "runs), so its drift and decay alerts are not judged"
                },
            }
        )
    rules.append(
        {
            "alert": f"Shipyard{_camel(t.model)}NotLoaded",
            "expr": f'max(shipyard_model_loaded{{model="{model}"}}) < 1',
            "for": "5m",
            "labels": {"severity": "critical", "shipyard_model": t.model},
            "annotations": {"summary": f"{t.model}: no gateway replica has the model loaded"},
        }
    )
    return rules


def _camel(text: str) -> str:
    return "".join(part.capitalize() for part in dns_name(text).split("-"))


def prometheus_rule(t: ServingTarget) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": t.name, "labels": t.labels},
        "spec": {"groups": [{"name": f"shipyard.{dns_name(t.model)}", "rules": alert_rules(t)}]},
    }


BASE_FILES = {
    "deployment.yaml": deployment,
    "service.yaml": service,
    "hpa.yaml": autoscaler,
    "pdb.yaml": disruption_budget,
    "networkpolicy.yaml": network_policy,
    "servicemonitor.yaml": service_monitor,
    "prometheusrule.yaml": prometheus_rule,
}


def kustomize_tree(t: ServingTarget) -> dict[str, Any]:
    """Relative path → object (or kustomization): ``base/`` and ``overlays/<environment>/``."""
    files: dict[str, Any] = {f"base/{name}": build(t) for name, build in BASE_FILES.items()}
    files["base/kustomization.yaml"] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(BASE_FILES),
    }
    for env in t.deploy.environments:
        slug = dns_name(env)
        files[f"overlays/{slug}/kustomization.yaml"] = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": dns_name(f"{t.namespace}-{slug}"),
            "resources": ["../../base"],
            "labels": [{"pairs": {"shipyard.dev/environment": slug}, "includeSelectors": False}],
        }
    return files


def core_objects(files: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects of a tree that belong to Kubernetes itself (not kustomizations or CRDs)."""
    return [
        obj
        for obj in files.values()
        if isinstance(obj, dict) and "apiVersion" in obj and not obj["apiVersion"].startswith(("kustomize.", "monitoring."))
    ]
