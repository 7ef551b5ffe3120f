"""Real data for the fairness gates: the Toronto arrests records that scikit-lego ships."""

from __future__ import annotations

from pathlib import Path


def write_data(path: Path) -> None:
    """Write scikit-lego's arrests records (no download: the package carries them) as Parquet."""
    from sklego.datasets import load_arrests

    path.parent.mkdir(parents=True, exist_ok=True)
    load_arrests(as_frame=True).to_parquet(path, index=False)
