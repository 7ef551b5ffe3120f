"""`shipyard token …` and `shipyard principals …`: JSON for scripts, one clear message for each refusal."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from conftest import PRINCIPALS, declare_principals
from shipyard.cli import app

WIDE = {"COLUMNS": "200"}


def cli(root: Path, actor: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["--project", str(root), "--actor", actor, *args], env=WIDE)


def ok_json(root: Path, actor: str, *args: str) -> Any:
    result = cli(root, actor, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_tokens_are_created_listed_and_revoked(project: Path) -> None:
    created = ok_json(project, "rui", "token", "create", "dashboard", "--scope", "predict")
    assert created["secret"].startswith("shp_") and (created["name"], created["scope"], created["principal"]) == (
        "dashboard",
        "predict",
        "rui",
    )
    laptop = ok_json(project, "rui", "token", "create", "laptop", "--expires", "90d")
    until = datetime.fromisoformat(laptop["expires_at"]) - datetime.fromisoformat(laptop["created_at"])
    assert abs(until - timedelta(days=90)) < timedelta(seconds=5) and laptop["scope"] == "api"
    listed = ok_json(project, "rui", "token", "list")["tokens"]
    assert [t["name"] for t in listed] == ["dashboard", "laptop"]
    assert all("secret" not in t for t in listed) and created["secret"] not in json.dumps(listed)
    human = cli(project, "rui", "token", "list")
    assert human.exit_code == 0 and "dashboard" in human.stdout and "live" in human.stdout
    revoked = cli(project, "rui", "token", "revoke", "dashboard")
    assert revoked.exit_code == 0 and "Token dashboard of rui revoked." in revoked.stdout
    assert "revoked by rui" in cli(project, "rui", "token", "list").stdout
    shown = cli(project, "rui", "token", "create", "shown")
    assert shown.exit_code == 0 and "shp_" in shown.stdout and "shown only now" in shown.stdout


def test_token_refusals_are_one_message_each(project: Path) -> None:
    bad = cli(project, "rui", "token", "create", "x", "--expires", "soon")
    assert bad.exit_code == 2 and "'soon' is not a duration" in bad.output
    other = cli(project, "bob", "token", "create", "x", "--principal", "rui")
    assert other.exit_code == 5 and "bob may not create a token for rui" in other.stderr
    assert "Traceback" not in other.output
    gone = cli(project, "rui", "token", "revoke", "nope")
    assert gone.exit_code == 3 and "no token named 'nope'" in gone.stderr


def test_principals_in_team_mode(project: Path) -> None:
    config = project / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["server"] = {"url": "http://127.0.0.1:8700"}
    config.write_text(yaml.safe_dump(data, sort_keys=False))

    listed = ok_json(project, "ada", "principals", "list")
    assert {p["name"] for p in listed["principals"]} == {*PRINCIPALS, "shipyard.monitor"}
    assert listed["principals_drift"] == []
    # Changes go through the server (tests/server); here, with the store's files at hand, they are refused.
    local = cli(project, "ada", "principals", "set", "carl", "--role", "viewer")
    assert local.exit_code == 5 and "team mode" in local.stderr and "SHIPYARD_URL=http://127.0.0.1:8700" in local.stderr

    declare_principals(project, {**PRINCIPALS, "bob": ["admin"]})
    drifted = cli(project, "ada", "principals", "list")
    assert drifted.exit_code == 0
    assert "bob: shipyard.yaml gives [admin]; the server holds [scientist]" in drifted.stderr
    assert "shipyard principals set NAME --role ROLE" in drifted.stderr


def test_principals_in_embedded_mode_are_shipyard_yamls(project: Path) -> None:
    listed = ok_json(project, "ada", "principals", "list")
    assert {p["name"] for p in listed["principals"]} == set(PRINCIPALS)
    refused = cli(project, "ada", "principals", "set", "carl", "--role", "viewer")
    assert refused.exit_code == 2 and "shipyard.yaml" in refused.stderr
