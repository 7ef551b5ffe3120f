"""Signed audit checkpoints through the service: the server signs, anyone verifies, on SQLite and PostgreSQL.

The server is a hosted service (``settings.hosted``) over the same store a verifier opens.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from factories import forge, register
from shipyard import signing
from shipyard.config import load_settings
from shipyard.domain.checkpoints import Checkpoint, signing_time
from shipyard.domain.errors import Conflict, InvalidSpec, PermissionDenied
from shipyard.service import Shipyard
from shipyard.store.audit import event_hash
from shipyard.store.repository import Store


def declare_server(root: Path, **server: object) -> None:
    config = root / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["server"] = {"url": "http://127.0.0.1:8700", "checkpoint_seconds": 3600, **server}
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def open_pair(root: Path, store: Store) -> tuple[Shipyard, Shipyard]:
    settings = dataclasses.replace(load_settings(root, actor="shipyard.server", env={}), store_url=store.url)
    return Shipyard(dataclasses.replace(settings, hosted=True), store=store), Shipyard(settings, store=store)


@pytest.fixture
def team(project: Path, store: Store) -> Iterator[tuple[Shipyard, Shipyard]]:
    """The server (hosted, holds the key) and a verifier (not hosted) on one store."""
    declare_server(project)
    yield open_pair(project, store)


def sql(store: Store, statement: str, **params: object) -> None:
    forge(store, statement, **params)


def rewrite(store: Store, seq: int, actor: str = "mallory") -> None:
    """What someone with the database can do: edit event ``seq``, recompute every later hash and the head."""
    events = store.audit_events()
    prev = events[seq - 2].hash if seq > 1 else "0" * 64
    with store.engine.begin() as conn:
        for event in events[seq - 1 :]:
            who = actor if event.seq == seq else event.actor
            digest = event_hash(
                seq=event.seq,
                at=event.at,
                actor=who,
                action=event.action,
                subject=event.subject,
                details=event.details,
                prev_hash=prev,
            )
            conn.execute(
                text("UPDATE audit_events SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"),
                {"a": who, "p": prev, "h": digest, "s": event.seq},
            )
            prev = digest
        conn.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": prev})


def events(store: Store) -> int:
    return len(store.audit_events())


# -- signing ------------------------------------------------------------------------------


def test_the_server_signs_when_events_arrived_and_it_is_due(team: tuple[Shipyard, Shipyard]) -> None:
    server, reader = team
    register(server.store, 1)
    first = server.checkpoint_audit()  # the first one is always due
    assert first is not None and first.seq == events(server.store)  # the key's own listing is covered
    assert [e.action for e in server.store.audit_events()][-1] == "audit.key_created"
    assert server.checkpoint_audit(force=True) is None  # nothing arrived since
    register(server.store, 2)
    assert server.checkpoint_audit() is None  # an hour has not passed
    second = server.checkpoint_audit(force=True)
    assert second is not None and second.seq == events(server.store) and second.key_id == first.key_id
    assert reader.store.audit_checkpoints() == [first, second]
    lines = server.checkpoint_file()
    assert lines is not None and signing.read_checkpoints(lines) == ([first, second], [])
    assert first.project == server.settings.spec.project


def test_a_short_interval_signs_without_force(project: Path, store: Store) -> None:
    declare_server(project, checkpoint_seconds=0.000001)
    server, _ = open_pair(project, store)
    register(store, 1)
    assert server.checkpoint_audit() is not None
    register(store, 2)
    assert server.checkpoint_audit() is not None


def test_only_the_server_signs(team: tuple[Shipyard, Shipyard], project: Path, store: Store) -> None:
    _, reader = team
    register(store, 1)
    with pytest.raises(PermissionDenied) as caught:
        reader.checkpoint_audit(force=True)
    assert "the Shipyard server holds the audit signing key" in caught.value.message
    assert "this process is not the server" in caught.value.message
    config = project / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    del data["server"]
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    embedded, _ = open_pair(project, store)
    with pytest.raises(InvalidSpec, match="declares no server"):
        embedded.checkpoint_audit(force=True)
    assert store.audit_checkpoints() == [] and not (project / ".shipyard" / "server").exists()


def test_the_key_file_is_made_0600_and_a_loose_one_is_refused(team: tuple[Shipyard, Shipyard], project: Path) -> None:
    server, _ = team
    register(server.store, 1)
    server.checkpoint_audit(force=True)
    key_file = project / ".shipyard" / "server" / "audit-signing.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key_file.chmod(0o644)
    register(server.store, 2)
    with pytest.raises(InvalidSpec, match=r"may be read or written by group or others \(mode 0644\); expected 0600") as caught:
        server.checkpoint_audit(force=True)
    assert "chmod 600" in (caught.value.hint or "")


def test_the_server_signs_nothing_over_a_rewritten_history(team: tuple[Shipyard, Shipyard]) -> None:
    server, _ = team
    register(server.store, 1)
    server.checkpoint_audit(force=True)
    register(server.store, 2)
    rewrite(server.store, 2)
    assert server.store.verify_audit().ok
    with pytest.raises(Conflict, match="the server signs no checkpoint over it"):
        server.checkpoint_audit(force=True)


def test_a_forged_checkpoint_row_is_never_the_server_s_starting_point(team: tuple[Shipyard, Shipyard]) -> None:
    server, reader = team
    register(server.store, 1)
    real = server.checkpoint_audit(force=True)
    assert real is not None
    register(server.store, 2)
    head = server.store.audit_events()[-1]
    sql(
        server.store,
        "INSERT INTO audit_checkpoints (project, seq, head_hash, signed_at, key_id, signature) "
        "VALUES (:p, :s, :h, :at, :k, :sig)",
        p=real.project,
        s=head.seq,
        h=head.hash,
        at=real.signed_at,
        k=real.key_id,
        sig="00" * 64,
    )
    signed = server.checkpoint_audit(force=True)
    assert signed is not None and signed.seq == head.seq
    found = reader.audit_verify()
    assert not found.ok and found.first_bad_seq is None
    assert found.problems == (f"the checkpoint of seq {head.seq} (signed at {_at(real)}) in the store does not match "
                              f"its signature by key {real.key_id}: it was forged or altered",)  # fmt: skip


# -- verifying ----------------------------------------------------------------------------


def test_an_intact_history_verifies_and_names_its_unsigned_tail(team: tuple[Shipyard, Shipyard]) -> None:
    server, reader = team
    found = reader.audit_verify()
    assert found.ok and found.key_source is None and found.checkpoints == 0 and found.replayed
    register(server.store, 1)
    checkpoint = server.checkpoint_audit(force=True)
    assert checkpoint is not None
    register(server.store, 2)
    pem = reader.audit_public_key().encode()
    for keys, source in ((None, "store"), ([pem], "given")):
        found = reader.audit_verify(keys)
        assert found.ok, found.problems
        assert (found.key_source, found.checkpoints, found.signed_through, found.unsigned_tail) == (source, 1, checkpoint.seq, 1)
        assert found.checkpoint_file == str(reader.checkpoint_file()) and found.unexplained == ()


def test_an_edit_with_every_hash_recomputed_is_named_exactly_when_checkpoints_are_dense(team: tuple[Shipyard, Shipyard]) -> None:
    server, reader = team
    register(server.store, 1)
    server.checkpoint_audit(force=True)
    register(server.store, 2)  # one event
    signed = server.checkpoint_audit(force=True)
    assert signed is not None
    pem = reader.audit_public_key().encode()
    rewrite(server.store, signed.seq)
    assert server.store.verify_audit().ok  # the chain alone passes
    found = reader.audit_verify([pem])
    assert not found.ok and found.first_bad_seq == signed.seq and found.key_source == "given"
    assert found.problem is not None and found.problem.startswith(f"event {signed.seq} was rewritten: its hash differs")
    assert found.signed_through == signed.seq - 1


def test_an_edit_between_sparse_checkpoints_names_the_earliest_event_it_can_be(team: tuple[Shipyard, Shipyard]) -> None:
    server, reader = team
    register(server.store, 1)
    good = server.checkpoint_audit(force=True)
    for version in (2, 3, 4):
        register(server.store, version)
    bad = server.checkpoint_audit(force=True)
    register(server.store, 5)
    assert good is not None and bad is not None and bad.seq == good.seq + 3
    rewrite(server.store, good.seq + 2)
    assert server.store.verify_audit().ok
    found = reader.audit_verify([reader.audit_public_key().encode()])
    assert not found.ok and found.first_bad_seq == good.seq + 1
    assert found.problem is not None
    assert f"the history was rewritten after the checkpoint of seq {good.seq}" in found.problem
    assert f"one of {good.seq + 1} to {bad.seq}; checkpoints cannot tell which" in found.problem
    assert found.signed_through == good.seq


def test_a_deleted_tail_with_its_checkpoints_is_found_in_the_checkpoint_file(team: tuple[Shipyard, Shipyard]) -> None:
    server, reader = team
    register(server.store, 1)
    kept = server.checkpoint_audit(force=True)
    register(server.store, 2)
    cut = server.checkpoint_audit(force=True)
    assert kept is not None and cut is not None
    last = server.store.audit_events()[kept.seq - 1]
    sql(server.store, "DELETE FROM audit_events WHERE seq > :s", s=kept.seq)
    sql(server.store, "DELETE FROM audit_checkpoints WHERE seq > :s", s=kept.seq)
    sql(server.store, "UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1", s=last.seq, h=last.hash)
    # The rows the deleted events explained go too, so the replay has nothing to say.
    sql(server.store, "DELETE FROM evidence WHERE version = 2")
    sql(server.store, "DELETE FROM stage_changes WHERE version = 2")
    sql(server.store, "DELETE FROM mirror_pending")
    sql(server.store, "DELETE FROM model_versions WHERE version = 2")
    assert server.store.verify_audit().ok
    found = reader.audit_verify()
    assert not found.ok and found.first_bad_seq == kept.seq + 1 and found.unexplained == ()
    assert found.problem == (
        f"the log ends at {kept.seq} but checkpoint of seq {cut.seq} (signed at {_at(cut)}) exists in the checkpoint file: "
        f"events after {kept.seq} were deleted, with the head moved back"
    )


def test_checkpoint_rows_deleted_from_the_store_are_named(team: tuple[Shipyard, Shipyard]) -> None:
    server, reader = team
    register(server.store, 1)
    checkpoint = server.checkpoint_audit(force=True)
    assert checkpoint is not None
    sql(server.store, "DELETE FROM audit_checkpoints")
    found = reader.audit_verify()
    assert not found.ok and found.signed_through == checkpoint.seq
    assert found.problems == (
        f"the checkpoint of seq {checkpoint.seq} (signed at {_at(checkpoint)}) is in the checkpoint file but not in the store: "
        "checkpoint rows were deleted",
    )


def test_an_approval_without_its_event_fails_verification(team: tuple[Shipyard, Shipyard]) -> None:
    server, reader = team
    register(server.store, 1)
    server.checkpoint_audit(force=True)
    sql(
        server.store,
        "INSERT INTO approvals (model_name, version, stage, actor, roles, decision, comment, at) "
        "VALUES ('churn', 1, 'production', 'mallory', '[\"approver\"]', 'approve', '', '2026-12-01 00:00:00+00:00')",
    )
    found = reader.audit_verify()
    assert not found.ok and found.problems == () and found.first_bad_seq is None
    assert found.unexplained == ("approval of churn/1 for production by mallory (row 1) has no audit event",)
    assert found.problem == found.unexplained[0]


# -- keys -------------------------------------------------------------------------------------


def test_rotation_keeps_old_checkpoints_verifiable_with_the_old_key(team: tuple[Shipyard, Shipyard], project: Path) -> None:
    server, reader = team
    register(server.store, 1)
    old = server.checkpoint_audit(force=True)
    assert old is not None
    old_pem = reader.audit_public_key()
    new = server.as_actor("ada").rotate_audit_key()
    assert new.key_id != old.key_id
    keys = {k.key_id: k for k in reader.audit_keys()}
    assert keys[old.key_id].retired_at is not None and keys[new.key_id].retired_at is None
    rotated = [e for e in reader.audit_log() if e.action == "audit.key_rotated"]
    assert [(e.actor, e.details["retired"], e.details["key_id"]) for e in rotated] == [("ada", old.key_id, new.key_id)]
    # The old private key is gone: the file holds the new one.
    held = signing.load_key(project / ".shipyard" / "server" / "audit-signing.key")
    assert held is not None and held.key_id == new.key_id
    register(server.store, 2)
    latest = server.checkpoint_audit(force=True)
    assert latest is not None and latest.key_id == new.key_id
    new_pem = reader.audit_public_key()
    assert new_pem != old_pem
    assert {c.key_id for c in reader.store.audit_checkpoints()} == {old.key_id, new.key_id}
    found = reader.audit_verify()
    assert found.ok and found.checkpoints == 3  # the rotation signs at once with the new key
    only_new = reader.audit_verify([new_pem.encode()])
    assert not only_new.ok
    assert only_new.problems == (
        f"the checkpoint of seq {old.seq} (signed at {_at(old)}) in the store and the checkpoint file was signed with key "
        f"{old.key_id}, not among the public keys given (pass its public key too)",
    )
    assert reader.audit_verify([old_pem.encode(), new_pem.encode()]).ok


def test_only_an_admin_on_the_server_rotates_the_key(team: tuple[Shipyard, Shipyard]) -> None:
    server, reader = team
    with pytest.raises(PermissionDenied, match="rui may not rotate the audit signing key"):
        server.as_actor("rui").rotate_audit_key()
    [denied] = [e for e in reader.audit_log() if e.action.endswith(".denied")]
    assert (denied.action, denied.actor) == ("audit.rotate_key.denied", "rui")
    with pytest.raises(PermissionDenied, match="the Shipyard server holds the audit signing key"):
        reader.as_actor("ada").rotate_audit_key()
    assert reader.audit_keys() == []
    assert [e.action for e in reader.audit_log() if e.action.endswith(".denied")] == ["audit.rotate_key.denied"]


def test_a_retired_key_file_is_refused(team: tuple[Shipyard, Shipyard], project: Path) -> None:
    server, _ = team
    key_file = project / ".shipyard" / "server" / "audit-signing.key"
    register(server.store, 1)
    server.checkpoint_audit(force=True)
    old = key_file.read_bytes()
    server.as_actor("ada").rotate_audit_key()
    key_file.write_bytes(old)  # someone puts the retired key back
    register(server.store, 2)
    with pytest.raises(Conflict, match="was retired at"):
        server.checkpoint_audit(force=True)


def _at(checkpoint: Checkpoint) -> str:
    return signing_time(checkpoint.signed_at)


# -- promotion --------------------------------------------------------------------------------


def test_the_server_signs_at_every_promotion_to_production(trained_project: Path) -> None:
    declare_server(trained_project)
    store = Store.open(load_settings(trained_project, env={}).store_url)
    try:
        server, reader = open_pair(trained_project, store)
        deployer = server.as_actor("rui")
        deployer.promote("churn", 1, "staging", reason="ready")
        assert store.audit_checkpoints() == []  # staging is not production
        server.as_actor("vera").approve("churn", 1, "production", comment="reviewed")
        deployer.promote("churn", 1, "production", reason="ship it")
        [checkpoint] = store.audit_checkpoints()
        last = store.audit_events()[-1]
        assert (checkpoint.seq, checkpoint.head_hash) == (last.seq, last.hash)
        deployer.promote("churn", 2, "staging", reason="next")
        server.as_actor("vera").approve("churn", 2, "production", comment="reviewed")
        deployer.promote("churn", 2, "production", reason="better")
        assert [c.seq for c in store.audit_checkpoints()] == [checkpoint.seq, store.audit_events()[-1].seq]
        assert reader.audit_verify().ok
    finally:
        store.close()
