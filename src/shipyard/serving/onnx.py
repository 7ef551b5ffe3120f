"""Serving a version through ONNX Runtime: the file its registration checked against scikit-learn.

The registration converts the model with skl2onnx and keeps the ONNX file only when it
answers the holdout as scikit-learn does (`shipyard.checks.equivalence`), recording its
sha256 in the evidence. The gateway serves it only when the file it loaded (checked
against the version's recorded digests, like every model file) is that one, and when
it answers the model's logged input example within the same tolerance.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from shipyard.checks.equivalence import TOLERANCE, Session
from shipyard.serving.inputs import frame_of

if TYPE_CHECKING:
    from collections.abc import Mapping

RUNTIME = "onnxruntime"


def onnx_model(
    data: bytes | None, equivalence: Mapping[str, Any] | None, model: Any, example: dict[str, Any] | None
) -> tuple[Session | None, str]:
    """The session to serve with, or None and why not (for the gateway's log line)."""
    import numpy as np

    if not equivalence:
        return None, "no serving-equivalence evidence"
    if not equivalence.get("converted"):
        return None, str(equivalence.get("reason") or "not converted")
    if data is None:
        return None, "the ONNX file is not in the model's folder"
    if hashlib.sha256(data).hexdigest() != equivalence.get("onnx_sha256"):
        return None, "the ONNX file is not the one the equivalence check kept"
    if example is None:
        return None, "the model's input example does not fit its schema, so the ONNX file cannot be checked at load"
    try:
        session = Session.of(data)
        answered = session.predict_proba(example)
        if hasattr(model, "predict_proba"):
            expected = np.asarray(model.predict_proba(frame_of(example)), dtype=np.float64)
        else:  # a regressor: its values as one column, within the tolerance of their magnitude (float32 rounds)
            expected = np.asarray(model.predict(frame_of(example)), dtype=np.float64).reshape(-1, 1)
            if answered is not None and answered.shape == expected.shape:
                answered = answered / max(1.0, float(np.abs(expected).max()))
                expected = expected / max(1.0, float(np.abs(expected).max()))
    except Exception as exc:  # onnxruntime's errors share no base class
        return None, f"the ONNX file cannot answer the input example: {type(exc).__name__}: {exc}"
    if answered is None or answered.shape != expected.shape or not np.abs(answered - expected).max() <= TOLERANCE:
        return None, "the ONNX file does not answer the input example as the model does"
    return session, "agrees with scikit-learn"
