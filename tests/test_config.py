from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import load_settings
from shipyard.domain.errors import InvalidSpec, NotFound


def write(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "shipyard.yaml").write_text(text)
    return root


MINIMAL = """
project: p
models:
  churn:
    owner: me
    data: {path: data.parquet, target: y}
"""


def test_defaults_live_under_the_project(tmp_path: Path) -> None:
    root = write(tmp_path / "p", MINIMAL)
    settings = load_settings(root, env={"SHIPYARD_ACTOR": "ann"})
    assert settings.store_url == f"sqlite:///{root / '.shipyard' / 'shipyard.db'}"
    assert settings.tracking_uri == f"sqlite:///{root / '.shipyard' / 'mlflow.db'}"
    assert settings.registry_uri == settings.tracking_uri
    assert settings.actor == "ann"
    assert settings.experiment == "p"
    spec = settings.model("churn")
    assert spec.train == "train.py:train" and spec.data.holdout_fraction == 0.2


def test_actor_precedence(tmp_path: Path) -> None:
    root = write(tmp_path / "p", MINIMAL)
    assert load_settings(root, actor="flag", env={"SHIPYARD_ACTOR": "env"}).actor == "flag"
    assert load_settings(root, env={"SHIPYARD_ACTOR": "env"}).actor == "env"
    import getpass

    assert load_settings(root, env={}).actor == getpass.getuser()


def test_environment_overrides_file(tmp_path: Path) -> None:
    root = write(tmp_path / "p", MINIMAL + "store:\n  url: sqlite:///rel/store.db\n")
    assert load_settings(root, env={}).store_url == f"sqlite:///{root / 'rel' / 'store.db'}"
    env = {"SHIPYARD_STORE_URL": "postgresql+psycopg://u@h/db", "SHIPYARD_TRACKING_URI": "http://mlflow:5000"}
    settings = load_settings(root, env=env)
    assert settings.store_url == "postgresql+psycopg://u@h/db"
    assert settings.tracking_uri == settings.registry_uri == "http://mlflow:5000"


def test_project_is_found_from_a_subfolder(tmp_path: Path) -> None:
    root = write(tmp_path / "p", MINIMAL)
    (root / "a" / "b").mkdir(parents=True)
    assert load_settings(root / "a" / "b", env={}).root == root


def test_no_project_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"no shipyard\.yaml") as caught:
        load_settings(tmp_path, env={})
    assert "shipyard init" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("project: [unclosed", "line 1"),
        ("- just\n- a list\n", "expected a mapping"),
        ("models: {}\n", "project: required key is missing"),
        (MINIMAL + "colour: blue\n", "colour: unknown key"),
        (
            MINIMAL.replace("data: {path: data.parquet, target: y}", "data: {path: data.parquet}"),
            "models.churn.data.target: required key is missing",
        ),
        (MINIMAL.replace("target: y}", "target: y, holdout_fraction: 1.5}"), "models.churn.data.holdout_fraction"),
        (MINIMAL + "    train: train\n", "models.churn.train: Value error, expected FILE.py:FUNCTION"),
        (MINIMAL + "    risk_tier: extreme\n", "models.churn.risk_tier"),
        (MINIMAL + "    primary_metric: mse\n", "models.churn.primary_metric"),
        (MINIMAL + "    task: binary\n    primary_metric: rmse\n", "metric 'rmse' does not apply to a binary model"),
        (MINIMAL + "    task: forecast\n", "models.churn.task"),
        (
            MINIMAL + "    monitoring: {alerts: [{signal: vibes, threshold: 1}]}\n",
            "models.churn.monitoring.alerts.0.signal",
        ),
        (
            MINIMAL + "    monitoring: {alerts: [{signal: error_rate, threshold: 0.1, action: webhook}]}\n",
            "a webhook action needs `url`",
        ),
        (MINIMAL + "    monitoring: {window: -5}\n", "models.churn.monitoring.window"),
        (MINIMAL + "lineage: {endpoint: x}\n", "lineage.endpoint: unknown key"),
        (MINIMAL + "retention: {predictions: {delete_after: soon}}\n", "retention.predictions.delete_after"),
        (MINIMAL + "retention: {predictions: {drop_inputs_after: 0}}\n", "expected a positive duration"),
        (
            MINIMAL + "retention: {predictions: {drop_inputs_after: 30d, delete_after: 7d}}\n",
            "delete_after is shorter than drop_inputs_after",
        ),
        (
            MINIMAL + "retention: {artifacts: [{name: everything, stages: [archived, production], after: 1d}]}\n",
            "retention rule 'everything' would move the files of production versions",
        ),
        (
            MINIMAL + "retention: {artifacts: [{name: purge, stages: [staging], after: 1d, action: delete}]}\n",
            "retention rule 'purge' would delete the files of staging versions",
        ),
        (MINIMAL + "retention: {artifacts: [{name: a, after: 1d}, {name: a, after: 2d}]}\n", "a appear more than once"),
    ],
)
def test_malformed_config_names_file_key_and_expectation(tmp_path: Path, text: str, expected: str) -> None:
    root = write(tmp_path / "p", text)
    with pytest.raises(InvalidSpec) as caught:
        load_settings(root, env={})
    message = caught.value.message
    assert str(root / "shipyard.yaml") in message
    assert expected in message


def test_unknown_model_lists_declared_ones(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path / "p", MINIMAL), env={})
    with pytest.raises(NotFound) as caught:
        settings.model("fraud")
    assert caught.value.hint == "Declared models: churn."


# -- principals: absent means one-person mode; present must declare someone -------------


def test_no_principals_key_is_one_person_mode(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path / "p", MINIMAL), env={})
    assert settings.spec.principals is None


@pytest.mark.parametrize("value", ["", " null", " {}", " ~"])
def test_present_but_empty_principals_are_refused(tmp_path: Path, value: str) -> None:
    """An empty principals section once switched role checks off, so an undeclared user could archive the champion."""
    root = write(tmp_path / "p", MINIMAL + f"principals:{value}\n")
    with pytest.raises(InvalidSpec) as caught:
        load_settings(root, env={})
    message = caught.value.message
    assert str(root / "shipyard.yaml") in message
    assert "principals: " in message and "present but empty" in message
    assert "remove the principals key" in message  # one way out: one-person mode
    assert "list each principal with its roles" in message  # the other: declare them


@pytest.mark.parametrize("value", ["[]", "null", ""])
def test_a_principal_without_roles_is_refused(tmp_path: Path, value: str) -> None:
    root = write(tmp_path / "p", MINIMAL + f"principals:\n  ann: [approver]\n  dana: {value}\n")
    with pytest.raises(InvalidSpec) as caught:
        load_settings(root, env={})
    message = caught.value.message
    assert "principals.dana: " in message and "no roles" in message
    assert "[viewer]" in message  # what to write for read-only access


def test_declared_principals_load(tmp_path: Path) -> None:
    root = write(tmp_path / "p", MINIMAL + "principals:\n  ann: [approver, deployer]\n  val: [viewer]\n")
    assert load_settings(root, env={}).spec.principals == {"ann": ["approver", "deployer"], "val": ["viewer"]}
