"""A multinomial logistic regression on the penguin measurements."""

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

TARGET = "species"
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def train(frame):
    features = frame.drop(columns=[TARGET])
    model = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [
                        ("island", OneHotEncoder(handle_unknown="ignore"), ["island"]),
                        ("numeric", Pipeline([("fill", SimpleImputer()), ("scale", StandardScaler())]), NUMERIC),
                    ]
                ),
            ),
            ("classify", LogisticRegression(max_iter=1000)),
        ]
    )
    return model.fit(features, frame[TARGET])
