"""`shipyard export k8s`: every object checked against the real schemas, every overlay built by kustomize."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from deploy.clusterchecks import kustomize, promtool_check, promtool_test, validate_operator_objects
from shipyard.cli import app
from shipyard.service import Shipyard

K8S_VERSION = "1.30.0"
CORE_KINDS = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"}


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["kind"]: obj for obj in objects}


def test_every_overlay_builds_and_validates(shipped: Path, tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    result = run("--project", str(shipped), "export", "k8s", "churn", "--out", str(out))
    assert result.exit_code == 0, result.output
    overlays = sorted(p.name for p in (out / "overlays").iterdir())
    assert overlays == ["production", "staging"]
    for env in overlays:
        objects = by_kind(kustomize(out / "overlays" / env))
        assert CORE_KINDS | {"ServiceMonitor", "PrometheusRule"} == set(objects)
        for kind in CORE_KINDS:
            kubernetes_validate.validate(objects[kind], K8S_VERSION, strict=True)
            assert objects[kind]["metadata"]["namespace"] == f"churn-demo-{env}"
        checked = validate_operator_objects([objects["ServiceMonitor"], objects["PrometheusRule"]])
        assert checked.returncode == 0, checked.stdout + checked.stderr
        rules = promtool_check(objects["PrometheusRule"]["spec"], tmp_path)
        assert rules.returncode == 0, rules.stdout + rules.stderr

    objects = by_kind(kustomize(out / "overlays" / "production"))
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "churn-demo:latest"  # the packaged project, following the store
    assert objects["Deployment"]["metadata"]["annotations"]["shipyard.dev/version"] == "1"  # the champion
    assert {"name": "OMP_NUM_THREADS", "value": "1"} in container["env"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    # Sized from the footprint measured at registration (384 MB base + 1.5 × the memory loading added).
    with Shipyard.open(shipped, actor="alice", env={}) as service:
        memory = (service.evidence("churn", 1) or {})["footprint"]["memory_mb"]
    assert objects["Deployment"]["metadata"]["annotations"]["shipyard.dev/resources-from"] == "footprint"
    assert container["resources"]["requests"]["memory"] == f"{384 + math.ceil(memory * 1.5)}Mi"
    metrics = {m["type"]: m for m in objects["HorizontalPodAutoscaler"]["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    assert metrics["Pods"]["pods"]["metric"]["name"] == "shipyard_requests_per_second"
    # Every alert rule of the churn example (one per signal) is mirrored, plus a stopped monitor and an unloaded model.
    alerts = {a["alert"]: a for a in objects["PrometheusRule"]["spec"]["groups"][0]["rules"]}
    mirrored = ["FeatureDriftShare", "MetricDecay", "PredictionDrift", "ErrorRate"]
    assert list(alerts) == [f"ShipyardChurn{name}" for name in [*mirrored, "MonitorStale", "NotLoaded"]]
    error = alerts["ShipyardChurnErrorRate"]
    assert error["expr"].endswith(">= 0.05") and error["labels"]["severity"] == "critical"
    assert 'status=~"5.."' in error["expr"]  # as the monitor counts: server errors only, not a client's 4xx
    drift = alerts["ShipyardChurnFeatureDriftShare"]
    assert drift["expr"] == 'max(shipyard_monitor_signal{model="churn",signal="feature_drift_share"}) >= 0.25'
    assert drift["annotations"]["shipyard_action"] == "retrain" and drift["labels"]["severity"] == "warning"
    assert "shipyard_monitor_metric_decay_significant" in alerts["ShipyardChurnMetricDecay"]["expr"]
    # The CronJob runs the monitor every 30 minutes (no monitoring.interval in the example): three missed runs alert.
    assert alerts["ShipyardChurnMonitorStale"]["expr"].endswith("> 5400")


def churn_target(alerts: list[dict[str, Any]], interval: float = 0.0, deploy: Any = None) -> Any:
    from shipyard.config import AlertRule, DeploySpec
    from shipyard.deploy.target import ServingTarget, monitor_schedule

    return ServingTarget(
        project="p",
        model="churn",
        version=1,
        image="p-churn:v1",
        project_image="p:latest",
        namespace="p",
        deploy=deploy or DeploySpec(),
        alerts=[AlertRule.model_validate(a) for a in alerts],
        monitor_seconds=monitor_schedule(interval)[1],
    )


def firing(name: str, at: str, rule: dict[str, Any] | None) -> dict[str, Any]:
    """What promtool should find for alert ``name`` at ``at``: ``rule``'s labels and annotations, or nothing."""
    found = [] if rule is None else [{"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}]
    return {"eval_time": at, "alertname": name, "exp_alerts": found}


def test_the_mirrored_alerts_fire_where_the_monitor_does(tmp_path: Path) -> None:
    """promtool runs the exported rules on series as two gateway replicas show them: each monitor signal alerts at
    or above its threshold (as `shipyard monitor run` fires) and not below, a decay only when significant, and
    a monitor that misses three scheduled runs (every 10 minutes here) alerts too."""
    from shipyard.deploy.k8s import prometheus_rule

    target = churn_target(
        [
            {"signal": "feature_drift_share", "threshold": 0.25, "action": "retrain"},
            {"signal": "prediction_drift", "threshold": 0.2, "action": "rollback"},
            {"signal": "metric_decay", "threshold": 0.03, "action": "none"},
        ],
        interval=600,
    )
    spec = prometheus_rule(target)["spec"]
    rules = {r["alert"]: r for r in spec["groups"][0]["rules"]}
    drift, psi, decay = (
        rules["ShipyardChurnFeatureDriftShare"],
        rules["ShipyardChurnPredictionDrift"],
        rules["ShipyardChurnMetricDecay"],
    )
    assert psi["labels"]["severity"] == "critical"  # its action is a rollback

    def series(name: str, values: str, **labels: str) -> list[dict[str, str]]:
        return [
            {
                "series": name + "{" + ",".join(f'{k}="{v}"' for k, v in {**labels, "instance": replica}.items()) + "}",
                "values": values,
            }
            for replica in ("gateway-a", "gateway-b")
        ]

    test = {
        "interval": "1m",
        # One sample a minute; each monitor run changes the readings (minutes 0-1, 2-3, 4-5).
        "input_series": [
            *series("shipyard_monitor_signal", "0.24 0.24 0.25 0.25 0.4 0.4", model="churn", signal="feature_drift_share"),
            *series("shipyard_monitor_signal", "0.1 0.1 0.2 0.2 0.19 0.19", model="churn", signal="prediction_drift"),
            *series("shipyard_monitor_signal", "0.05 0.05 0.05 0.05 0.02 0.02", model="churn", signal="metric_decay"),
            *series("shipyard_monitor_metric_decay_significant", "0 0 1 1 1 1", model="churn"),
            # The last run was recorded at Unix time 0 and none since.
            *series("shipyard_monitor_run_timestamp_seconds", "0x40", model="churn"),
        ],
        "alert_rule_test": [
            firing(drift["alert"], "1m", None),  # 0.24 < 0.25
            firing(drift["alert"], "3m", drift),  # exactly the threshold: the monitor fires too
            firing(drift["alert"], "5m", drift),
            firing(psi["alert"], "1m", None),
            firing(psi["alert"], "3m", psi),
            firing(psi["alert"], "5m", None),  # back below
            firing(decay["alert"], "1m", None),  # large but not significant
            firing(decay["alert"], "3m", decay),
            firing(decay["alert"], "5m", None),  # significant but small
            firing("ShipyardChurnMonitorStale", "30m", None),  # three runs of 10 minutes may be missed
            firing("ShipyardChurnMonitorStale", "31m", rules["ShipyardChurnMonitorStale"]),
        ],
    }
    checked = promtool_test(spec, [test], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # And the test can fail: the alert expected below the threshold is not there.
    checked = promtool_test(spec, [{**test, "alert_rule_test": [firing(drift["alert"], "1m", drift)]}], tmp_path)
    assert checked.returncode != 0 and drift["alert"] in checked.stdout + checked.stderr


def test_only_monitor_signals_need_the_monitor_and_repeated_signals_are_numbered() -> None:
    from shipyard.deploy.k8s import alert_rules

    only_errors = alert_rules(churn_target([{"signal": "error_rate", "threshold": 0.1, "action": "rollback"}]))
    assert [r["alert"] for r in only_errors] == ["ShipyardChurnErrorRate", "ShipyardChurnNotLoaded"]
    twice = alert_rules(churn_target([{"signal": "prediction_drift", "threshold": t} for t in (0.1, 0.123456789)]))
    assert [r["alert"] for r in twice][:2] == ["ShipyardChurnPredictionDrift", "ShipyardChurnPredictionDrift2"]
    assert twice[1]["expr"].endswith(">= 0.123456789")  # every digit the monitor compares with


def test_an_invalid_object_is_caught_by_the_validators(tmp_path: Path) -> None:
    """The checks above can fail: a broken object of each family is refused."""
    bad_deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad_deployment, K8S_VERSION, strict=True)
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "x"},
        "spec": {"selector": {}, "endpoints": [{"port": "http", "interval": "every minute"}]},
    }
    assert validate_operator_objects([monitor]).returncode == 1
    broken = {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "sum(rate(x[5m]) >"}]}]}
    assert promtool_check(broken, tmp_path).returncode != 0


