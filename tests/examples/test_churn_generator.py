from __future__ import annotations

import pandas as pd
import pytest

from shipyard.examples.churn import generator
from shipyard.scaffold import EXAMPLE


def test_bundled_parquet_is_the_generator_output() -> None:
    shipped = pd.read_parquet(EXAMPLE / "churn.parquet")
    pd.testing.assert_frame_equal(generator.generate(), shipped)


def test_schema_and_seed() -> None:
    frame = generator.generate(500, seed=1)
    assert list(frame.columns) == [
        "customer_id",
        "signup_date",
        "tenure_months",
        "contract_type",
        "monthly_charges",
        "payment_method",
        "internet_service",
        "support_calls",
        "gender",
        "senior_citizen",
        "churned",
    ]
    assert frame["customer_id"].is_unique
    assert set(frame["churned"].unique()) == {0, 1}
    pd.testing.assert_frame_equal(frame, generator.generate(500, seed=1))
    assert not frame.equals(generator.generate(500, seed=2))


def test_price_rise_shifts_charges_and_churn() -> None:
    base = generator.generate(20_000, seed=5)
    risen = generator.generate(20_000, seed=5, price_rise=0.25)
    assert risen["monthly_charges"].mean() == pytest.approx(base["monthly_charges"].mean() * 1.25, rel=0.01)
    assert risen["churned"].mean() > base["churned"].mean() + 0.03


def test_contract_mix_knob() -> None:
    shifted = generator.generate(20_000, seed=5, month_to_month_share=0.9)
    share = (shifted["contract_type"] == "month-to-month").mean()
    assert share == pytest.approx(0.9, abs=0.01)


@pytest.mark.parametrize("kwargs", [{"rows": 0}, {"price_rise": 5.0}, {"month_to_month_share": 1.5}])
def test_bad_knobs_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        generator.generate(**kwargs)  # type: ignore[arg-type]
