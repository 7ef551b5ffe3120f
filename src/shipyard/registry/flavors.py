"""MLflow model flavors Shipyard loads besides scikit-learn: LightGBM, XGBoost and a generic pyfunc.

Each loads into an object with scikit-learn's calls: ``predict`` always, and ``predict_proba`` with ``classes_``
for a classifier. A native booster (``lightgbm.Booster``, ``xgboost.Booster``) is wrapped by its objective; a
scikit-learn-API model (``LGBMClassifier``, ``XGBRegressor``, …) is already such an object. A pyfunc model
only predicts: its evidence is what ``predict`` alone can give, and it must carry an input signature.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipyard.domain.errors import InvalidSpec

# In the order a model's flavors are tried: the most specific first.
KINDS = ("sklearn", "xgboost", "lightgbm", "python_function")


def model_kind(mlmodel: Mapping[str, Any], source: str) -> tuple[str, dict[str, Any]]:
    """Which flavor Shipyard loads the model with, and that flavor's MLmodel section."""
    flavors = mlmodel.get("flavors") or {}
    for kind in KINDS:
        flavor = flavors.get(kind)
        if isinstance(flavor, dict):
            if kind == "python_function" and not (mlmodel.get("signature") or {}).get("inputs"):
                raise InvalidSpec(
                    f"the pyfunc model at {source} has no input signature, so neither its evidence nor its requests "
                    "can be checked against named columns",
                    hint="Log it with a signature: mlflow.pyfunc.log_model(..., signature=infer_signature(X, y)).",
                )
            return kind, flavor
    found = ", ".join(sorted(flavors)) or "none"
    raise InvalidSpec(
        f"the model at {source} has no flavor Shipyard can load (its flavors: {found})",
        hint="Log it with mlflow.sklearn, mlflow.lightgbm, mlflow.xgboost, or mlflow.pyfunc with a signature.",
    )


def serialization_format(kind: str, flavor: Mapping[str, Any], default: str) -> str:
    if kind == "sklearn":
        return str(flavor.get("serialization_format") or default)
    if kind == "xgboost":
        return f"xgboost-{flavor.get('model_format') or 'xgb'}"
    if kind == "lightgbm":
        # mlflow.lightgbm saves a Booster as LightGBM's text format, a scikit-learn-API model as a pickle.
        return "lightgbm-text" if str(flavor.get("model_class", "")).endswith("Booster") else "pickle"
    return "pyfunc"


def untrusted_reason(kind: str, flavor: Mapping[str, Any], fmt: str) -> str | None:
    """Why loading this non-scikit-learn model could run code from its files; None when it cannot."""
    if kind == "python_function":
        return "a pyfunc model is Python code (its loader module and pickled objects) that loading runs"
    if fmt == "pickle":
        return "it is saved as pickle, and loading pickle runs whatever code the file holds"
    return None


def load(kind: str, folder: Path) -> Any:
    if kind == "xgboost":
        import mlflow.xgboost

        return _wrapped(mlflow.xgboost.load_model(str(folder)))
    if kind == "lightgbm":
        import mlflow.lightgbm

        return _wrapped(mlflow.lightgbm.load_model(str(folder)))
    import mlflow.pyfunc

    return PyfuncModel(mlflow.pyfunc.load_model(str(folder)))


def _wrapped(model: Any) -> Any:
    if hasattr(model, "predict_proba") or type(model).__name__ != "Booster":
        return model  # a scikit-learn-API model
    objective, classes = _objective(model)
    names = _feature_names(model)
    if objective.startswith(("binary", "multi")):
        return BoosterClassifier(model, names, classes)
    return BoosterRegressor(model, names)


def _objective(booster: Any) -> tuple[str, int]:
    module = type(booster).__module__
    if module.startswith("lightgbm"):
        dumped = booster.dump_model(num_iteration=0)
        objective = str(dumped.get("objective", "regression")).split()[0]
        return objective, int(dumped.get("num_class", 1)) if objective.startswith("multi") else 2
    config = json.loads(booster.save_config())
    objective = str(config["learner"]["objective"]["name"])
    classes = int(config["learner"]["learner_model_param"].get("num_class", "0") or 0)
    return objective, classes if objective.startswith("multi") else 2


def _feature_names(booster: Any) -> list[str] | None:
    names = booster.feature_name() if hasattr(booster, "feature_name") else getattr(booster, "feature_names", None)
    return [str(n) for n in names] if names else None


class _Booster:
    def __init__(self, booster: Any, names: list[str] | None) -> None:
        import numpy as np

        self.booster = booster
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)

    def _raw(self, frame: Any) -> Any:
        import numpy as np

        if type(self.booster).__module__.startswith("xgboost"):
            import xgboost

            return np.asarray(self.booster.predict(xgboost.DMatrix(frame, enable_categorical=True)))
        return np.asarray(self.booster.predict(frame))


class BoosterRegressor(_Booster):
    """A native booster trained for a regression objective, with scikit-learn's ``predict``."""

    def predict(self, frame: Any) -> Any:
        return self._raw(frame)


class BoosterClassifier(_Booster):
    """A native booster trained for a classification objective: classes are 0 … n-1, as it was trained on."""

    def __init__(self, booster: Any, names: list[str] | None, classes: int) -> None:
        import numpy as np

        super().__init__(booster, names)
        self.classes_ = np.arange(classes)

    def predict_proba(self, frame: Any) -> Any:
        import numpy as np

        raw = self._raw(frame)
        if raw.ndim == 1:  # a binary objective answers the positive class's probability
            return np.column_stack([1.0 - raw, raw])
        return raw

    def predict(self, frame: Any) -> Any:
        return self.classes_[self.predict_proba(frame).argmax(axis=1)]


class PyfuncModel:
    """A generic MLflow pyfunc model: ``predict`` only, its inputs named by its signature."""

    def __init__(self, model: Any) -> None:
        import numpy as np

        self.model = model
        schema = model.metadata.get_input_schema()
        names = schema.input_names() if schema is not None else []
        if names:
            self.feature_names_in_ = np.asarray([str(n) for n in names], dtype=object)

    def predict(self, frame: Any) -> Any:
        import numpy as np

        answered = self.model.predict(frame)
        values = answered.to_numpy() if hasattr(answered, "to_numpy") else np.asarray(answered)
        return values.reshape(len(values), -1)[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values
