"""A seeded telco churn data generator with knobs that shift the population.

``generate()`` with the same arguments returns the same frame, row for row;
the bundled ``churn.parquet`` is ``generate()`` with the defaults. The knobs
(``price_rise``, ``month_to_month_share``) move the population later, so
monitoring has real drift to find.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

CONTRACTS = ("month-to-month", "one-year", "two-year")
CONTRACT_SHARES = (0.55, 0.25, 0.20)
PAYMENTS = ("electronic check", "mailed check", "bank transfer", "credit card")
INTERNET = ("dsl", "fiber optic", "none")
DEFAULT_ROWS = 20_000
DEFAULT_SEED = 7

# One new customer, as a prediction request carries it (the model's input columns).
SAMPLE_CUSTOMER = {
    "tenure_months": 3,
    "contract_type": "month-to-month",
    "monthly_charges": 80.5,
    "payment_method": "electronic check",
    "internet_service": "fiber optic",
    "support_calls": 2,
    "gender": "female",
    "senior_citizen": 0,
}


def generate(
    rows: int = DEFAULT_ROWS,
    *,
    seed: int = DEFAULT_SEED,
    start: date = date(2023, 1, 1),
    end: date = date(2025, 6, 30),
    price_rise: float = 0.0,
    month_to_month_share: float | None = None,
    id_offset: int = 0,
) -> pd.DataFrame:
    """Customers who signed up between ``start`` and ``end``, with whether they churned.

    ``price_rise`` raises monthly charges by that fraction (0.15 = +15%) and
    churn follows the higher price; ``month_to_month_share`` changes the
    contract mix. Both default to the reference population.
    """
    import numpy as np
    import pandas as pd

    if rows <= 0:
        raise ValueError(f"rows must be positive, got {rows}")
    if not -0.5 < price_rise < 2.0:
        raise ValueError(f"price_rise must be between -0.5 and 2.0, got {price_rise}")
    rng = np.random.default_rng(seed)

    days = (end - start).days
    signup = pd.Timestamp(start) + pd.to_timedelta(np.sort(rng.integers(0, days + 1, rows)), unit="D")
    tenure = np.clip(rng.gamma(shape=2.0, scale=14.0, size=rows).round().astype(np.int64), 1, 72)

    shares = np.array(CONTRACT_SHARES)
    if month_to_month_share is not None:
        if not 0.0 <= month_to_month_share <= 1.0:
            raise ValueError(f"month_to_month_share must be within [0, 1], got {month_to_month_share}")
        rest = shares[1:] / shares[1:].sum() * (1.0 - month_to_month_share)
        shares = np.concatenate([[month_to_month_share], rest])
    contract = rng.choice(len(CONTRACTS), size=rows, p=shares)
    internet = rng.choice(len(INTERNET), size=rows, p=(0.35, 0.45, 0.20))
    payment = rng.choice(len(PAYMENTS), size=rows, p=(0.35, 0.20, 0.22, 0.23))
    senior = rng.random(rows) < 0.16
    gender = rng.choice(np.array(["female", "male"]), size=rows)

    base_charge = np.array([45.0, 80.0, 20.0])[internet] + rng.normal(0.0, 12.0, rows) + 0.15 * tenure
    charges = np.round(np.clip(base_charge, 18.0, 130.0) * (1.0 + price_rise), 2)
    support_calls = rng.poisson(np.where(internet == 1, 1.6, 0.9))

    logit = (
        -1.6
        + np.array([1.3, -0.4, -1.4])[contract]
        - 0.035 * tenure
        + 0.022 * (charges - 65.0)
        + 0.30 * support_calls
        + np.array([0.45, 0.0, -0.15, -0.2])[payment]
        + np.array([0.0, 0.35, -0.4])[internet]
        + 0.35 * senior
    )
    churned = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))

    return pd.DataFrame(
        {
            "customer_id": [f"C{id_offset + i:07d}" for i in range(1, rows + 1)],
            "signup_date": signup.astype("datetime64[us]"),
            "tenure_months": tenure,
            "contract_type": np.array(CONTRACTS)[contract],
            "monthly_charges": charges,
            "payment_method": np.array(PAYMENTS)[payment],
            "internet_service": np.array(INTERNET)[internet],
            "support_calls": support_calls.astype(np.int64),
            "gender": gender,
            "senior_citizen": senior.astype(np.int64),
            "churned": churned.astype(np.int64),
        }
    )


def write(path: str, **kwargs: object) -> None:
    """Write ``generate(**kwargs)`` to Parquet (this is how churn.parquet was made)."""
    generate(**kwargs).to_parquet(path, index=False)  # type: ignore[arg-type]


if __name__ == "__main__":  # python -m shipyard.examples.churn.generator OUT.parquet
    import sys

    write(sys.argv[1] if len(sys.argv) > 1 else "churn.parquet")
