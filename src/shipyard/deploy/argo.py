"""The governed pipeline as an Argo WorkflowTemplate, and monitoring as a CronWorkflow or a plain CronJob.

Built with hera. Every step is a container running the packaged project (`shipyard package --project`), so the
cluster runs exactly the commands a person runs; the gates stay Shipyard's. `shipyard pipeline run` loads and
validates the data, trains, evaluates, collects the evidence and registers in one step (one process, as on a
laptop); the staging gate and the promotion follow as their own steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipyard.deploy.k8s import STORE_SECRET
from shipyard.deploy.target import dns_name

SERVICE_ACCOUNT = "shipyard"
SERVER_SECRET = "shipyard-server"  # team mode: `url` of the control-plane server and a `token` for the steps


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineTarget:
    project: str
    model: str
    image: str  # the packaged project
    namespace: str
    monitor_schedule: str = "*/30 * * * *"


def _env() -> list[Any]:
    from hera.workflows.models import EnvVar, EnvVarSource, SecretKeySelector

    def secret(name: str, key: str) -> EnvVarSource:
        return EnvVarSource(secret_key_ref=SecretKeySelector(name=name, key=key, optional=True))

    # Team mode: the steps are clients of the server (its URL and a token); otherwise they use the store directly.
    return [
        EnvVar(name="OMP_NUM_THREADS", value="1"),
        EnvVar(name="SHIPYARD_PROJECT", value="/app"),
        EnvVar(name="SHIPYARD_URL", value_from=secret(SERVER_SECRET, "url")),
        EnvVar(name="SHIPYARD_TOKEN", value_from=secret(SERVER_SECRET, "token")),
        EnvVar(name="SHIPYARD_STORE_URL", value_from=secret(STORE_SECRET, "url")),
    ]


def workflow_template(t: PipelineTarget) -> dict[str, Any]:
    from hera.workflows import DAG, Container, Parameter, WorkflowTemplate
    from hera.workflows.models import Outputs, ValueFrom

    model = "{{workflow.parameters.model}}"
    version = "{{tasks.train-evaluate-register.outputs.parameters.version}}"
    with WorkflowTemplate(
        name=dns_name(f"{t.model}-pipeline"),
        namespace=t.namespace,
        entrypoint="governed-pipeline",
        service_account_name=SERVICE_ACCOUNT,
        arguments=[Parameter(name="model", value=t.model)],
        labels={"app.kubernetes.io/part-of": dns_name(t.project)},
    ) as template:
        run = Container(
            name="train-evaluate-register",
            image=t.image,
            command=["sh", "-c"],
            # The pipeline's JSON result names the registered version; Argo passes it on as an output parameter.
            args=[
                'shipyard pipeline run "$0" --json > /tmp/result.json && '
                'python -c \'import json; print(json.load(open("/tmp/result.json"))["version"]["version"])\' '
                "> /tmp/version",
                model,
            ],
            env=_env(),
            outputs=Outputs(parameters=[Parameter(name="version", value_from=ValueFrom(path="/tmp/version")).as_output()]),
        )
        gate = Container(
            name="staging-gate",
            image=t.image,
            command=["shipyard"],
            args=["gate", "check", model, version, "--to", "staging", "--json"],
            env=_env(),
        )
        promote = Container(
            name="promote-to-staging",
            image=t.image,
            command=["shipyard"],
            args=["promote", model, version, "--to", "staging", "--reason", "passed the staging gate in Argo Workflows"],
            env=_env(),
        )
        with DAG(name="governed-pipeline"):
            # Called inside the DAG, each template becomes a task; `>>` orders them.
            run() >> gate() >> promote()  # type: ignore[operator]
    result: dict[str, Any] = template.to_dict()
    return result


def monitor_cron_workflow(t: PipelineTarget) -> dict[str, Any]:
    from hera.workflows import Container, CronWorkflow

    with CronWorkflow(
        name=dns_name(f"{t.model}-monitor"),
        namespace=t.namespace,
        schedules=[t.monitor_schedule],
        concurrency_policy="Forbid",
        entrypoint="monitor",
        service_account_name=SERVICE_ACCOUNT,
        labels={"app.kubernetes.io/part-of": dns_name(t.project)},
    ) as cron:
        Container(name="monitor", image=t.image, command=["shipyard"], args=["monitor", "run", t.model], env=_env())
    result: dict[str, Any] = cron.to_dict()
    return result


def monitor_cron_job(t: PipelineTarget) -> dict[str, Any]:
    """The same monitor run for clusters without Argo: a batch/v1 CronJob."""

    def secret(name: str, secret: str, key: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": True}}}

    env = [
        {"name": "OMP_NUM_THREADS", "value": "1"},
        {"name": "SHIPYARD_PROJECT", "value": "/app"},
        secret("SHIPYARD_URL", SERVER_SECRET, "url"),
        secret("SHIPYARD_TOKEN", SERVER_SECRET, "token"),
        secret("SHIPYARD_STORE_URL", STORE_SECRET, "url"),
    ]
    container = {"name": "monitor", "image": t.image, "command": ["shipyard"], "args": ["monitor", "run", t.model], "env": env}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": dns_name(f"{t.model}-monitor"), "namespace": t.namespace},
        "spec": {
            "schedule": t.monitor_schedule,
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 1,
                    "template": {
                        "spec": {
                            "serviceAccountName": SERVICE_ACCOUNT,
                            "restartPolicy": "Never",
                            "containers": [container],
                        }
                    },
                }
            },
        },
    }


def argo_files(t: PipelineTarget) -> dict[str, Any]:
    return {
        f"{t.model}-pipeline-workflowtemplate.yaml": workflow_template(t),
        f"{t.model}-monitor-cronworkflow.yaml": monitor_cron_workflow(t),
        f"{t.model}-monitor-cronjob.yaml": monitor_cron_job(t),
    }