def test_resources_follow_the_footprint_when_the_version_has_one(shipped: Path) -> None:
    with Shipyard.open(shipped, actor="alice", env={}) as service:
        evidence = {k: v for k, v in (service.evidence("churn", 1) or {}).items() if k != "footprint"}
        target = service.serving_target("churn", 1, evidence={**evidence, "footprint": {"memory_mb": 100.0}})
        plain = service.serving_target("churn", 1, evidence=evidence)  # a version registered without a footprint
    assert target.resources_from == "footprint"
    assert target.resources["requests"]["memory"] == "534Mi"  # 384 base + 1.5 × 100
    assert plain.resources_from == "defaults"


def test_a_version_can_be_chosen_and_bad_input_writes_nothing(shipped: Path, tmp_path: Path) -> None:
    out = tmp_path / "v2"
    assert run("--project", str(shipped), "export", "k8s", "churn", "--version", "2", "--out", str(out)).exit_code == 0
    deployment = yaml.safe_load((out / "base" / "deployment.yaml").read_text())
    assert deployment["metadata"]["annotations"]["shipyard.dev/version"] == "2"
    for args, expected in [
        (("nosuch",), "nosuch"),
        (("churn", "--version", "9"), "no version 9"),
    ]:
        target = tmp_path / "bad"
        result = run("--project", str(shipped), "export", "k8s", *args, "--out", str(target))
        assert result.exit_code != 0 and expected in result.stderr, result.output
        assert "Traceback" not in result.output
        assert not target.exists()


