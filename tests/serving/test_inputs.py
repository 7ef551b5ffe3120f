"""Decoding and validating prediction requests, building batch frames, encoding V2 responses."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from shipyard.domain.errors import InvalidSpec, ShipyardError
from shipyard.serving.inputs import (
    Decoded,
    Field,
    InputSchema,
    InvalidInput,
    build_frame,
    decode_v1,
    decode_v2,
    encode_v2_response,
)

CONTRACTS = frozenset({"month-to-month", "one-year", "two-year"})

SCHEMA = InputSchema(
    (
        Field("tenure_months", "long"),
        Field("monthly_charges", "double"),
        Field("contract_type", "string", allowed=CONTRACTS),
        Field("gender", "string"),
        Field("paperless", "boolean"),
        Field("signup", "datetime"),
        Field("discount", "double", required=False),
        Field("referrals", "long", required=False),
        Field("coupon", "string", required=False),
        Field("autopay", "boolean", required=False),
    )
)

ROWS: list[dict[str, Any]] = [
    {
        "tenure_months": 12,
        "monthly_charges": 70.5,
        "contract_type": "one-year",
        "gender": "female",
        "paperless": True,
        "signup": "2024-03-01T10:00:00",
        "discount": 0.1,
        "referrals": 2,
        "coupon": "SPRING",
        "autopay": False,
    },
    {
        "tenure_months": 1,
        "monthly_charges": 20,
        "contract_type": "month-to-month",
        "gender": "male",
        "paperless": False,
        "signup": "2024-03-02",
        "discount": None,
        "referrals": None,
        "coupon": None,
        "autopay": None,
    },
]

EXPECTED_COLUMNS: dict[str, list[Any]] = {
    "tenure_months": [12, 1],
    "monthly_charges": [70.5, 20.0],
    "contract_type": ["one-year", "month-to-month"],
    "gender": ["female", "male"],
    "paperless": [True, False],
    "signup": [datetime(2024, 3, 1, 10), datetime(2024, 3, 2)],
    "discount": [0.1, None],
    "referrals": [2, None],
    "coupon": ["SPRING", None],
    "autopay": [False, None],
}

V2_DATATYPES = {"long": "INT64", "double": "FP64", "string": "BYTES", "boolean": "BOOL", "datetime": "BYTES"}


def dumps(doc: object) -> bytes:
    return json.dumps(doc).encode()


def records(rows: list[dict[str, Any]] = ROWS) -> bytes:
    return dumps({"instances": rows})


def columns(rows: list[dict[str, Any]] = ROWS, **changes: Any) -> bytes:
    cols = {name: [row[name] for row in rows] for name in rows[0]}
    cols.update(changes)
    return dumps({"inputs": cols})


def v2(rows: list[dict[str, Any]] = ROWS, *, nested: bool = False, **changes: Any) -> bytes:
    tensors = []
    for f in SCHEMA.fields:
        data = [row[f.name] for row in rows]
        tensor = {"name": f.name, "shape": [len(data), 1] if nested else [len(data)], "datatype": V2_DATATYPES[f.type]}
        tensor["data"] = [[v] for v in data] if nested else data
        tensor.update(changes.get(f.name, {}))
        tensors.append(tensor)
    return dumps({"id": "req-1", "parameters": {"explain": False}, "inputs": tensors})


def one(**changes: Any) -> dict[str, Any]:
    return {**ROWS[0], **changes}


def assert_same_columns(decoded: Decoded) -> None:
    assert list(decoded.columns) == [f.name for f in SCHEMA.fields]
    assert decoded.columns == EXPECTED_COLUMNS
    assert decoded.rows == 2


# --- round trips --------------------------------------------------------------------------------


def test_v1_records_columns_and_split_decode_to_the_same_columns() -> None:
    names = list(ROWS[0])
    split = dumps({"dataframe_split": {"columns": names, "data": [[row[n] for n in names] for row in ROWS]}})
    for body in (records(), columns(), split, dumps({"dataframe_records": ROWS})):
        decoded = decode_v1(body, SCHEMA)
        assert_same_columns(decoded)
        assert decoded.request_id is None
        assert decoded.parameters == {}


def test_v1_keeps_params_and_schema_order_whatever_the_request_order() -> None:
    reordered = [dict(reversed(list(row.items()))) for row in ROWS]
    decoded = decode_v1(dumps({"instances": reordered, "params": {"threshold": 0.3}}), SCHEMA)
    assert_same_columns(decoded)
    assert decoded.parameters == {"threshold": 0.3}


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_v2_decodes_flat_and_nested_tensors(nested: bool) -> None:
    decoded = decode_v2(v2(nested=nested), SCHEMA)
    assert_same_columns(decoded)
    assert decoded.request_id == "req-1"
    assert decoded.parameters == {"explain": False}


def test_v2_nested_data_may_come_with_a_flat_shape() -> None:
    body = v2(tenure_months={"shape": [2], "data": [[12], [1]]})
    assert decode_v2(body, SCHEMA).columns["tenure_months"] == [12, 1]


def test_optional_columns_may_be_left_out() -> None:
    required = [{k: v for k, v in row.items() if SCHEMA.by_name[k].required} for row in ROWS]
    for body in (records(required), columns(required)):
        decoded = decode_v1(body, SCHEMA)
        assert list(decoded.columns) == [f.name for f in SCHEMA.fields]
        assert decoded.columns["discount"] == [None, None]
        assert decoded.columns["coupon"] == [None, None]


def test_records_may_leave_an_optional_key_out_of_some_rows() -> None:
    rows = [ROWS[0], {k: v for k, v in ROWS[1].items() if k != "coupon"}]
    assert decode_v1(records(rows), SCHEMA).columns["coupon"] == ["SPRING", None]


def test_integer_fields_take_integral_floats_and_double_fields_take_ints() -> None:
    decoded = decode_v1(columns(tenure_months=[3.0, 4], monthly_charges=[70, 1.5]), SCHEMA)
    assert decoded.columns["tenure_months"] == [3, 4]
    assert all(type(v) is int for v in decoded.columns["tenure_months"])
    assert decoded.columns["monthly_charges"] == [70.0, 1.5]
    assert all(type(v) is float for v in decoded.columns["monthly_charges"])
    body = v2(tenure_months={"datatype": "FP64", "data": [3.0, 4.0]}, monthly_charges={"datatype": "INT64", "data": [70, 2]})
    decoded = decode_v2(body, SCHEMA)
    assert decoded.columns["tenure_months"] == [3, 4]
    assert decoded.columns["monthly_charges"] == [70.0, 2.0]


def test_optional_fields_take_null_and_nan_as_missing() -> None:
    body = columns(discount=[float("nan"), None], referrals=[float("nan"), None], autopay=[None, None])
    decoded = decode_v1(body, SCHEMA)
    assert decoded.columns["discount"] == [None, None]
    assert decoded.columns["referrals"] == [None, None]


def test_datetimes_with_a_zone_are_kept_in_utc() -> None:
    decoded = decode_v1(columns(signup=["2024-03-01T10:00:00+02:00", "2024-03-01T10:00:00Z"]), SCHEMA)
    assert decoded.columns["signup"] == [datetime(2024, 3, 1, 8), datetime(2024, 3, 1, 10)]


def test_categories_are_enforced_only_when_allowed_is_set() -> None:
    open_schema = InputSchema(tuple(Field(f.name, f.type, f.required) for f in SCHEMA.fields))
    body = columns(contract_type=["lifetime", "one-year"])
    assert decode_v1(body, open_schema).columns["contract_type"] == ["lifetime", "one-year"]
    with pytest.raises(InvalidInput, match="unknown category 'lifetime'"):
        decode_v1(body, SCHEMA)
    # with_categories applies to a field that had none.
    with pytest.raises(InvalidInput, match="unknown category 'x'"):
        decode_v1(columns(gender=["x", "male"]), SCHEMA.with_categories({"gender": ["female", "male"]}))


# --- bad inputs ---------------------------------------------------------------------------------

BAD: list[tuple[str, Callable[..., Any], bytes, int, str | None, str]] = [
    ("malformed json", decode_v1, b'{"instances": [', 400, None, "malformed JSON: Expecting value at line 1 column 16 (char 15)"),
    ("empty body", decode_v1, b"", 400, None, "malformed JSON: Expecting value at line 1 column 1 (char 0)"),
    ("not utf-8", decode_v1, b'{"instances": ["\xff"]}', 400, None, "the body is not UTF-8 text"),
    ("body is a list", decode_v1, b"[1, 2]", 400, None, "the body must be a JSON object, got list"),
    ("no form", decode_v1, dumps({"rows": []}), 400, None, "exactly one of instances, dataframe_records, inputs"),
    ("two forms", decode_v1, dumps({"instances": ROWS, "inputs": {}}), 400, None, "(got instances, inputs)"),
    ("unknown top-level key", decode_v1, dumps({"instances": ROWS, "extra": 1}), 400, None, "unknown keys 'extra'"),
    ("params not an object", decode_v1, dumps({"instances": ROWS, "params": [1]}), 400, None, '"params" must be an object'),
    ("instances not a list", decode_v1, dumps({"instances": ROWS[0]}), 400, None, '"instances" must be a list of records'),
    (
        "record not an object",
        decode_v1,
        dumps({"instances": [ROWS[0], [1, 2]]}),
        400,
        None,
        '"instances" row 1 must be an object',
    ),
    ("inputs not an object", decode_v1, dumps({"inputs": [[1, 2]]}), 400, None, '"inputs" must be an object of columns'),
    ("column not a list", decode_v1, columns(gender="male"), 400, "gender", "column 'gender' must be a list"),
    (
        "uneven columns",
        decode_v1,
        columns(gender=["male"]),
        400,
        "gender",
        "column 'gender' has 1 values but 'tenure_months' has 2",
    ),
    (
        "split row too short",
        decode_v1,
        dumps({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3]]}}),
        400,
        None,
        '"dataframe_split" row 1 must be a list of 2 values, got [3]',
    ),
    (
        "split names a column twice",
        decode_v1,
        dumps({"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}),
        400,
        "a",
        "names columns twice: 'a'",
    ),
    ("no rows", decode_v1, dumps({"instances": []}), 422, None, "no rows"),
    ("no rows in columns", decode_v1, columns([one()], **{k: [] for k in ROWS[0]}), 422, None, "no rows"),
    (
        "missing column",
        decode_v1,
        records([{k: v for k, v in one().items() if k != "gender"}]),
        422,
        "gender",
        "missing column 'gender'",
    ),
    ("missing column (columns)", decode_v1, dumps({"inputs": {"tenure_months": [1]}}), 422, "monthly_charges", "missing column"),
    (
        "unknown column",
        decode_v1,
        records([one(colour="red")]),
        422,
        "colour",
        "unknown column 'colour' (expected: tenure_months, monthly_charges, contract_type, gender, paperless, signup, "
        "discount, referrals, coupon, autopay)",
    ),
    ("unknown columns", decode_v1, records([one(colour="red", size=3)]), 422, "colour", "unknown columns 'colour', 'size'"),
    (
        "missing value in one record",
        decode_v1,
        records([ROWS[0], {k: v for k, v in ROWS[1].items() if k != "gender"}]),
        422,
        "gender",
        "row 1: missing value",
    ),
    (
        "integer from a string",
        decode_v1,
        columns([one()] * 4, tenure_months=[1, 2, 3, "abc"]),
        422,
        "tenure_months",
        'row 3: expected an integer, got "abc"',
    ),
    (
        "integer from 3.5",
        decode_v1,
        records([one(tenure_months=3.5)]),
        422,
        "tenure_months",
        "row 0: expected an integer, got 3.5",
    ),
    ("integer from a bool", decode_v1, records([one(tenure_months=True)]), 422, "tenure_months", "expected an integer, got true"),
    ("integer too large", decode_v1, records([one(tenure_months=2**63)]), 422, "tenure_months", "is outside the long range"),
    ("null integer", decode_v1, records([one(tenure_months=None)]), 422, "tenure_months", "row 0: missing value"),
    (
        "number from a string",
        decode_v1,
        records([one(monthly_charges="7")]),
        422,
        "monthly_charges",
        'expected a number, got "7"',
    ),
    (
        "number from a bool",
        decode_v1,
        records([one(monthly_charges=False)]),
        422,
        "monthly_charges",
        "expected a number, got false",
    ),
    (
        "NaN number",
        decode_v1,
        columns([one()] * 3, monthly_charges=[1.0, 2.0, float("nan")]),
        422,
        "monthly_charges",
        "row 2: NaN is not allowed",
    ),
    ("NaN integer", decode_v1, records([one(tenure_months=float("nan"))]), 422, "tenure_months", "row 0: NaN is not allowed"),
    (
        "infinite number",
        decode_v1,
        records([one(monthly_charges=float("inf"))]),
        422,
        "monthly_charges",
        "Infinity is not allowed",
    ),
    ("null number", decode_v1, records([one(monthly_charges=None)]), 422, "monthly_charges", "row 0: missing value"),
    ("null string", decode_v1, records([one(gender=None)]), 422, "gender", "row 0: missing value"),
    ("boolean from 1", decode_v1, records([one(paperless=1)]), 422, "paperless", "expected true or false, got 1"),
    (
        "boolean from a string",
        decode_v1,
        records([one(paperless="true")]),
        422,
        "paperless",
        'expected true or false, got "true"',
    ),
    ("string from a number", decode_v1, records([one(gender=5)]), 422, "gender", "row 0: expected a string, got 5"),
    (
        "unknown category",
        decode_v1,
        records([one(contract_type="lifetime")]),
        422,
        "contract_type",
        "row 0: unknown category 'lifetime' (allowed: month-to-month, one-year, two-year)",
    ),
    (
        "bad datetime",
        decode_v1,
        records([one(signup="yesterday")]),
        422,
        "signup",
        'expected an ISO-8601 date-time string, got "yesterday"',
    ),
    ("datetime from a number", decode_v1, records([one(signup=1700000000)]), 422, "signup", "expected an ISO-8601"),
    ("v2 body is a list", decode_v2, b"[]", 400, None, "the body must be a JSON object"),
    (
        "v2 malformed json",
        decode_v2,
        b'{"inputs": [}',
        400,
        None,
        "malformed JSON: Expecting value at line 1 column 13 (char 12)",
    ),
    ("v2 without inputs", decode_v2, dumps({"id": "x"}), 400, None, '"inputs" must be a list of tensors'),
    ("v2 id not a string", decode_v2, dumps({"id": 7, "inputs": []}), 400, None, '"id" must be a string, got 7'),
    (
        "v2 tensor without a name",
        decode_v2,
        dumps({"inputs": [{"shape": [1], "datatype": "FP64", "data": [1]}]}),
        400,
        None,
        'no "name"',
    ),
    ("v2 no tensors", decode_v2, dumps({"inputs": []}), 422, None, "no rows"),
    ("v2 shape does not match data", decode_v2, v2(gender={"shape": [3]}), 400, "gender", "has shape [3] but 2 values"),
    ("v2 shape is not a column", decode_v2, v2(gender={"shape": [1, 2]}), 400, "gender", "a column is [n] or [n, 1]"),
    ("v2 unknown datatype", decode_v2, v2(gender={"datatype": "FP128"}), 400, "gender", 'datatype "FP128"'),
    ("v2 data not a list", decode_v2, v2(gender={"data": "male"}), 400, "gender", 'needs a "data" list'),
    ("v2 ragged nested data", decode_v2, v2(gender={"data": [["female", "x"], ["male"]]}), 400, "gender", "one value per row"),
    ("v2 mixed nested data", decode_v2, v2(gender={"data": [["female"], "male"]}), 400, "gender", "one value per row"),
    (
        "v2 uneven tensors",
        decode_v2,
        v2(gender={"shape": [1], "data": ["male"]}),
        400,
        "gender",
        "has 1 rows but 'tenure_months' has 2",
    ),
    (
        "v2 string sent as numbers",
        decode_v2,
        v2(gender={"datatype": "FP64"}),
        422,
        "gender",
        "tensor 'gender' has datatype FP64, which does not fit a string column (send BYTES)",
    ),
    ("v2 integer sent as bytes", decode_v2, v2(tenure_months={"datatype": "BYTES"}), 422, "tenure_months", "(send INT64)"),
    ("v2 double sent as bool", decode_v2, v2(monthly_charges={"datatype": "BOOL"}), 422, "monthly_charges", "(send FP64)"),
    ("v2 boolean sent as ints", decode_v2, v2(paperless={"datatype": "INT8"}), 422, "paperless", "(send BOOL)"),
    (
        "v2 fractional float for an integer",
        decode_v2,
        v2(tenure_months={"datatype": "FP64", "data": [1.5, 2.0]}),
        422,
        "tenure_months",
        "row 0: expected an integer, got 1.5",
    ),
    (
        "v2 missing column",
        decode_v2,
        dumps({"inputs": [{"name": "gender", "shape": [1], "datatype": "BYTES", "data": ["m"]}]}),
        422,
        "tenure_months",
        "missing column 'tenure_months'",
    ),
    ("v2 unknown tensor", decode_v2, v2(gender={"name": "colour"}), 422, "colour", "unknown column 'colour'"),
    (
        "v2 tensor twice",
        decode_v2,
        v2(coupon={"name": "gender", "datatype": "BYTES"}),
        400,
        "gender",
        "tensor 'gender' is given twice",
    ),
]


@pytest.mark.parametrize(
    ("decode", "body", "status", "field", "reason"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_bad_inputs_are_refused_with_status_field_and_reason(
    decode: Callable[..., Decoded], body: bytes, status: int, field: str | None, reason: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode(body, SCHEMA)
    exc = caught.value
    assert (exc.status, exc.field) == (status, field), exc.reason
    assert reason in exc.reason
    where = {"field": field, "row": exc.row}
    assert exc.to_dict() == {"error": exc.message, "code": "invalid_input", **{k: v for k, v in where.items() if v is not None}}
    assert reason in exc.message


@pytest.mark.parametrize("decode", [decode_v1, decode_v2])
def test_too_many_rows_is_413(decode: Callable[..., Decoded]) -> None:
    body = records() if decode is decode_v1 else v2()
    with pytest.raises(InvalidInput) as caught:
        decode(body, SCHEMA, max_rows=1)
    assert caught.value.status == 413
    assert caught.value.reason == "too many rows: 2 (at most 1 per request)"
    assert decode(body, SCHEMA, max_rows=2).rows == 2


def test_messages_name_the_field_and_the_row() -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_v1(columns([one()] * 4, tenure_months=[1, 2, 3, "abc"]), SCHEMA)
    assert str(caught.value) == "field 'tenure_months' row 3: expected an integer, got \"abc\""
    assert caught.value.row == 3
    with pytest.raises(InvalidInput) as caught:
        decode_v1(columns([one()] * 3, monthly_charges=[1.0, 2.0, float("nan")]), SCHEMA)
    assert str(caught.value) == "field 'monthly_charges' row 2: NaN is not allowed"
    with pytest.raises(InvalidInput) as caught:
        decode_v1(records([{k: v for k, v in one().items() if k != "gender"}]), SCHEMA)
    assert str(caught.value) == "missing column 'gender'"


def test_invalid_input_is_a_shipyard_error_with_its_http_status() -> None:
    exc = InvalidInput(413, "too many rows")
    assert isinstance(exc, ShipyardError)
    assert exc.http_status == exc.status == 413


@pytest.mark.parametrize("decode", [decode_v1, decode_v2])
def test_an_integer_too_long_to_convert_is_a_400(decode: Callable[..., Decoded]) -> None:
    """Python refuses to parse an integer of more than 4,300 digits (a ValueError that is not a JSONDecodeError)."""
    body = b'{"instances": [{"tenure_months": ' + b"9" * 5000 + b"}]}"
    with pytest.raises(InvalidInput) as caught:
        decode(body, SCHEMA)
    assert caught.value.status == 400
    assert caught.value.message == "a number in the body has more than 4300 digits"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# Bodies whose refusal message shows a value nested ``depth`` deep.
NESTED: dict[str, Callable[[int], bytes]] = {
    "long value": lambda d: records([one(tenure_months="@")]).replace(b'"@"', _nested(d).encode()),
    "double value": lambda d: records([one(monthly_charges="@")]).replace(b'"@"', _nested(d).encode()),
    "string value": lambda d: records([one(gender="@")]).replace(b'"@"', _nested(d).encode()),
    "record": lambda d: f'{{"instances": [{_nested(d)}]}}'.encode(),
    "split row": lambda d: f'{{"dataframe_split": {{"columns": ["a"], "data": [{_nested(d)}]}}}}'.encode(),
    "column": lambda d: f'{{"inputs": {{"tenure_months": {_nested(d)}}}}}'.encode(),
    "v2 id": lambda d: f'{{"id": {_nested(d)}, "inputs": []}}'.encode(),
    "v2 tensor": lambda d: f'{{"inputs": [{_nested(d)}]}}'.encode(),
    "v2 shape": lambda d: v2().replace(b'"shape": [2]', b'"shape": ' + _nested(d).encode(), 1),
}


@pytest.mark.parametrize("where", NESTED)
def test_json_nested_as_deep_as_it_parses_is_refused_with_a_message(where: str) -> None:
    """A value nested just shallowly enough to parse can still be too deep to print in the refusal:
    every depth up to where the parser gives up must be an InvalidInput, never a RecursionError."""
    decode = decode_v2 if where.startswith("v2") else decode_v1
    statuses = set()
    for depth in range(700, 1001):
        with pytest.raises(InvalidInput) as caught:
            decode(NESTED[where](depth), SCHEMA)
        statuses.add(caught.value.status)
    assert statuses <= {400, 422}


# --- schemas ------------------------------------------------------------------------------------

MLMODEL = """\
artifact_path: model
flavors:
  sklearn:
    pickled_model: model.pkl
    serialization_format: cloudpickle
    sklearn_version: 1.5.2
