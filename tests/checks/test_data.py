from __future__ import annotations

import json
from collections.abc import Callable
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pydantic
import pytest

from shipyard.checks.data import ColumnConstraint, infer_schema, load_schema, validate
from shipyard.domain.errors import InvalidSpec
from shipyard.examples.churn.generator import generate

ROWS = 1000


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return generate(ROWS, seed=3)


@pytest.fixture(scope="module")
def schema(reference: pd.DataFrame) -> dict[str, Any]:
    return infer_schema(reference, id_column="customer_id")


def range_label(frame: pd.DataFrame, column: str) -> str:
    return f"in_range({float(frame[column].min())}, {float(frame[column].max())})"


def dtype_label(schema: dict[str, Any], column: str) -> str:
    return f"dtype('{schema['columns'][column]['dtype']}')"


def test_generated_data_passes_its_own_schema(reference: pd.DataFrame, schema: dict[str, Any]) -> None:
    assert validate(schema, reference) == {"passed": True, "rows": ROWS, "failing_rows": 0, "violations": []}


def test_inferred_schema_holds_ranges_categories_and_id(reference: pd.DataFrame, schema: dict[str, Any]) -> None:
    columns = schema["columns"]
    assert set(columns) == set(reference.columns)
    assert columns["contract_type"]["isin"] == ["month-to-month", "one-year", "two-year"]
    assert columns["gender"]["isin"] == ["female", "male"]
    assert columns["tenure_months"]["in_range"]["min_value"] == reference["tenure_months"].min()
    assert columns["monthly_charges"]["in_range"]["max_value"] == reference["monthly_charges"].max()
    assert columns["customer_id"]["unique"] is True
    assert "isin" not in columns["customer_id"]
    # New data is newer: a date range inferred from the reference would fail every later batch.
    assert set(columns["signup_date"]) == {"dtype"}
    assert columns["signup_date"]["dtype"].startswith("datetime64")


def test_max_categories_limits_the_isin_check(reference: pd.DataFrame) -> None:
    columns = infer_schema(reference, max_categories=2)["columns"]
    assert "isin" in columns["gender"]
    assert "isin" not in columns["contract_type"]
    assert "unique" not in columns["customer_id"]


def test_schema_round_trip(reference: pd.DataFrame, schema: dict[str, Any]) -> None:
    stored = json.loads(json.dumps(schema))
    loaded = load_schema(stored)
    assert json.loads(loaded.to_json()) == schema
    assert str(loaded.columns["signup_date"].dtype).startswith("datetime64")
    assert loaded.columns["customer_id"].unique
    assert validate(stored, reference)["passed"]
    as_text = reference.assign(signup_date=reference["signup_date"].dt.strftime("%Y-%m-%d"))
    result = validate(stored, as_text)
    assert [(v["column"], v["check"]) for v in result["violations"]] == [("signup_date", dtype_label(schema, "signup_date"))]


def test_text_passes_whether_stored_as_object_or_str(reference: pd.DataFrame) -> None:
    as_object = reference.astype({"contract_type": object, "gender": object})
    from_object = infer_schema(as_object)
    assert from_object["columns"]["gender"]["dtype"] == infer_schema(reference)["columns"]["gender"]["dtype"]
    assert validate(from_object, reference)["passed"]
    assert validate(infer_schema(reference), as_object)["passed"]


