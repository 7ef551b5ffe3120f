"""The linear pipeline answered by scikit-learn and by ONNX Runtime, as the gateway calls each, and what the
registration's serving-equivalence check costs against its budget.

The pipeline is the issue's: StandardScaler + PolynomialFeatures(2) on the churn data's numeric
columns, OneHotEncoder on its categorical ones, LogisticRegression. scikit-learn answers a one-row
frame (`LoadedModel` without a fast path); ONNX Runtime answers the same row fed by
`shipyard.checks.equivalence.Session` (what the gateway runs). Median time per call over
interleaved rounds, and the ratio.

    .venv/bin/python benchmarks/onnx_serving.py [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as `shipyard serve` runs

from importlib.resources import files

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler

from shipyard.checks import equivalence
from shipyard.serving.inputs import frame_of

CATEGORICAL = ["contract_type", "payment_method", "internet_service", "gender"]
NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "senior_citizen"]


def linear() -> Pipeline:
    numeric = Pipeline([("scale", StandardScaler()), ("poly", PolynomialFeatures(2))])
    encode = ColumnTransformer(
        [("numeric", numeric, NUMERIC), ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)]
    )
    return Pipeline([("encode", encode), ("classify", LogisticRegression(max_iter=1000))])


def churn_template() -> Pipeline:
    encode = ColumnTransformer([("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)], remainder="passthrough")
    classify = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.08, max_depth=4, random_state=0)
    return Pipeline([("encode", encode), ("classify", classify)])


def per_call(predict: object, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        predict()  # type: ignore[operator]
    return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    data = pd.read_parquet(str(files("shipyard.examples.churn") / "churn.parquet"))
    data = data.sort_values("signup_date").reset_index(drop=True)
    split = int(len(data) * 0.8)  # the churn project's holdout: the most recent 20%
    train, holdout = data.iloc[:split], data.iloc[split:].reset_index(drop=True)
    features = NUMERIC + CATEGORICAL

    print(f"registration check on {len(holdout)} holdout rows (budget {equivalence.BUDGET_SECONDS:g} s):")
    for name, make in (("linear pipeline", linear), ("churn template (gradient boosting)", churn_template)):
        model = make().fit(train[features], train["churned"])
        found = equivalence.check(model, holdout[features])
        verdict = "kept" if found.evidence["converted"] else f"not kept: {found.evidence['reason'][:90]}"
        print(f"  {name:36s} {found.evidence['seconds']:.3f} s  {verdict}")
        if make is linear:
            kept, pipeline = found, model
    assert kept.onnx is not None, kept.evidence
    print(f"  max probability difference {kept.evidence['max_probability_difference']:.2e} (tolerance {equivalence.TOLERANCE:g})")

    session = equivalence.Session.of(kept.onnx)
    row = {k: np.asarray(v) for k, v in equivalence.columns_of(holdout[features].head(1)).items()}
    frame = frame_of(row)
    sklearn_times, onnx_times = [], []
    for _ in range(args.rounds):
        sklearn_times.append(per_call(lambda: pipeline.predict_proba(frame), args.calls // 10))
        onnx_times.append(per_call(lambda: session.predict_proba(row), args.calls))
    sk, ox = statistics.median(sklearn_times), statistics.median(onnx_times)
    print(f"\none row, median of {args.rounds} rounds:")
    print(f"  scikit-learn (frame)  {sk * 1e3:8.3f} ms")
    print(f"  onnxruntime           {ox * 1e3:8.3f} ms")
    print(f"  ratio                 {sk / ox:8.1f}x")


if __name__ == "__main__":
    main()
