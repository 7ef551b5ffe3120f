"""skl2onnx converters for LightGBM and XGBoost models (onnxmltools), registered once, when both are installed.

With them, a LightGBM or XGBoost estimator, alone or at the end of a scikit-learn Pipeline, converts like any
scikit-learn model, and the serving equivalence check decides whether its ONNX form is served.
"""

from __future__ import annotations

_registered = False


def register() -> list[str]:
    """Register the converters of the boosting libraries that are installed; their names."""
    global _registered
    found: list[str] = []
    try:
        from skl2onnx import update_registered_converter
        from skl2onnx.common.shape_calculator import (
            calculate_linear_classifier_output_shapes,
            calculate_linear_regressor_output_shapes,
        )
    except ImportError:
        return found
    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    try:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        if not _registered:
            update_registered_converter(
                LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes, convert_lightgbm,
                options=classifier_options,
            )  # fmt: skip
            update_registered_converter(
                LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes, convert_lightgbm,
                options={"split": None},
            )  # fmt: skip
        found.append("lightgbm")
    except ImportError:
        pass
    try:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier, XGBRegressor

        if not _registered:
            update_registered_converter(
                XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes, convert_xgboost,
                options=classifier_options,
            )  # fmt: skip
            update_registered_converter(
                XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes, convert_xgboost
            )
        found.append("xgboost")
    except ImportError:
        pass
    _registered = True
    return found
