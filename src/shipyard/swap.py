"""Replacing a folder so that a kill at any moment leaves either the old folder or the new one.

The new content is written beside the folder under a dot-name readers never list (``.NAME.new``);
then the folder is renamed aside (``.NAME.old``), the new one renamed into place, and the old one
removed. Every step is one rename, and the names on disk say how far a killed swap got, so
``recover`` finishes it (the new folder was complete before the first rename) or discards it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

NEW, OLD, GONE = ".new", ".old", ".deleted"


def staging(folder: Path) -> Path:
    return folder.parent / f".{folder.name}{NEW}"


def aside(folder: Path, suffix: str) -> Path:
    return folder.parent / f".{folder.name}{suffix}"


def fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def replace_file(target: Path, write: Callable[[Path], object]) -> None:
    """Write one file through a dot-name beside it, synced, then renamed: readers see it whole or not at all.

    The dot-name is invisible to pyarrow.dataset and to `part-*` listings until renamed; without the sync, a
    crash after the rename can leave an empty file that breaks readers.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.tmp"
    try:
        write(temporary)
        fsync(temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def begin(folder: Path) -> Path:
    """An empty staging folder for ``folder``'s new content (a leftover from a killed run is discarded)."""
    new = staging(folder)
    if new.exists():
        shutil.rmtree(new)
    new.mkdir(parents=True)
    return new


def commit(folder: Path) -> None:
    """Put the staging folder in ``folder``'s place; the caller has written and synced everything in it."""
    new, old = staging(folder), aside(folder, OLD)
    fsync(new)
    os.replace(folder, old)
    os.replace(new, folder)
    fsync(folder.parent)
    shutil.rmtree(old)


def remove(folder: Path) -> None:
    """Delete ``folder``: renamed aside first, so a half-deleted folder is never read as a partition."""
    gone = aside(folder, GONE)
    os.replace(folder, gone)
    shutil.rmtree(gone)


def recover(parent: Path) -> list[str]:
    """Finish or discard every swap a kill interrupted under ``parent``; the folder names it touched."""
    touched: list[str] = []
    if not parent.is_dir():
        return touched
    for entry in sorted(parent.iterdir()):
        name = entry.name
        if not name.startswith(".") or not entry.is_dir():
            continue
        for suffix in (OLD, NEW, GONE):
            if not name.endswith(suffix):
                continue
            folder = parent / name[1 : -len(suffix)]
            if suffix == GONE:
                shutil.rmtree(entry)
            elif suffix == OLD:
                new = staging(folder)
                if not folder.exists() and new.exists():
                    os.replace(new, folder)  # killed between the two renames: the new content was complete
                if folder.exists():
                    shutil.rmtree(entry)
                else:  # pragma: no cover - the old folder alone: put it back rather than lose it
                    os.replace(entry, folder)
            elif suffix == NEW and not aside(folder, OLD).exists() and entry.exists():
                shutil.rmtree(entry)  # killed while writing: the original is intact
            touched.append(folder.name)
    return touched


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
