"""Holding the audit chain against its signed checkpoints.

The chain's own hashes show an edit whose later hashes were left alone. Someone with the
database can also recompute every later hash and the head; the chain then holds, but its hash
at a checkpoint's sequence number no longer equals the one the server signed. Checkpoints come
from the store and from the server's checkpoint file, so deleting both events and their rows
in the store still leaves the file's copy to tell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shipyard import signing
from shipyard.domain.checkpoints import Checkpoint

STORE, FILE = "store", "file"


@dataclass(frozen=True, slots=True)
class Finding:
    seq: int | None  # the first event it puts in doubt, when one is known
    message: str


@dataclass(slots=True)
class CheckpointReport:
    findings: list[Finding] = field(default_factory=list)
    checked: int = 0
    signed_through: int | None = None  # the last event a valid checkpoint vouches for
    unsigned_tail: int = 0


def _where(origins: set[str]) -> str:
    if origins == {STORE}:
        return "in the store"
    if origins == {FILE}:
        return "in the checkpoint file"
    return "in the store and the checkpoint file"


def check(
    *,
    project: str,
    stored: Sequence[Checkpoint],
    filed: Sequence[Checkpoint],
    keys: Mapping[str, bytes],
    key_source: str,
    hashes: Mapping[int, str],
    last_seq: int,
) -> CheckpointReport:
    """Check every distinct checkpoint: its signature, its project, and the chain's hash at its sequence number.

    ``keys``: key id → raw public key; ``hashes``: the stored hash of each event a checkpoint names;
    ``last_seq``: the last event in the log.
    """
    origins: dict[Checkpoint, set[str]] = {}
    for checkpoint in stored:
        origins.setdefault(checkpoint, set()).add(STORE)
    for checkpoint in filed:
        origins.setdefault(checkpoint, set()).add(FILE)
    report = CheckpointReport(checked=len(origins))
    known = "the public keys given" if key_source == "given" else "the keys listed in the store"
    valid = []
    for checkpoint in sorted(origins, key=lambda c: (c.seq, c.signed_at, c.signature)):
        where = _where(origins[checkpoint])
        raw = keys.get(checkpoint.key_id)
        if raw is None:
            hint = "pass its public key too" if key_source == "given" else "keys were deleted from the store, or it is forged"
            report.findings.append(
                Finding(
                    None, f"the {checkpoint.label} {where} was signed with key {checkpoint.key_id}, not among {known} ({hint})"
                )
            )
        elif not signing.verify(raw, checkpoint):
            report.findings.append(
                Finding(
                    None,
                    f"the {checkpoint.label} {where} does not match its signature by key {checkpoint.key_id}: "
                    "it was forged or altered",
                )
            )
        elif checkpoint.project != project:
            report.findings.append(
                Finding(None, f"the {checkpoint.label} {where} was signed for project {checkpoint.project!r}, not {project!r}")
            )
        else:
            valid.append(checkpoint)
    _hold_against_chain(report, valid, origins, hashes, last_seq)
    return report


def _hold_against_chain(
    report: CheckpointReport,
    valid: list[Checkpoint],
    origins: Mapping[Checkpoint, set[str]],
    hashes: Mapping[int, str],
    last_seq: int,
) -> None:
    good = 0  # the last checkpoint the chain still matches, before any that it does not
    first_mismatch: Checkpoint | None = None
    later_mismatches = 0
    beyond: list[Checkpoint] = []
    for checkpoint in valid:
        where = _where(origins[checkpoint])
        if checkpoint.seq > last_seq:
            beyond.append(checkpoint)
            continue
        stored = hashes.get(checkpoint.seq)
        if stored is None:
            report.findings.append(
                Finding(checkpoint.seq, f"event {checkpoint.seq}, which the {checkpoint.label} signs, is missing from the log")
            )
            first_mismatch = first_mismatch or checkpoint
            continue
        if stored != checkpoint.head_hash:
            if first_mismatch is None:
                first_mismatch = checkpoint
                report.findings.append(_rewritten(checkpoint, good, where))
            else:
                later_mismatches += 1
            continue
        if first_mismatch is None:
            good = max(good, checkpoint.seq)
        if origins[checkpoint] == {FILE}:
            report.findings.append(
                Finding(
                    None, f"the {checkpoint.label} is in the checkpoint file but not in the store: checkpoint rows were deleted"
                )
            )
    if later_mismatches:
        report.findings.append(
            Finding(
                None,
                f"{later_mismatches} later checkpoint{'s' if later_mismatches > 1 else ''} no longer match either, "
                "as follows from it",
            )
        )
    if beyond:
        first = beyond[0]
        more = f" (and {len(beyond) - 1} later checkpoint{'s' if len(beyond) > 2 else ''})" if len(beyond) > 1 else ""
        report.findings.append(
            Finding(
                last_seq + 1,
                f"the log ends at {last_seq} but {first.label} exists {_where(origins[first])}{more}: "
                f"events after {last_seq} were deleted, with the head moved back",
            )
        )
    report.signed_through = good or None
    report.unsigned_tail = max(last_seq - good, 0)


def _rewritten(checkpoint: Checkpoint, good: int, where: str) -> Finding:
    since = f"after the checkpoint of seq {good}" if good else "before the first checkpoint"
    if checkpoint.seq == good + 1:
        return Finding(
            checkpoint.seq,
            f"event {checkpoint.seq} was rewritten: its hash differs from the one the {checkpoint.label} {where} signed, "
            "although every later hash links (they were recomputed)",
        )
    return Finding(
        good + 1,
        f"the history was rewritten {since}: the hash of event {checkpoint.seq} differs from the one the "
        f"{checkpoint.label} {where} signed, although every hash links (they were recomputed). The rewritten event "
        f"is one of {good + 1} to {checkpoint.seq}; checkpoints cannot tell which, so {good + 1} is the earliest it can be",
    )


__all__ = ["CheckpointReport", "Finding", "check"]
