"""The MLflow facade: tracking runs, model files and the registry mirror.

Wraps ``MlflowClient`` (never the fluent API, which keeps global state) and
translates MLflow's errors into Shipyard's at this edge.
"""

from __future__ import annotations

from shipyard.registry.facade import STAGE_ALIASES, STAGE_TAG, Registry
from shipyard.registry.integrity import IntegrityRefused, ModelFiles, TamperedModel, UntrustedFormat, UnverifiedModel
from shipyard.registry.relocation import Relocation, relocate
from shipyard.registry.tracking import MODEL_ARTIFACT, model_requirements, translate_errors

__all__ = [
    "MODEL_ARTIFACT",
    "STAGE_ALIASES",
    "STAGE_TAG",
    "IntegrityRefused",
    "ModelFiles",
    "Registry",
    "Relocation",
    "TamperedModel",
    "UntrustedFormat",
    "UnverifiedModel",
    "model_requirements",
    "relocate",
    "translate_errors",
]
