"""Real data for a regression model: abalone measurements and their age in rings (scikit-lego's load_abalone)."""

from __future__ import annotations

from pathlib import Path


def write_data(path: Path) -> None:
    """Write scikit-lego's abalone records (no download: the package carries them) as Parquet."""
    from sklego.datasets import load_abalone

    path.parent.mkdir(parents=True, exist_ok=True)
    load_abalone(as_frame=True).to_parquet(path, index=False)