def _set(column: str, rows: list[int], value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def damage(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[rows, column] = value
        return frame

    return damage


def _mixed_types(frame: pd.DataFrame) -> pd.DataFrame:
    values = frame["payment_method"].astype(object)
    values[4] = 7
    return frame.assign(payment_method=values)


class Scenario(NamedTuple):
    damage: Callable[[pd.DataFrame], pd.DataFrame]
    violations: Callable[[pd.DataFrame, dict[str, Any]], list[dict[str, Any]]]  # from the reference and its schema
    failing_rows: int


SCENARIOS: dict[str, Scenario] = {
    "nulls": Scenario(
        _set("monthly_charges", [3, 10, 11], np.nan),
        lambda ref, s: [{"column": "monthly_charges", "check": "not_nullable", "failures": 3, "examples": [None]}],
        3,
    ),
    "null_dates": Scenario(
        _set("signup_date", [5], pd.NaT),
        lambda ref, s: [{"column": "signup_date", "check": "not_nullable", "failures": 1, "examples": [None]}],
        1,
    ),
    "out_of_range": Scenario(
        lambda f: _set("tenure_months", [1, 2], 500)(_set("tenure_months", [6], -3)(f)),
        lambda ref, s: [
            {"column": "tenure_months", "check": range_label(ref, "tenure_months"), "failures": 3, "examples": [500, -3]}
        ],
        3,
    ),
    "unseen_category": Scenario(
        _set("contract_type", [7, 8], "weekly"),
        lambda ref, s: [{"column": "contract_type", "check": "isin", "failures": 2, "examples": ["weekly"]}],
        2,
    ),
    "duplicated_id": Scenario(
        _set("customer_id", [4, 5], "C0000001"),
        lambda ref, s: [{"column": "customer_id", "check": "unique", "failures": 2, "examples": ["C0000001"]}],
        2,
    ),
    "missing_column": Scenario(
        lambda f: f.drop(columns=["gender"]),
        lambda ref, s: [{"column": "gender", "check": "column_in_dataframe", "failures": ROWS, "examples": []}],
        ROWS,
    ),
    "wrong_dtype": Scenario(
        lambda f: f.assign(support_calls=f["support_calls"].astype("float64")),
        lambda ref, s: [
            {"column": "support_calls", "check": dtype_label(s, "support_calls"), "failures": ROWS, "examples": ["float64"]}
        ],
        ROWS,
    ),
    "mixed_types_in_an_object_column": Scenario(
        _mixed_types,
        lambda ref, s: [
            {"column": "payment_method", "check": dtype_label(s, "payment_method"), "failures": 1, "examples": [7]},
            {"column": "payment_method", "check": "isin", "failures": 1, "examples": [7]},
        ],
        1,
    ),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_injected_problem_is_reported(name: str, reference: pd.DataFrame, schema: dict[str, Any]) -> None:
    damage, expected, failing_rows = SCENARIOS[name]
    result = validate(schema, damage(reference.copy()))
    assert result["violations"] == expected(reference, schema)
    assert result["failing_rows"] == failing_rows
    assert result["passed"] is False
    assert result["rows"] == ROWS
    json.dumps(result, allow_nan=False)


def test_all_problems_are_reported_at_once(reference: pd.DataFrame, schema: dict[str, Any]) -> None:
    damaged = reference.copy()
    for damage, _, _ in SCENARIOS.values():
        damaged = damage(damaged)
    result = validate(schema, damaged)
    expected = [v for _, make, _ in SCENARIOS.values() for v in make(reference, schema)]
    key = itemgetter("column", "check")
    assert sorted(result["violations"], key=key) == sorted(expected, key=key)
    # A missing column or a wrong dtype makes every row fail.
    assert result["failing_rows"] == ROWS
    json.dumps(result, allow_nan=False)


def test_failing_rows_counts_each_row_once_by_position(reference: pd.DataFrame, schema: dict[str, Any]) -> None:
    damaged = reference.copy()
    damaged.loc[[3, 10], "monthly_charges"] = np.nan
    damaged.loc[[3, 4], "tenure_months"] = 999
    damaged.index = [0] * len(damaged)  # labels that say nothing about which row is which
    result = validate(schema, damaged)
    assert result["failing_rows"] == 3
    assert sum(v["failures"] for v in result["violations"]) == 4


def test_examples_are_distinct_and_capped(reference: pd.DataFrame, schema: dict[str, Any]) -> None:
    damaged = reference.copy()
    damaged.loc[0:9, "monthly_charges"] = [500.0 + i for i in range(10)]
    damaged.loc[10:19, "monthly_charges"] = 500.0
    violation = validate(schema, damaged, max_examples=3)["violations"][0]
    assert violation["failures"] == 20
    assert violation["examples"] == [500.0, 501.0, 502.0]


def test_price_rise_fails_the_reference_range(reference: pd.DataFrame, schema: dict[str, Any]) -> None:
    risen = generate(ROWS, seed=4, price_rise=0.3)
    result = validate(schema, risen)
    high = risen["monthly_charges"] > reference["monthly_charges"].max()
    assert result["violations"] == [
        {
            "column": "monthly_charges",
            "check": range_label(reference, "monthly_charges"),
            "failures": int(high.sum()),
            "examples": risen.loc[high, "monthly_charges"].drop_duplicates().head(5).tolist(),
        }
    ]
    assert result["failing_rows"] == int(high.sum()) > 0


def test_constraints_add_checks(reference: pd.DataFrame, schema: dict[str, Any]) -> None:
    frame = reference.assign(region="north")
    constraints = {
        "monthly_charges": ColumnConstraint(max=100.0),
        "payment_method": ColumnConstraint(allowed=["credit card", "bank transfer"]),
        "tenure_months": ColumnConstraint(unique=True),
        "region": ColumnConstraint(allowed=["north", "south"], nullable=False),
        "loyalty_tier": ColumnConstraint(min=0),
    }
    result = validate(schema, frame, constraints)
    found = {(v["column"], v["check"]): v for v in result["violations"]}
    assert set(found) == {
        ("monthly_charges", "less_than_or_equal_to(100.0)"),
        ("payment_method", "allowed"),
        ("tenure_months", "unique"),
        ("loyalty_tier", "column_in_dataframe"),
    }
    over = frame.loc[frame["monthly_charges"] > 100.0, "monthly_charges"]
    assert found["monthly_charges", "less_than_or_equal_to(100.0)"]["failures"] == len(over)
    assert found["monthly_charges", "less_than_or_equal_to(100.0)"]["examples"] == over.drop_duplicates().head(5).tolist()
    others = ~frame["payment_method"].isin(["credit card", "bank transfer"])
    assert found["payment_method", "allowed"]["failures"] == int(others.sum())
    assert set(found["payment_method", "allowed"]["examples"]) == {"electronic check", "mailed check"}
    # unique counts the repeats, not the first occurrence of each value.
    assert found["tenure_months", "unique"]["failures"] == ROWS - frame["tenure_months"].nunique()
    assert found["loyalty_tier", "column_in_dataframe"] == {
        "column": "loyalty_tier",
        "check": "column_in_dataframe",
        "failures": ROWS,
        "examples": [],
    }


def test_constraints_can_relax_nullability(reference: pd.DataFrame, schema: dict[str, Any]) -> None:
    damaged = reference.copy()
    damaged.loc[[1, 2], "monthly_charges"] = np.nan
    assert not validate(schema, damaged)["passed"]
    assert validate(schema, damaged, {"monthly_charges": ColumnConstraint(nullable=True)})["passed"]


def test_a_range_on_text_is_reported_not_raised(reference: pd.DataFrame, schema: dict[str, Any]) -> None:
    result = validate(schema, reference, {"gender": ColumnConstraint(min=0, max=1)})
    [violation] = result["violations"]
    assert (violation["column"], violation["check"], violation["failures"]) == ("gender", "in_range(0.0, 1.0)", ROWS)
    assert "TypeError" in violation["examples"][0]


def test_column_constraint_refuses_bad_specs() -> None:
    with pytest.raises(pydantic.ValidationError, match="min"):
        ColumnConstraint(min=5, max=1)
    with pytest.raises(pydantic.ValidationError):
        ColumnConstraint.model_validate({"maximum": 3})
    with pytest.raises(pydantic.ValidationError):
        ColumnConstraint(allowed=[])
    assert ColumnConstraint.model_validate({"allowed": [True, 2, "x"]}).allowed == [True, 2, "x"]


def test_bad_inputs_raise_invalid_spec(reference: pd.DataFrame, schema: dict[str, Any]) -> None:
    with pytest.raises(InvalidSpec, match=r"'account_id'.*customer_id"):
        infer_schema(reference, id_column="account_id")
    with pytest.raises(InvalidSpec, match="schema_type"):
        load_schema({"columns": {}})
    with pytest.raises(InvalidSpec, match="cannot be loaded"):
        load_schema({"schema_type": "dataframe", "columns": {"a": {"dtype": "no-such-dtype"}}})
    with pytest.raises(InvalidSpec, match="DataFrame"):
        validate(schema, reference.to_dict())
