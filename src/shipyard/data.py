"""Training data on disk: reading a CSV or Parquet file, and its fingerprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.domain.errors import InvalidSpec, NotFound

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataset:
    frame: pd.DataFrame
    uri: str
    fingerprint: str


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_frame(path: Path, *, what: str = "dataset", hint: str = "Check data.path in shipyard.yaml.") -> pd.DataFrame:
    """A CSV or Parquet file as a frame; a missing, unreadable or other file is one clear error naming it."""
    import pandas as pd

    if not path.is_file():
        raise NotFound(f"{what} {path} does not exist", hint=hint)
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise InvalidSpec(f"{what} {path} could not be read: {exc}", hint=hint) from exc
    raise InvalidSpec(f"{what} {path} has suffix {suffix!r}; expected .parquet or .csv", hint=hint)


def load_dataset(path: Path) -> Dataset:
    frame = read_frame(path)
    return Dataset(frame=frame, uri=path.resolve().as_uri(), fingerprint=sha256_file(path))
