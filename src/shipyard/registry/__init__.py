"""The MLflow facade: tracking runs, model files and the registry mirror.

Wraps ``MlflowClient`` (never the fluent API, which keeps global state) and
translates MLflow's errors into Shipyard's at this edge.
"""

from __future__ import annotations

from shipyard.domain.stages import STAGE_ALIASES
from shipyard.registry.facade import Registry
from shipyard.registry.integrity import IntegrityRefused, ModelFiles, TamperedModel, UntrustedFormat, UnverifiedModel
from shipyard.registry.relocation import Relocation, relocate
from shipyard.registry.requirements import model_requirements
from shipyard.registry.tracking import MODEL_ARTIFACT, ONNX_ARTIFACT, translate_errors
from shipyard.registry.view import ORPHANED, STAGE_TAG, MlflowModel, MlflowVersion

__all__ = [
    "MODEL_ARTIFACT",
    "ONNX_ARTIFACT",
    "ORPHANED",
    "STAGE_ALIASES",
    "STAGE_TAG",
    "IntegrityRefused",
    "MlflowModel",
    "MlflowVersion",
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
