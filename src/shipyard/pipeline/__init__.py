"""The governed pipeline: training with the project's `train()` (``training``), adopting a run trained
elsewhere (``adoption``), and collecting a registered version's evidence again (``evidence``).

Neither writes Shipyard's store: the service registers what they hand it and stores evidence.
"""

from __future__ import annotations

from shipyard.pipeline.adoption import adopt
from shipyard.pipeline.evidence import PROFILE_ARTIFACT, refresh_evidence
from shipyard.pipeline.prepare import Prepared, Split, check_binary_target, feature_columns, prepare, split
from shipyard.pipeline.registration import (
    GitInfo,
    PipelineResult,
    Register,
    Registration,
    StepReporter,
    git_info,
    is_commit,
    no_progress,
)
from shipyard.pipeline.training import load_train_function, run, train_and_log

__all__ = [
    "PROFILE_ARTIFACT",
    "GitInfo",
    "PipelineResult",
    "Prepared",
    "Register",
    "Registration",
    "Split",
    "StepReporter",
    "adopt",
    "check_binary_target",
    "feature_columns",
    "git_info",
    "is_commit",
    "load_train_function",
    "no_progress",
    "prepare",
    "refresh_evidence",
    "run",
    "split",
    "train_and_log",
]
