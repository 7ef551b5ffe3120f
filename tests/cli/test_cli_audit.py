"""`shipyard audit verify | public-key | checkpoints export | rotate-key`: exit codes and what they say."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from factories import register
from shipyard.cli import app
from shipyard.config import load_settings
from shipyard.service import Shipyard
from shipyard.store.audit import canonical_sha256, event_hash
from shipyard.store.repository import Store


def run(root: Path, *args: str, actor: str = "val") -> object:
    return CliRunner().invoke(app, ["--project", str(root), "--actor", actor, *args], catch_exceptions=False)


def declare_server(root: Path) -> None:
    config = root / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["server"] = {"url": "http://127.0.0.1:8700", "checkpoint_seconds": 3600}
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def db(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / ".shipyard" / "shipyard.db")


@pytest.fixture
def signed(project: Path) -> Path:
    """A team project whose server signed one checkpoint, with one event after it."""
    declare_server(project)
    settings = load_settings(project, actor="shipyard.server", env={})
    with Shipyard(dataclasses.replace(settings, hosted=True)) as server:
        register(server.store, 1)
        assert server.checkpoint_audit(force=True) is not None
        register(server.store, 2)
    return project


def rewrite_actor(root: Path, seq: int) -> None:
    """Edit event ``seq`` and recompute every later hash and the head, as someone with the database file can."""
    store = Store.open(f"sqlite:///{root / '.shipyard' / 'shipyard.db'}")
    events = store.audit_events()
    store.close()
    with db(root) as conn:
        prev = events[seq - 2].hash
        for event in events[seq - 1 :]:
            actor = "mallory" if event.seq == seq else event.actor
            digest = event_hash(
                seq=event.seq,
                at=event.at,
                actor=actor,
                action=event.action,
                subject=event.subject,
                details=event.details,
                prev_hash=prev,
            )
            conn.execute(
                "UPDATE audit_events SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (actor, prev, digest, event.seq),
            )
            prev = digest
        conn.execute("UPDATE audit_head SET hash = ? WHERE id = 1", (prev,))


def test_verify_says_which_keys_it_used(signed: Path, tmp_path: Path) -> None:
    plain = run(signed, "audit", "verify")
    assert plain.exit_code == 0, plain.output
    out = " ".join(plain.stdout.split())
    assert "audit chain verified" in out
    assert "checkpoints: 1 checked in the store and" in out and "checkpoints.jsonl" in out
    assert "with the keys listed in the store (weaker" in out and "pass --public-key FILE" in out
    assert "1 event after it not signed yet" in out
    assert "state replayed: every stage, approval, deployment, rollout, token and audit key row has its event" in out
    key = tmp_path / "server.pem"
    written = run(signed, "audit", "public-key", "--out", str(key))
    assert written.exit_code == 0 and "wrote the public key" in written.stderr
    assert key.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert run(signed, "audit", "public-key").stdout == key.read_text()
    given = run(signed, "audit", "verify", "--public-key", str(key))
    assert given.exit_code == 0 and "with the public keys given" in " ".join(given.stdout.split())
    as_json = json.loads(run(signed, "audit", "verify", "--public-key", str(key), "--json").stdout)
    assert as_json["ok"] and as_json["key_source"] == "given" and as_json["checkpoints"] == 1 and as_json["unsigned_tail"] == 1


def test_a_rewritten_history_exits_1_naming_the_event(signed: Path, tmp_path: Path) -> None:
    key = tmp_path / "server.pem"
    run(signed, "audit", "public-key", "--out", str(key))
    with db(signed) as conn:
        (signed_seq,) = conn.execute("SELECT seq FROM audit_checkpoints").fetchone()
    rewrite_actor(signed, signed_seq)
    result = run(signed, "audit", "verify", "--public-key", str(key))
    assert result.exit_code == 1
    err = " ".join(result.stderr.split())
    assert "audit chain broken at event 1: the history was rewritten before the first checkpoint" in err
    assert f"the rewritten event is one of 1 to {signed_seq}; checkpoints cannot tell which" in err.lower()
    as_json = run(signed, "audit", "verify", "--public-key", str(key), "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["first_bad_seq"] == 1


def test_checkpoints_export_writes_keys_then_checkpoints(signed: Path, tmp_path: Path) -> None:
    out = tmp_path / "checkpoints.jsonl"
    result = run(signed, "audit", "checkpoints", "export", "--out", str(out))
    assert result.exit_code == 0 and "wrote 1 checkpoints and 1 public keys" in result.stderr
    key, checkpoint = (json.loads(line) for line in out.read_text().splitlines())
    assert key["kind"] == "key" and key["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----") and key["retired_at"] is None
    assert checkpoint["kind"] == "checkpoint" and checkpoint["key_id"] == key["key_id"]
    assert {"project", "seq", "head_hash", "signed_at", "signature"} <= set(checkpoint)
    assert run(signed, "audit", "checkpoints", "export").stdout == out.read_text()


def test_bad_public_key_files_are_refused(signed: Path, tmp_path: Path) -> None:
    missing = run(signed, "audit", "verify", "--public-key", str(tmp_path / "nope.pem"))
    assert missing.exit_code == 2 and "cannot read the public key file" in missing.stderr
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    refused = run(signed, "audit", "verify", "--public-key", str(junk))
    assert refused.exit_code == 2 and "holds no Ed25519 public key in PEM form" in refused.stderr


def test_rotating_the_key_happens_on_the_server(signed: Path) -> None:
    for actor in ("ada", "rui"):
        here = run(signed, "audit", "rotate-key", actor=actor)
        err = " ".join(here.stderr.split())
        assert here.exit_code == 5 and "cannot rotate the audit signing key here: the Shipyard server holds" in err


def test_no_public_key_before_the_server_made_one(project: Path) -> None:
    result = run(project, "audit", "public-key")
    assert result.exit_code == 3 and "no audit signing key is listed yet" in result.stderr
    plain = run(project, "audit", "verify")
    assert plain.exit_code == 0 and "checkpoints: none (no server has signed this log)" in " ".join(plain.stdout.split())


def test_an_approval_inserted_with_sql_opens_no_gate_and_fails_verify(trained_project: Path) -> None:
    """It used to count: the gate passed while `audit verify` said the chain was intact."""
    with Shipyard.open(trained_project, actor="rui", env={}) as service:
        service.promote("churn", 1, "staging", reason="ready")
        evidence = service.evidence("churn", 1)
        assert evidence is not None
        with db(trained_project) as conn:
            conn.execute(
                "INSERT INTO approvals (model_name, version, stage, actor, roles, decision, comment, at, evidence_sha256) "
                "VALUES ('churn', 1, 'production', 'vera', '[\"approver\"]', 'approve', 'ok', '2026-12-01 10:00:00', ?)",
                (canonical_sha256(evidence),),
            )
        report = service.gate("churn", 1, "production")
        [rule] = [r for r in report.results if r.kind == "approvals"]
        assert not report.passed and rule.observed.startswith("0; not counted: vera (revoked: no audit event records it")
    result = run(trained_project, "audit", "verify")
    assert result.exit_code == 1
    assert "audit chain verified" in result.stdout  # the chain itself holds: no event was touched
    err = " ".join(result.stderr.split())
    assert "state rows no audit event explains (1):" in err
    assert "approval of churn/1 for production by vera (row 1) has no audit event" in err
    # The same sign-off given through Shipyard counts.
    with Shipyard.open(trained_project, actor="vera", env={}) as approver:
        approver.approve("churn", 1, "production", comment="ok")
    with Shipyard.open(trained_project, actor="rui", env={}) as service:
        assert service.gate("churn", 1, "production").passed
