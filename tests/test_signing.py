"""The audit signing key on disk, public keys, and the append-only checkpoint file."""

from __future__ import annotations

import dataclasses
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipyard import signing
from shipyard.domain.checkpoints import Checkpoint
from shipyard.domain.errors import InvalidSpec


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def signed(key: signing.SigningKey, seq: int = 3, project: str = "churn-project") -> Checkpoint:
    unsigned = Checkpoint(
        project=project,
        seq=seq,
        head_hash="ab" * 32,
        signed_at=datetime(2026, 12, 3, 10, 0, 0, 123456, tzinfo=UTC),
        key_id=key.key_id,
        signature="",
    )
    return dataclasses.replace(unsigned, signature=key.sign(unsigned.document()))


def test_the_key_is_made_on_first_use_readable_by_its_owner_alone(tmp_path: Path) -> None:
    path = tmp_path / "server" / "audit-signing.key"
    key, created = signing.load_or_create(path)
    assert created and mode(path) == 0o600
    again, created_again = signing.load_or_create(path)
    assert not created_again and again.public_raw == key.public_raw and again.key_id == key.key_id


def test_the_key_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    import os

    previous = os.umask(0)
    try:
        signing.load_or_create(tmp_path / "k.key")
    finally:
        os.umask(previous)
    assert mode(tmp_path / "k.key") == 0o600


@pytest.mark.parametrize("loose", [0o640, 0o604, 0o660, 0o644])
def test_a_key_file_others_may_read_is_refused(tmp_path: Path, loose: int) -> None:
    path = tmp_path / "k.key"
    signing.load_or_create(path)
    path.chmod(loose)
    with pytest.raises(InvalidSpec) as caught:
        signing.load_key(path)
    assert f"mode {loose:04o}" in caught.value.message and "expected 0600" in caught.value.message
    assert f"chmod 600 {path}" in (caught.value.hint or "") and "rotate-key" in (caught.value.hint or "")


def test_a_key_file_that_is_not_a_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_text("not a key")
    path.chmod(0o600)
    with pytest.raises(InvalidSpec, match="is not an unencrypted PEM private key"):
        signing.load_key(path)


def test_writing_a_new_key_replaces_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    old, _ = signing.load_or_create(path)
    new = signing.new_key()
    signing.write_key(path, new)
    loaded = signing.load_key(path)
    assert loaded is not None and loaded.key_id == new.key_id != old.key_id and mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key"]


def test_a_signature_verifies_with_its_public_key_and_nothing_else(tmp_path: Path) -> None:
    key, other = signing.new_key(), signing.new_key()
    checkpoint = signed(key)
    assert signing.verify(key.public_raw, checkpoint)
    assert not signing.verify(other.public_raw, checkpoint)
    for change in ({"seq": 4}, {"head_hash": "cd" * 32}, {"project": "other"}, {"signature": "00" * 64}, {"signature": "zz"}):
        assert not signing.verify(key.public_raw, dataclasses.replace(checkpoint, **change)), change


def test_key_ids_are_a_digest_prefix_of_the_raw_public_key() -> None:
    import hashlib

    key = signing.new_key()
    assert key.key_id == hashlib.sha256(key.public_raw).hexdigest()[:16] and len(key.public_raw) == 32


def test_public_keys_are_read_from_pem_one_or_several() -> None:
    first, second = signing.new_key(), signing.new_key()
    pem = signing.public_pem(first.public_raw)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert signing.read_public_keys(pem.encode(), where="k.pem") == [first.public_raw]
    both = (pem + signing.public_pem(second.public_raw)).encode()
    assert signing.read_public_keys(both, where="k.pem") == [first.public_raw, second.public_raw]
    assert signing.read_public_keys(first.public_raw, where="raw") == [first.public_raw]


def test_a_file_with_no_public_key_is_refused_by_name() -> None:
    with pytest.raises(InvalidSpec, match=r"k\.pem holds no Ed25519 public key") as caught:
        signing.read_public_keys(b"hello", where="k.pem")
    assert "shipyard audit public-key" in (caught.value.hint or "")


def test_the_checkpoint_file_is_appended_to_and_read_back(tmp_path: Path) -> None:
    key = signing.new_key()
    path = tmp_path / "deep" / "server" / "checkpoints.jsonl"
    first, second = signed(key, 3), signed(key, 9)
    signing.append_checkpoint(path, first)
    signing.append_checkpoint(path, second)
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [3, 9]
    found, problems = signing.read_checkpoints(path)
    assert found == [first, second] and problems == []
    assert all(signing.verify(key.public_raw, c) for c in found)


def test_lines_that_are_not_checkpoints_are_reported_not_fatal(tmp_path: Path) -> None:
    key = signing.new_key()
    path = tmp_path / "checkpoints.jsonl"
    good = signed(key)
    path.write_text(
        json.dumps({"kind": "key", "key_id": key.key_id}) + "\n"  # an export's key line is skipped
        + json.dumps(good.to_dict()) + "\n"
        + '{"seq": 4, "head_hash": "x"\n'
        + json.dumps({**good.to_dict(), "seq": -1}) + "\n"
        + json.dumps({"seq": 5}) + "\n"
    )  # fmt: skip
    found, problems = signing.read_checkpoints(path)
    assert found == [good]
    assert len(problems) == 3
    assert "line 3 of the checkpoint file" in problems[0] and "not JSON" in problems[0]
    assert "line 4" in problems[1] and "seq must be a positive integer" in problems[1]
    assert "line 5" in problems[2] and "is missing" in problems[2]
