"""`shipyard export argo`: the pipeline's WorkflowTemplate and the monitor's CronWorkflow, checked through hera's
models; the CronJob alternative with kubernetes-validate."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from hera.workflows import models
from typer.testing import CliRunner

from shipyard.cli import app


def test_pipeline_and_monitor_objects_validate(trained_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "argo"
    result = CliRunner().invoke(app, ["--project", str(trained_project), "export", "argo", "churn", "--out", str(out)])
    assert result.exit_code == 0, result.output
    template = yaml.safe_load((out / "churn-pipeline-workflowtemplate.yaml").read_text())
    cron = yaml.safe_load((out / "churn-monitor-cronworkflow.yaml").read_text())
    job = yaml.safe_load((out / "churn-monitor-cronjob.yaml").read_text())

    parsed = models.WorkflowTemplate.model_validate(template)
    assert parsed.model_dump(by_alias=True, exclude_none=True) == template  # nothing unknown, nothing lost
    parsed_cron = models.CronWorkflow.model_validate(cron)
    assert parsed_cron.model_dump(by_alias=True, exclude_none=True) == cron

    templates = {t.name: t for t in parsed.spec.templates or []}
    dag = templates["governed-pipeline"].dag
    assert dag is not None
    order = {task.name: task.depends for task in dag.tasks}
    assert order == {
        "train-evaluate-register": None,
        "staging-gate": "train-evaluate-register",
        "promote-to-staging": "staging-gate",
    }
    train = templates["train-evaluate-register"].container
    assert train is not None and "shipyard pipeline run" in (train.args or [""])[0]
    gate = templates["staging-gate"].container
    assert gate is not None and gate.args is not None and gate.args[:2] == ["gate", "check"] and "staging" in gate.args
    assert gate.image == "churn-demo:latest"  # the packaged project
    monitor = parsed_cron.spec.workflow_spec.templates[0].container  # type: ignore[index]
    assert monitor is not None and monitor.args == ["monitor", "run", "churn"]
    assert parsed_cron.spec.schedules == ["*/30 * * * *"]

    kubernetes_validate.validate(job, "1.30.0", strict=True)
    assert job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["monitor", "run", "churn"]


def test_hera_models_refuse_a_wrong_object() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        models.WorkflowTemplate.model_validate({"metadata": {"name": "x"}, "spec": {"templates": [{"dag": {"tasks": "x"}}]}})


def test_unknown_model_writes_nothing(trained_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "argo"
    result = CliRunner().invoke(app, ["--project", str(trained_project), "export", "argo", "nosuch", "--out", str(out)])
    assert result.exit_code != 0 and "nosuch" in result.stderr and not out.exists()
