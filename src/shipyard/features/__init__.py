"""The feature-store adapter: Feast repositories as a training source and an online feature lookup.

Feast (and pandas) are imported only inside the functions that need them.
"""

from __future__ import annotations

from shipyard.features.repo import (
    FeatureSource,
    Materialized,
    TrainingFrame,
    apply,
    describe,
    materialize,
    open_store,
    training_frame,
)

__all__ = ["FeatureSource", "Materialized", "TrainingFrame", "apply", "describe", "materialize", "open_store", "training_frame"]
