"""A plain logistic regression on the arrest records; colour is a feature, as in the data."""

from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

TARGET = "released"
CATEGORICAL = ["colour", "sex", "employed", "citizen"]
NUMERIC = ["age", "checks"]


def train(frame):
    features = frame.drop(columns=[TARGET])
    model = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [
                        ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                        ("numeric", StandardScaler(), NUMERIC),
                    ]
                ),
            ),
            ("classify", LogisticRegression(max_iter=1000)),
        ]
    )
    return model.fit(features, frame[TARGET])