mlflow_version: 3.17.0
model_uuid: 0f5e3a4c2b1d4e6f8a9b0c1d2e3f4a5b
signature:
  inputs: '[{"type": "long", "name": "tenure_months", "required": true}, {"type": "string",
    "name": "contract_type", "required": true}, {"type": "double", "name": "monthly_charges",
    "required": true}, {"type": "boolean", "name": "paperless", "required": false}, {"type":
    "datetime", "name": "signup", "required": true}]'
  outputs: '[{"type": "long", "required": true}]'
  params: null
"""


def test_from_mlflow_signature_reads_an_mlmodel_signature() -> None:
    import yaml

    text = yaml.safe_load(MLMODEL)["signature"]["inputs"]
    assert isinstance(text, str)
    schema = InputSchema.from_mlflow_signature(text)
    assert schema.fields == (
        Field("tenure_months", "long"),
        Field("contract_type", "string"),
        Field("monthly_charges", "double"),
        Field("paperless", "boolean", required=False),
        Field("signup", "datetime"),
    )
    assert InputSchema.from_mlflow_signature(json.loads(text)) == schema


def test_from_mlflow_signature_reads_the_older_optional_key() -> None:
    schema = InputSchema.from_mlflow_signature(
        [{"type": "double", "name": "a", "optional": True}, {"type": "double", "name": "b"}]
    )
    assert [f.required for f in schema.fields] == [False, True]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ('[{"type": "binary", "name": "photo", "required": true}]', "type 'binary'"),
        ('[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]', "has no column name"),
        ('[{"type": "double", "required": true}]', "has no column name"),
        ("[]", "non-empty list"),
        ("{not json", "not valid JSON"),
        ('[{"type": "double", "name": "a"}, {"type": "long", "name": "a"}]', "duplicate column names in the input schema: a"),
    ],
)
def test_from_mlflow_signature_refuses_what_it_cannot_validate(inputs: str, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        InputSchema.from_mlflow_signature(inputs)


def test_with_categories_checks_its_columns() -> None:
    schema = SCHEMA.with_categories({"gender": ("female", "male")})
    assert schema.by_name["gender"].allowed == frozenset({"female", "male"})
    assert schema.by_name["contract_type"].allowed == CONTRACTS
    assert SCHEMA.by_name["gender"].allowed is None
    with pytest.raises(InvalidSpec, match="unknown columns: colour"):
        SCHEMA.with_categories({"colour": ["red"]})
    with pytest.raises(InvalidSpec, match="only string columns take categories"):
        SCHEMA.with_categories({"tenure_months": ["1"]})
    with pytest.raises(InvalidSpec, match="must be a list of strings"):
        SCHEMA.with_categories({"gender": "female"})


def test_schema_from_mlflow_infer_signature_on_the_churn_example() -> None:
    from mlflow.models import infer_signature

    from shipyard.examples.churn.generator import generate

    frame = generate(300).drop(columns=["customer_id", "signup_date", "churned"])
    with warnings.catch_warnings():
        # MLflow hints that integer columns cannot hold missing values; the churn columns never do.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", category=UserWarning)
        signature = infer_signature(frame)
    schema = InputSchema.from_mlflow_signature(signature.inputs.to_dict())
    categories = {
        name: sorted(frame[name].unique()) for name in ("contract_type", "payment_method", "internet_service", "gender")
    }
    schema = schema.with_categories(categories)
    assert [f.name for f in schema.fields] == list(frame.columns)

    rows = json.loads(frame.head(5).to_json(orient="records"))
    decoded = decode_v1(dumps({"instances": rows}), schema)
    built = build_frame([decoded], schema)
    assert list(built.columns) == list(frame.columns)
    assert built.dtypes.to_dict() == frame.dtypes.to_dict()
    assert built.equals(frame.head(5).reset_index(drop=True))

    with pytest.raises(InvalidInput, match=r"contract_type.*unknown category 'lifetime'"):
        decode_v1(dumps({"instances": [{**rows[0], "contract_type": "lifetime"}]}), schema)


# --- frames -------------------------------------------------------------------------------------


def test_build_frame_concatenates_requests_with_schema_dtypes_and_order() -> None:
    import numpy as np
    import pandas as pd

    full = decode_v1(records(ROWS[:1]), SCHEMA)
    sparse = decode_v1(records(ROWS[1:]), SCHEMA)
    again = decode_v2(v2(ROWS[:1]), SCHEMA)
    frame = build_frame([full, sparse, again], SCHEMA)

    assert list(frame.columns) == [f.name for f in SCHEMA.fields]
    assert list(frame.index) == [0, 1, 2]
    string = pd.Series(["a"]).dtype
    assert frame.dtypes.to_dict() == {
        "tenure_months": np.dtype("int64"),
        "monthly_charges": np.dtype("float64"),
        "contract_type": string,
        "gender": string,
        "paperless": np.dtype("bool"),
        "signup": np.dtype("datetime64[us]"),
        "discount": np.dtype("float64"),
        "referrals": np.dtype("float64"),  # an integer column with a missing value
        "coupon": string,
        "autopay": pd.BooleanDtype(),
    }
    assert frame["tenure_months"].tolist() == [12, 1, 12]
    assert frame["gender"].tolist() == ["female", "male", "female"]
    assert math.isnan(frame["discount"][1])
    assert math.isnan(frame["referrals"][1])
    assert frame["referrals"][0] == 2.0
    assert frame["coupon"].isna().tolist() == [False, True, False]
    assert frame["autopay"].isna().tolist() == [False, True, False]
    assert frame["signup"][1] == pd.Timestamp("2024-03-02")


def test_build_frame_keeps_optional_columns_typed_when_nothing_is_missing() -> None:
    import numpy as np

    frame = build_frame([decode_v1(records(ROWS[:1]), SCHEMA)] * 2, SCHEMA)
    assert frame["referrals"].dtype == np.dtype("int64")
    assert frame["autopay"].dtype == np.dtype("bool")
    assert len(frame) == 2


# --- responses ----------------------------------------------------------------------------------


def test_encode_v2_response_infers_datatypes_and_shapes() -> None:
    import numpy as np

    body = encode_v2_response(
        "churn",
        "3",
        "req-1",
        {
            "predict": np.array([1, 0], dtype=np.int64),
            "probability": [0.75, 0.25],
            "flag": [True, False],
            "label": ["yes", "no"],
            "proba": np.array([[0.25, 0.75], [0.5, 0.5]]),
            "score": [float("nan"), 0.5],
        },
    )
    doc = json.loads(body)
    assert list(doc) == ["model_name", "model_version", "id", "outputs"]
    assert (doc["model_name"], doc["model_version"], doc["id"]) == ("churn", "3", "req-1")
    assert doc["outputs"] == [
        {"name": "predict", "shape": [2], "datatype": "INT64", "data": [1, 0]},
        {"name": "probability", "shape": [2], "datatype": "FP64", "data": [0.75, 0.25]},
        {"name": "flag", "shape": [2], "datatype": "BOOL", "data": [True, False]},
        {"name": "label", "shape": [2], "datatype": "BYTES", "data": ["yes", "no"]},
        {"name": "proba", "shape": [2, 2], "datatype": "FP64", "data": [0.25, 0.75, 0.5, 0.5]},
        {"name": "score", "shape": [2], "datatype": "FP64", "data": [None, 0.5]},
    ]


def test_encode_v2_response_leaves_out_a_missing_id_and_refuses_odd_values() -> None:
    doc = json.loads(encode_v2_response("churn", "3", None, {"predict": [1]}))
    assert "id" not in doc
    with pytest.raises(TypeError, match="output 'x'"):
        encode_v2_response("churn", "3", None, {"x": [{"a": 1}]})


def test_v2_datatype_of_the_wrong_json_type_is_a_400() -> None:
    """Found by fuzzing the gateway: a datatype given as an object must be refused, not crash."""
    from shipyard.serving.inputs import Field, InputSchema, InvalidInput, decode_v2

    schema = InputSchema((Field("a", "double"),))
    body = b'{"inputs": [{"name": "a", "shape": [2], "datatype": {}, "data": [null, null]}]}'
    with pytest.raises(InvalidInput) as caught:
        decode_v2(body, schema)
    assert caught.value.status == 400 and "datatype" in caught.value.reason
