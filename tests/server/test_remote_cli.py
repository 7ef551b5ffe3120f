"""The command line as the server's client: the same JSON and exit codes as the same command run locally."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from server.conftest import Team, start_team
from shipyard.cli import app

VOLATILE = {"at", "evaluated_at", "registered_at", "updated_at", "created_at", "started_at", "step_started_at", "finished_at",
            "since", "until", "hash", "prev_hash", "secret", "last_used_at", "seconds", "opened_at", "resolved_at",
            "window_start", "window_end", "id", "run_id_file", "evidence_sha256", "file", "path"}  # fmt: skip


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def stable(document: Any) -> Any:
    """A JSON document without the fields that differ between two runs of the same change (times, hashes, ids)."""
    if isinstance(document, dict):
        # A resources rule observes the footprint, measured afresh by each run: its figures differ by noise.
        measured = document.get("kind") == "resources"
        return {k: stable(v) for k, v in document.items() if k not in VOLATILE and not (measured and k == "observed")}
    if isinstance(document, list):
        return [stable(v) for v in document]
    return document


def parsed(result: Any) -> Any:
    try:
        return json.loads(result.stdout)
    except ValueError:
        return result.stdout


# Commands that change nothing: the same store, read locally and through the server, must print the same.
READS: list[tuple[str, ...]] = [
    ("models", "list", "--json"),
    ("models", "show", "churn", "1", "--json"),
    ("models", "show", "churn", "--json"),
    ("models", "show", "nope", "--json"),
    ("evidence", "show", "churn", "1"),
    ("evidence", "show", "churn", "9"),
    ("gate", "check", "churn", "1", "--to", "staging", "--json"),
    ("gate", "check", "churn", "2", "--to", "production", "--json"),
    ("rollout", "status", "churn", "--json"),
    ("monitor", "alerts", "--json"),
    ("audit", "log", "--json"),
    ("audit", "log", "--model", "churn", "--json"),
    ("audit", "verify", "--json"),
    ("kpis", "--json"),
    ("trace", "no-such-request", "--json"),
    ("audit", "export"),
    ("audit", "public-key"),
    ("audit", "checkpoints", "export"),
    ("token", "list", "--json"),
    ("principals", "list", "--json"),
    ("hold", "list", "--json"),
    ("retention", "plan", "--json"),
    ("costs", "--json"),
]


@pytest.mark.parametrize("command", READS, ids=[" ".join(c) for c in READS])
def test_a_read_prints_the_same_through_the_server(team: Team, command: tuple[str, ...]) -> None:
    local = run("--project", str(team.root), "--actor", "rui", *command)
    remote = run(*command, env=team.cli_env("rui"))
    assert remote.exit_code == local.exit_code, (local.output, remote.output)
    assert stable(parsed(remote)) == stable(parsed(local))
    assert "Traceback" not in remote.output


# A sequence of changes, run on two copies of one project: locally (embedded) and through a server.
CHANGES: list[tuple[str, tuple[str, ...]]] = [
    ("bob", ("evidence", "collect", "churn", "1")),
    ("rui", ("promote", "churn", "1", "--to", "staging", "--reason", "ready", "--json")),
    ("rui", ("promote", "churn", "1", "--to", "production", "--reason", "no approval yet", "--json")),
    ("alice", ("approve", "churn", "1", "--to", "production", "--comment", "my own", "--json")),
    ("vera", ("approve", "churn", "1", "--to", "production", "--comment", "fine", "--json")),
    ("val", ("promote", "churn", "2", "--to", "staging", "--reason", "viewer tries", "--json")),
    ("rui", ("promote", "churn", "1", "--to", "production", "--reason", "approved", "--json")),
    ("walt", ("reject", "churn", "2", "--to", "production", "--comment", "no", "--json")),
    ("rui", ("rollout", "start", "churn", "2", "--json")),
    ("rui", ("rollout", "pause", "churn", "--json")),
    ("rui", ("rollout", "resume", "churn", "--json")),
    ("rui", ("rollout", "status", "churn", "--json")),
    ("bob", ("labels", "ingest", "{labels}", "--model", "churn", "--json")),
    ("rui", ("rollout", "abort", "churn", "--reason", "enough", "--json")),
    ("rui", ("rollout", "reconcile", "--json")),
    ("rui", ("models", "reconcile", "--json")),
    ("rui", ("monitor", "run", "churn", "--no-act", "--json")),
    ("bob", ("register", "churn", "--run-id", "0" * 32)),
    ("rui", ("promote", "churn", "2", "--to", "rejected", "--reason", "superseded", "--json")),
    ("rui", ("gate", "check", "churn", "2", "--to", "production", "--json")),
    ("rui", ("features", "materialize", "churn", "--json")),  # refused alike: churn is not Feast-backed
    ("rui", ("hold", "add", "churn", "1", "--reason", "not an admin", "--json")),
    ("ada", ("hold", "add", "churn", "1", "--reason", "case 114", "--json")),
    ("ada", ("hold", "add", "churn", "1", "--reason", "twice", "--json")),
    ("rui", ("retention", "apply", "--json")),
    ("ada", ("hold", "remove", "churn", "1", "--reason", "case closed", "--json")),
]


def test_changes_print_the_same_through_the_server(trained_template: Path, tmp_path: Path) -> None:
    local_root = tmp_path / "local"
    shutil.copytree(trained_template, local_root)
    team_root = tmp_path / "team"
    shutil.copytree(trained_template, team_root)
    team = start_team(team_root, env={})
    labels = tmp_path / "labels.csv"
    labels.write_text("customer_id,churned\n1,0\n2,1\n")
    try:
        for who, template in CHANGES:
            command = tuple(part.format(labels=labels) for part in template)
            local = run("--project", str(local_root), "--actor", who, *command)
            remote = run(*command, env=team.cli_env(who))
            step = f"{who}: shipyard {' '.join(command)}\nlocal: {local.output}\nremote: {remote.output}"
            assert remote.exit_code == local.exit_code, step
            assert stable(parsed(remote)) == stable(parsed(local)), step
            assert "Traceback" not in remote.output, step
    finally:
        team.server.stop()
        team.service.close()


def test_actor_cannot_be_claimed_through_the_server(team: Team) -> None:
    flagged = run("--actor", "ada", "models", "list", env=team.cli_env("val"))
    from_env = run("models", "list", env={**team.cli_env("val"), "SHIPYARD_ACTOR": "ada"})
    for result in (flagged, from_env):
        assert result.exit_code == 2 and "principal of the token" in result.stderr
    assert "--actor" in flagged.stderr and "SHIPYARD_ACTOR" in from_env.stderr


def test_a_local_change_to_a_team_project_names_the_server(team: Team) -> None:
    refused = run("--project", str(team.root), "--actor", "rui", "promote", "churn", "1", "--to", "staging", "--reason", "r")
    assert refused.exit_code == 5 and "team mode" in refused.stderr and team.url in refused.stderr
    assert "SHIPYARD_URL" in refused.stderr


def test_separation_of_duties_through_the_api_and_the_remote_cli(team: Team) -> None:
    with team.client("ada") as ada:  # alice registered both versions; now she may also approve
        ada.put("/api/v1/principals/alice", json={"roles": ["scientist", "approver"]}).raise_for_status()
    team.token_for("alice")
    with team.client("alice") as alice:
        refused = alice.post("/api/v1/models/churn/versions/1/approvals", json={"stage": "production"})
    assert refused.status_code == 403 and "separation of duties" in refused.json()["message"]
    cli = run("approve", "churn", "2", "--to", "production", env=team.cli_env("alice"))
    assert cli.exit_code == 5 and "separation of duties" in cli.stderr
    denied = [e for e in team.service.audit_log() if e.action == "approval.denied"]
    assert [e.actor for e in denied[-2:]] == ["alice", "alice"]


def test_a_revoked_token_is_refused_at_once(team: Team) -> None:
    _, secret = team.service.as_actor("ada").create_token("short-lived", principal="val")
    with team.client("ada") as ada:
        import httpx

        with httpx.Client(base_url=team.url, headers={"authorization": f"Bearer {secret}"}) as holder:
            assert holder.get("/api/v1/whoami").status_code == 200
            ada.delete("/api/v1/tokens/short-lived").raise_for_status()
            after = holder.get("/api/v1/whoami")
    assert after.status_code == 401 and "revoked" in after.json()["message"]


def test_pipeline_run_trains_here_and_the_server_collects_the_evidence(team: Team) -> None:
    done = run("--project", str(team.root), "pipeline", "run", "churn", "--json", env=team.cli_env("bob"))
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["version"]["version"] == 3 and result["version"]["registered_by"] == "bob"
    registered = [e for e in team.service.audit_log() if e.action == "version.registered"][-1]
    assert (registered.actor, registered.subject) == ("bob", "churn/3")
    assert registered.details["how"] == "adopted"  # the server loaded the run's model and measured it itself
    evidence = team.service.evidence("churn", 3)
    assert evidence is not None and evidence["metrics"]["holdout"]["roc_auc"] == result["metrics"]["roc_auc"]
    refused = run("--project", str(team.root), "pipeline", "run", "churn", env=team.cli_env("val"))
    assert refused.exit_code == 5 and "val may not register a version of churn" in refused.stderr


# Commands that act on this machine alone, and the team's own (tested through the server below and in
# tests/cli/test_cli_identity.py): with every other command in READS or CHANGES, no command is left out.
# Exports read the project's files and store where the project is (a client is told so).
LOCAL_ONLY = {"init", "demo", "serve", "worker", "server", "login", "ui", "db upgrade", "pipeline run"}
LOCAL_ONLY |= {"export k8s", "export kserve", "export argo", "package"}
TEAM_ONLY = {"token create", "token revoke", "principals set", "principals remove", "audit rotate-key"}


def command_paths() -> set[str]:
    import typer.main

    def walk(group: Any, prefix: str) -> set[str]:
        found: set[str] = set()
        for name, command in group.commands.items():
            path = f"{prefix} {name}".strip()
            found |= walk(command, path) if hasattr(command, "commands") else {path}
        return found

    return walk(typer.main.get_command(app), "")


def test_every_command_is_compared_or_named_local() -> None:
    paths = command_paths()

    def path_of(command: tuple[str, ...]) -> str:
        words = [w for w in command if not w.startswith("-")]
        return next(" ".join(words[:n]) for n in (3, 2, 1) if " ".join(words[:n]) in paths)

    compared = {path_of(c) for c in READS} | {path_of(c) for _, c in CHANGES}
    missing = command_paths() - compared - LOCAL_ONLY - TEAM_ONLY
    assert not missing, f"commands neither compared through the server nor named local: {sorted(missing)}"


def test_team_commands_through_the_server(team: Team) -> None:
    env = team.cli_env("ada")
    created = run("token", "create", "ci", "--principal", "bob", "--expires", "1d", "--json", env=env)
    assert created.exit_code == 0, created.output
    token = json.loads(created.stdout)
    assert token["principal"] == "bob" and token["secret"].startswith("shp_") and token["expires_at"] is not None
    assert run("principals", "set", "nina", "--role", "viewer", env=env).exit_code == 0
    assert "nina" in run("principals", "list", env=env).stdout
    assert run("principals", "remove", "nina", env=env).exit_code == 0
    assert run("token", "revoke", "ci", env=env).exit_code == 0
    team.service.checkpoint_audit(force=True)  # the server's timer would: its first checkpoint makes the key
    before = team.service.audit_public_key()
    rotated = run("audit", "rotate-key", env=env)
    assert rotated.exit_code == 0, rotated.output
    assert team.service.audit_public_key() != before and len(team.service.audit_keys()) == 2
    viewer = run("principals", "set", "nina", "--role", "admin", env=team.cli_env("val"))
    assert viewer.exit_code == 5 and "admin" in viewer.stderr


def test_login_keeps_the_token_for_the_user_alone(team: Team, tmp_path: Path) -> None:
    config = tmp_path / "config"
    env = {"XDG_CONFIG_HOME": str(config)}
    refused = CliRunner().invoke(app, ["login", team.url, "--token-stdin"], input="shp_wrong\n", env=env)
    assert refused.exit_code == 7 and "malformed token" in refused.stderr
    assert not (config / "shipyard" / "credentials.json").exists()
    done = CliRunner().invoke(app, ["login", team.url, "--token-stdin"], input=team.tokens["vera"] + "\n", env=env)
    assert done.exit_code == 0 and "as vera (approver)" in done.stdout, done.output
    stored = config / "shipyard" / "credentials.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    listing = run("models", "list", "--json", env={**env, "SHIPYARD_URL": team.url, "SHIPYARD_TOKEN": ""})
    assert listing.exit_code == 0 and json.loads(listing.stdout)["models"][0]["name"] == "churn"


def test_a_local_only_command_through_the_server_says_so(team: Team) -> None:
    served = run("serve", env=team.cli_env("rui"))
    assert served.exit_code == 2 and "not sent to a server" in served.stderr and "Unset SHIPYARD_URL" in served.stderr
