"""The command line: JSON for scripts, one clear message for every user error."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factories import copy_versions
from shipyard.cli import app
from shipyard.service import Shipyard
from shipyard.store.database import head_revision

SHIPYARD = str(Path(sys.executable).with_name("shipyard"))


def run(*args: str, env: dict[str, str] | None = None) -> object:
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    return result


def ok_json(*args: str, env: dict[str, str] | None = None) -> object:
    result = run(*args, "--json", env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_init_scaffolds_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "new"
    result = run("init", str(target))
    assert result.exit_code == 0, result.output
    for name in ("shipyard.yaml", "train.py", "policies/churn.yaml", "data/churn.parquet", ".gitignore"):
        assert (target / name).is_file(), name
    again = run("init", str(target))
    assert again.exit_code == 4
    assert "already exists and is not empty" in again.stderr and "--force" in again.stderr
    assert "Traceback" not in again.output


def test_json_documents(trained_project: Path) -> None:
    p = ["--project", str(trained_project), "--actor", "rui"]
    listing = ok_json(*p, "models", "list")
    [model] = listing["models"]
    assert model["name"] == "churn" and [v["stage"] for v in model["versions"]] == ["candidate", "candidate"]
    assert set(model["versions"][0]["metrics"]) == {"roc_auc", "accuracy", "f1", "log_loss", "brier"}

    promoted = ok_json(*p, "promote", "churn", "1", "--to", "staging", "--reason", "reviewed")
    assert promoted["version"]["stage"] == "staging" and promoted["from_stage"] == "candidate" and promoted["mirrored"]

    shown = ok_json(*p, "models", "show", "churn", "1")
    assert shown["stage"] == "staging" and shown["aliases"] == ["staging"]
    assert shown["registered_by"] == "alice" and len(shown["data_fingerprint"]) == 64
    assert [h["to_stage"] for h in shown["history"]] == ["candidate", "staging"]
    latest = ok_json(*p, "models", "show", "churn")
    assert latest["version"] == 2

    log = ok_json(*p, "audit", "log", "--model", "churn")
    assert [e["action"] for e in log["events"][-2:]] == ["gate.evaluated", "version.stage_changed"]
    assert log["events"][-1]["actor"] == "rui" and log["events"][-1]["details"]["reason"] == "reviewed"
    everything = ok_json(*p, "audit", "log")["events"]
    verified = ok_json(*p, "audit", "verify")
    assert {k: verified[k] for k in ("ok", "events", "first_bad_seq", "problem")} == {
        "ok": True,
        "events": len(everything),
        "first_bad_seq": None,
        "problem": None,
    }
    assert verified["unexplained"] == [] and verified["replayed"] is True and verified["key_source"] is None


def test_human_output(trained_project: Path) -> None:
    p = ["--project", str(trained_project), "--actor", "alice"]
    listing = run(*p, "models", "list")
    assert listing.exit_code == 0 and "candidate" in listing.stdout
    shown = run(*p, "models", "show", "churn", "2")
    assert shown.exit_code == 0 and "holdout roc_auc" in shown.stdout
    promoted = run(*p, "promote", "churn", "2", "--to", "staging", "--reason", "ok")
    assert promoted.exit_code == 0 and "candidate → staging" in promoted.stdout
    assert "Gate staging for churn/2: passed" in " ".join(promoted.stdout.split())
    verified = run(*p, "audit", "verify")
    assert verified.exit_code == 0 and "audit chain verified" in verified.stdout


def test_actor_from_environment(trained_project: Path) -> None:
    result = run(
        "--project",
        str(trained_project),
        "promote",
        "churn",
        "1",
        "--to",
        "rejected",
        "--reason",
        "worse",
        env={"SHIPYARD_ACTOR": "zoe"},
    )
    assert result.exit_code == 0, result.output
    log = ok_json("--project", str(trained_project), "audit", "log")
    assert log["events"][-1]["actor"] == "zoe"


def test_audit_export_jsonl(trained_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    result = run("--project", str(trained_project), "audit", "export", "--format", "jsonl", "--output", str(out))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1)) and len(lines) >= 5
    assert {"seq", "at", "actor", "action", "subject", "details", "prev_hash", "hash"} <= set(lines[0])
    to_stdout = run("--project", str(trained_project), "audit", "export")
    assert to_stdout.stdout.count("\n") == len(lines)
    bad = run("--project", str(trained_project), "audit", "export", "--format", "xml")
    assert bad.exit_code == 2 and "expected jsonl" in bad.stderr


def test_edited_audit_row_fails_verify_and_names_it(trained_project: Path) -> None:
    with sqlite3.connect(trained_project / ".shipyard" / "shipyard.db") as conn:
        conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    result = run("--project", str(trained_project), "audit", "verify")
    assert result.exit_code == 1
    assert "broken at event 2" in result.stderr and "edited" in result.stderr
    as_json = run("--project", str(trained_project), "audit", "verify", "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["first_bad_seq"] == 2


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["models", "show", "fraud"], 3, "unknown model 'fraud'"),
        (["models", "show", "churn", "7"], 3, "has no version 7"),
        (["promote", "churn", "1", "--to", "production", "--reason", "x"], 4, "cannot move from candidate to production"),
        (["promote", "churn", "1", "--to", "heaven", "--reason", "x"], 2, "unknown stage 'heaven'"),
        (["pipeline", "run", "fraud"], 3, "model 'fraud' is not declared"),
        (["audit", "log", "--model", "fraud"], 3, "unknown model 'fraud'"),
    ],
)
def test_user_errors_are_one_message(trained_project: Path, args: list[str], code: int, expected: str) -> None:
    result = run("--project", str(trained_project), "--actor", "alice", *args)
    assert result.exit_code == code, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output


def test_malformed_config_is_named(trained_project: Path) -> None:
    (trained_project / "shipyard.yaml").write_text("project: p\nmodels:\n  churn:\n    owner: x\n")
    result = run("--project", str(trained_project), "models", "list")
    assert result.exit_code == 2
    assert "shipyard.yaml" in result.stderr and "models.churn.data: required key is missing" in result.stderr


def test_unreachable_store_is_named(trained_project: Path) -> None:
    env = {"SHIPYARD_STORE_URL": "postgresql+psycopg://shipyard:hunter2@127.0.0.1:1/nowhere"}
    result = run("--project", str(trained_project), "models", "list", env=env)
    assert result.exit_code == 6
    assert "127.0.0.1:1/nowhere" in result.stderr and "hunter2" not in result.stderr
    assert "Traceback" not in result.output


def test_real_process_renders_errors_without_traceback(tmp_path: Path) -> None:
    done = subprocess.run([SHIPYARD, "--project", str(tmp_path), "models", "list"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert "no shipyard.yaml" in done.stderr and "shipyard init" in done.stderr
    assert "Traceback" not in done.stderr


def test_db_upgrade_on_a_shared_store(trained_project: Path, postgres_url: str) -> None:
    env = {"SHIPYARD_STORE_URL": postgres_url}
    refused = run("--project", str(trained_project), "models", "list", env=env)
    assert refused.exit_code == 6 and "shipyard db upgrade" in refused.stderr
    upgraded = run("--project", str(trained_project), "--actor", "rui", "db", "upgrade", env=env)
    assert upgraded.exit_code == 0 and f"schema revision {head_revision()}" in upgraded.stdout
    listing = run("--project", str(trained_project), "models", "list", "--json", env=env)
    assert listing.exit_code == 0 and json.loads(listing.stdout) == {"models": [], "mirror_backlog": []}


def test_two_cli_processes_race_to_production_on_postgresql(trained_project: Path, postgres_url: str) -> None:
    """Two real `shipyard promote` processes at once: one champion, a verified chain, MLflow agreeing.

    Both versions were approved on evidence that compared them with no champion. Whichever commits second
    is judged again against the new champion; its evidence changes, so the approval it had lapses and it
    is blocked (it must be approved on the new evidence) instead of replacing the first.
    """
    from shipyard.service import Shipyard

    env = {**os.environ, "SHIPYARD_STORE_URL": postgres_url}
    with Shipyard.open(trained_project, actor="alice", env={"SHIPYARD_STORE_URL": postgres_url}) as service:
        from shipyard.store.repository import Store

        Store.open(postgres_url, auto_migrate=True).close()
        local = Store.open(f"sqlite:///{trained_project / '.shipyard' / 'shipyard.db'}")
        for v in copy_versions(local, service.store):  # the trained versions, now tracked by the shared store
            service.promote("churn", v.version, "staging", reason="ready")
        local.close()
        with Shipyard.open(trained_project, actor="vera", env={"SHIPYARD_STORE_URL": postgres_url}) as approver:
            for v in (1, 2):
                approver.approve("churn", v, "production", comment="ok")

        procs = [
            subprocess.Popen(
                [
                    SHIPYARD,
                    "--project",
                    str(trained_project),
                    "--actor",
                    actor,
                    "promote",
                    "churn",
                    str(v),
                    "--to",
                    "production",
                    "--reason",
                    "race",
                    "--json",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for v, actor in ((1, "rui"), (2, "zoe"))
        ]
        outputs = [p.communicate(timeout=120) for p in procs]
        assert sorted(p.returncode for p in procs) == [0, 1], outputs
        (blocked,) = [err for p, (_out, err) in zip(procs, outputs, strict=True) if p.returncode == 1]
        assert "lapsed" in blocked and "approvals (approver)" in blocked
        stages = {v.version: v.stage.value for v in service.store.list_versions("churn")}
        assert sorted(stages.values()) == ["production", "staging"]
        champion = next(v for v, s in stages.items() if s == "production")
        assert service.audit_verify().ok
        service.reconcile("churn")
        waiting = next(v for v, s in stages.items() if s == "staging")
        assert service.registry.aliases("churn") == {"production": champion, "champion": champion, "staging": waiting}


READS = {
    "models list": ["models", "list"],
    "models show": ["models", "show", "churn", "1"],
    "evidence show": ["evidence", "show", "churn", "1"],
    "gate check": ["gate", "check", "churn", "2", "--to", "production"],
    "audit log": ["audit", "log"],
    "audit verify": ["audit", "verify"],
    "kpis": ["kpis"],
}


def heavy_modules_loaded(project: Path, args: list[str]) -> tuple[int, set[str]]:
    """Run one command in a fresh interpreter; its exit code and the heavy packages it imported."""
    code = (
        "import sys, json\n"
        "from typer.testing import CliRunner\n"
        "from shipyard.cli import app\n"
        f"result = CliRunner().invoke(app, {['--project', str(project), '--actor', 'val', *args]!r})\n"
        "print(json.dumps([result.exit_code, sorted({m.split('.')[0] for m in sys.modules})]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    exit_code, modules = json.loads(done.stdout.strip().splitlines()[-1])
    return exit_code, set(modules) & {"mlflow", "pandas", "sklearn", "numpy", "scipy", "pyarrow", "skops", "pandera"}


def test_read_commands_import_neither_mlflow_nor_the_data_stack(trained_project: Path) -> None:
    """The store holds what they print: a read answers without paying for MLflow, pandas or scikit-learn.

    v2's evidence compared it with no champion; once v1 is champion, the first gate check collects it
    again against v1 and keeps it, so the next check (in its own process) only judges the rules.
    """
    for actor, action in (("alice", "staging"), ("vera", "approve"), ("rui", "production")):
        with Shipyard.open(trained_project, actor=actor, env={}) as service:
            if action == "approve":
                service.approve("churn", 1, "production", comment="ok")
            else:
                service.promote("churn", 1, action, reason="ready")
    with Shipyard.open(trained_project, actor="alice", env={}) as service:
        assert service.evidence("churn", 2)["comparison"] is None  # type: ignore[index]
        service.gate("churn", 2, "production")
        assert service.evidence("churn", 2)["comparison"]["champion_version"] == 1  # type: ignore[index]
    for name, args in READS.items():
        exit_code, heavy = heavy_modules_loaded(trained_project, args)
        assert exit_code in (0, 1) and heavy == set(), f"{name}: exit {exit_code}, imported {sorted(heavy)}"


def test_promote_to_candidate_is_refused_not_a_traceback(trained_project: Path) -> None:
    """It raised KeyError (no permission names a move to candidate): a traceback here, a 500 through the server."""
    done = run("--project", str(trained_project), "--actor", "rui", "promote", "churn", "1", "--to", "candidate", "--reason", "r")
    assert done.exit_code == 2 and "no move leads back to candidate" in done.stderr
    assert "Traceback" not in done.output
