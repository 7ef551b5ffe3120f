"""The churn model's features: a customer profile and usage, each with the time its values became known."""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING)

profile = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=timedelta(days=0),  # 0: a value stays valid until a newer one arrives
    schema=[
        Field(name="contract_type", dtype=String),
        Field(name="payment_method", dtype=String),
        Field(name="internet_service", dtype=String),
        Field(name="gender", dtype=String),
        Field(name="senior_citizen", dtype=Int64),
    ],
    source=FileSource(path="data/customer_profile.parquet", timestamp_field="event_timestamp"),
)

usage = FeatureView(
    name="customer_usage",
    entities=[customer],
    ttl=timedelta(days=0),
    schema=[
        Field(name="tenure_months", dtype=Int64),
        Field(name="monthly_charges", dtype=Float64),
        Field(name="support_calls", dtype=Int64),
    ],
    source=FileSource(path="data/customer_usage.parquet", timestamp_field="event_timestamp"),
)

churn_v1 = FeatureService(name="churn_v1", features=[profile, usage])