def test_nothing_in_production_is_a_clear_error(trained_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "none"
    result = run("--project", str(trained_project), "export", "k8s", "churn", "--out", str(out))
    assert result.exit_code != 0 and "no version in production" in result.stderr
    assert "--version" in result.stderr and not out.exists()


def test_a_shared_path_is_mounted_from_one_claim_in_every_replica_or_reached_in_its_bucket() -> None:
    from shipyard.config import DeploySpec
    from shipyard.deploy.k8s import deployment

    target = churn_target([], deploy=DeploySpec(shared_path="shared"))
    obj = deployment(target)
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    pod = obj["spec"]["template"]["spec"]
    assert pod["containers"][0]["volumeMounts"] == [{"name": "shared", "mountPath": "/app/shared"}]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "shipyard-shared"

    # In an object store there is no volume: the pods take the AWS variables from an optional Secret.
    in_bucket = deployment(replace(target, deploy=DeploySpec(shared_path="s3://bucket/shipyard")))
    kubernetes_validate.validate(in_bucket, K8S_VERSION, strict=True)
    pod = in_bucket["spec"]["template"]["spec"]
    assert "volumes" not in pod and "volumeMounts" not in pod["containers"][0]
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "shipyard-object-store", "optional": True}}]


@pytest.mark.parametrize(
    ("seconds", "schedule", "gap"),
    [
        (0, "*/30 * * * *", 1800),
        (600, "*/10 * * * *", 600),
        (6 * 3600, "0 */6 * * *", 6 * 3600),
        (24 * 3600, "0 0 * * *", 86400),  # was "0 */24 * * *": the hour field stops at 23
        (3 * 86400, "0 0 */3 * *", 3 * 86400),
        (60 * 86400, "0 0 1 * *", 31 * 86400),
    ],
)
def test_the_monitor_schedule_is_valid_cron_for_every_interval(seconds: float, schedule: str, gap: float) -> None:
    from shipyard.deploy.target import monitor_schedule

    assert monitor_schedule(seconds) == (schedule, gap)
    minute, hour, day, _month, _weekday = schedule.split()
    for field, top in ((minute, 59), (hour, 23), (day, 31)):
        step = field.partition("/")[2]
        assert not step or int(step) <= top, f"{schedule}: a step of {step} never repeats in a field that ends at {top}"
