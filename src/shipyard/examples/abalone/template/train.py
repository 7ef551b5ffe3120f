"""A gradient-boosted regressor on the abalone measurements."""

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

TARGET = "rings"


def train(frame):
    features = frame.drop(columns=[TARGET])
    model = Pipeline(
        [
            (
                "encode",
                ColumnTransformer([("sex", OneHotEncoder(handle_unknown="ignore"), ["sex"])], remainder="passthrough"),
            ),
            ("regress", HistGradientBoostingRegressor(max_iter=150, learning_rate=0.05, random_state=0)),
        ]
    )
    return model.fit(features, frame[TARGET])
