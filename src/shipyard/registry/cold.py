"""Model files in the cold location: one compressed archive per model folder, brought back on demand.

An archive lies at the same path under the cold location as its folder under the artifact root
(plus ``.tar.gz``), so the archive alone says where its files go back, and nothing stored names a
folder of this machine. Moving is crash-safe: the archive is written under a temporary name,
checked, synced and renamed into place before the folder is renamed aside and removed; an archive
with its folder still present means a move got half way, and running again removes the folder.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from shipyard import swap
from shipyard.domain.errors import BackendUnavailable, NotFound

SUFFIX = ".tar.gz"


def archive_for(cold: Path, artifact_root: Path, folder: Path) -> Path | None:
    """Where ``folder``'s archive goes; None when the folder is not under the artifact root."""
    try:
        relative = folder.resolve().relative_to(artifact_root.resolve())
    except ValueError:
        return None
    return cold / relative.parent / f"{relative.name}{SUFFIX}"


def check_writable(cold: Path) -> None:
    """Fail before anything is deleted when the cold location cannot take files."""
    probe = cold / f".probe-{os.getpid()}"
    try:
        cold.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"shipyard")
        probe.unlink()
    except OSError as exc:
        raise BackendUnavailable(
            f"the cold location {cold} cannot be written ({exc.strerror or exc}); nothing was changed",
            hint="Make it writable, or set retention.cold_location in shipyard.yaml to a folder that is.",
        ) from None


def move_to_cold(folder: Path, archive: Path) -> dict[str, int]:
    """Compress ``folder`` into ``archive`` (checked against the folder), then remove ``folder``."""
    if not archive.is_file():
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_name(f".{archive.name}.tmp")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(folder, arcname=folder.name)
        _verify(partial, folder)
        swap.fsync(partial)
        os.replace(partial, archive)
        swap.fsync(archive.parent)
    size = swap.size(folder)
    swap.remove(folder)
    return {"bytes": size, "archive_bytes": archive.stat().st_size}


def _verify(archive: Path, folder: Path) -> None:
    """Every file of the folder is in the archive with its size: a truncated archive never replaces it."""
    with tarfile.open(archive, "r:gz") as tar:
        members = {m.name: m.size for m in tar.getmembers() if m.isfile()}
    for path in folder.rglob("*"):
        if path.is_file():
            name = f"{folder.name}/{path.relative_to(folder).as_posix()}"
            if members.get(name) != path.stat().st_size:
                raise BackendUnavailable(f"the cold archive {archive} does not hold {name} intact; the files stay in place")


def rehydrate(folder: Path, archive: Path) -> bool:
    """Bring the folder back from its archive; False when it is already there."""
    swap.recover(folder.parent)  # a move or a restore killed half way
    if folder.exists():
        return False
    if not archive.is_file():
        raise NotFound(f"the model files at {folder} are gone and the cold location has no archive {archive}")
    new = swap.begin(folder)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(new, filter="data")
    os.replace(new / folder.name, folder)
    swap.remove(new)
    return True
