"""Loading a registered version for serving: digest check, model, input schema."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.domain.entities import ModelVersion
from shipyard.domain.errors import BackendUnavailable
from shipyard.serving.inputs import InputSchema

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from shipyard.registry import Registry


class TamperedModel(BackendUnavailable):
    """A model's files no longer match the digests recorded when it was registered."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedModel:
    name: str
    version: int
    model: Any
    schema: InputSchema
    load_seconds: float

    @property
    def key(self) -> tuple[str, int]:
        return (self.name, self.version)

    def predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Labels and positive-class scores for a batch frame."""
        import numpy as np

        proba = np.asarray(self.model.predict_proba(frame))
        scores = proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 else proba.max(axis=1)
        return (scores >= 0.5).astype(np.int64), scores.astype(np.float64)

    def timed_predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, float]:
        """`predict` and the CPU seconds it took on this thread: unlike wall time, not inflated by other threads."""
        started = time.thread_time()
        labels, scores = self.predict(frame)
        return labels, scores, time.thread_time() - started


def verify_digests(version: ModelVersion, actual: dict[str, str]) -> None:
    expected = version.files_sha256
    if not expected:
        return  # registered before digests were recorded: nothing to compare with
    changed = sorted(name for name in expected if actual.get(name) != expected[name])
    added = sorted(name for name in actual if name not in expected)
    if changed or added:
        what = [f"changed: {', '.join(changed)}"] if changed else []
        what += [f"added: {', '.join(added)}"] if added else []
        raise TamperedModel(
            f"refusing to serve {version.subject}: its files differ from the digests recorded at registration "
            f"({'; '.join(what)})",
            hint="Someone changed the model's artifacts. Register the model again through the pipeline.",
        )


def load(version: ModelVersion, registry: Registry, *, categories: dict[str, list[str]] | None = None) -> LoadedModel:
    """Load one version; raises TamperedModel when its files changed since registration."""
    import yaml

    started = time.perf_counter()
    folder = registry.local_model_dir(version.source)
    verify_digests(version, registry.file_digests(version.source))
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))
    signature = (mlmodel.get("signature") or {}).get("inputs")
    if not signature:
        raise BackendUnavailable(
            f"{version.subject} has no input signature, so requests cannot be validated",
            hint="Log the model with a signature (the Shipyard pipeline always does).",
        )
    schema = InputSchema.from_mlflow_signature(signature)
    if categories:
        schema = schema.with_categories(categories)
    model = registry.load_sklearn(str(folder))
    return LoadedModel(
        name=version.model, version=version.version, model=model, schema=schema, load_seconds=time.perf_counter() - started
    )
