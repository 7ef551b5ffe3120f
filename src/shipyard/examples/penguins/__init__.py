"""Real data for a multiclass model: Palmer penguins and their species (scikit-lego's load_penguins)."""

from __future__ import annotations

from pathlib import Path


def write_data(path: Path) -> None:
    """Write scikit-lego's penguin records (no download: the package carries them) as Parquet.

    Rows without measurements (2 of 344) are left out: nothing can be predicted from them.
    """
    from sklego.datasets import load_penguins

    path.parent.mkdir(parents=True, exist_ok=True)
    frame = load_penguins(as_frame=True)
    frame = frame.dropna(subset=["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"])
    frame.reset_index(drop=True).to_parquet(path, index=False)
