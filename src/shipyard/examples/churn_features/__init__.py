"""The churn example as a Feast repository: the same customers, their features in two timestamped feature views."""

from __future__ import annotations

from pathlib import Path

PROFILE = ["contract_type", "payment_method", "internet_service", "gender", "senior_citizen"]
USAGE = ["tenure_months", "monthly_charges", "support_calls"]


def write_data(project: Path, churn: Path) -> None:
    """The feature views' sources under feature_repo/data/ and the entity file of labels under data/.

    Each feature row becomes known shortly before the label's time, so the point-in-time join finds it.
    """
    import pandas as pd

    frame = pd.read_parquet(churn)
    known = pd.to_datetime(frame["signup_date"]).dt.tz_localize("UTC")
    sources = project / "feature_repo" / "data"
    sources.mkdir(parents=True, exist_ok=True)
    profile = frame[["customer_id", *PROFILE]].assign(event_timestamp=known - pd.Timedelta(days=1))
    profile.to_parquet(sources / "customer_profile.parquet", index=False)
    usage = frame[["customer_id", *USAGE]].assign(event_timestamp=known - pd.Timedelta(hours=1))
    usage.to_parquet(sources / "customer_usage.parquet", index=False)
    labels = frame[["customer_id", "signup_date", "churned"]].assign(signup_date=known)
    (project / "data").mkdir(exist_ok=True)
    labels.to_parquet(project / "data" / "labels.parquet", index=False)
