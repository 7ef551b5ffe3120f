"""Training code for the churn model: a plain function from a frame to a fitted model.

Shipyard calls ``train(frame)`` with the training rows (feature columns plus
the target ``churned``), then evaluates, logs and registers what it returns.
"""

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

TARGET = "churned"
CATEGORICAL = ["contract_type", "payment_method", "internet_service", "gender"]


def train(frame):
    features = frame.drop(columns=[TARGET])
    model = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)],
                    remainder="passthrough",
                ),
            ),
            ("classify", HistGradientBoostingClassifier(max_iter=150, learning_rate=0.08, max_depth=4, random_state=0)),
        ]
    )
    return model.fit(features, frame[TARGET])
