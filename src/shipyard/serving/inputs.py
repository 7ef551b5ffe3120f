"""Prediction requests: decode and validate JSON bodies into columns, and batches into one frame.

Requests are validated with plain loops over JSON values, never with pandas:
a frame is built once per micro-batch by ``build_frame``, not once per request.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import InvalidSpec, ShipyardError, oip_body

if TYPE_CHECKING:
    import pandas as pd

MAX_ID = 256  # characters in a request's "id"
NUMERIC = frozenset({"double", "float", "long", "integer"})
TYPES = NUMERIC | {"boolean", "string", "datetime"}

_INT_RANGE = {"long": (-(2**63), 2**63 - 1), "integer": (-(2**31), 2**31 - 1)}
_INTS = frozenset({int})
_NUMBERS = frozenset({int, float})
_BOOLS = frozenset({bool})
_STRS = frozenset({str})
_LISTS = frozenset({list})
_DICTS = frozenset({dict})


@dataclass(frozen=True, slots=True)
class Field:
    """One input column, typed with MLflow's ColSpec type names."""

    name: str
    type: str
    required: bool = True
    allowed: frozenset[str] | None = None  # categories a string column may take; None = any

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise InvalidSpec(
                f"column {self.name!r} has type {self.type!r}, which the gateway cannot validate",
                hint=f"Supported types: {', '.join(sorted(TYPES))}.",
            )
        if self.allowed is not None and self.type != "string":
            raise InvalidSpec(f"column {self.name!r} is {self.type!r}: only string columns take categories")


@dataclass(frozen=True, slots=True)
class InputSchema:
    """The columns a model takes, in the order its frame must have them."""

    fields: tuple[Field, ...]
    # Derived once: request decoding looks fields up by name on every call.
    by_name: dict[str, Field] = dataclasses.field(init=False, repr=False, compare=False, hash=False)
    names: frozenset[str] = dataclasses.field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        by_name = {f.name: f for f in self.fields}
        if len(by_name) != len(self.fields):
            names = [f.name for f in self.fields]
            twice = sorted({n for n in names if names.count(n) > 1})
            raise InvalidSpec(f"duplicate column names in the input schema: {', '.join(twice)}")
        object.__setattr__(self, "by_name", by_name)
        object.__setattr__(self, "names", frozenset(by_name))

    @classmethod
    def from_mlflow_signature(cls, inputs: str | Sequence[Mapping[str, Any]]) -> InputSchema:
        """The schema of an MLmodel file's ``signature.inputs`` (its JSON text or the parsed list)."""
        if isinstance(inputs, str):
            try:
                inputs = json.loads(inputs)
            except json.JSONDecodeError as exc:
                raise InvalidSpec(f"signature inputs are not valid JSON: {exc}") from exc
        if not isinstance(inputs, list) or not inputs:
            raise InvalidSpec("signature inputs must be a non-empty list of column specs")
        fields = []
        for spec in inputs:
            if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
                raise InvalidSpec(
                    f"signature input {spec!r} has no column name",
                    hint="Tensor and unnamed signatures cannot be matched to request fields; log the model with a DataFrame.",
                )
            # Older MLflow versions wrote "optional" instead of "required".
            required = bool(spec["required"]) if "required" in spec else not spec.get("optional", False)
            fields.append(Field(spec["name"], str(spec.get("type")), required))
        return cls(tuple(fields))

    def with_categories(self, allowed: Mapping[str, Iterable[str]]) -> InputSchema:
        """A copy whose string columns only accept the given categories."""
        unknown = sorted(set(allowed) - self.names)
        if unknown:
            raise InvalidSpec(f"categories given for unknown columns: {', '.join(unknown)}")
        fields = []
        for f in self.fields:
            if f.name in allowed:
                values = allowed[f.name]
                if isinstance(values, str):
                    raise InvalidSpec(f"categories for {f.name!r} must be a list of strings, got the string {values!r}")
                f = dataclasses.replace(f, allowed=frozenset(values))
            fields.append(f)
        return InputSchema(tuple(fields))


class InvalidInput(ShipyardError):
    """A request the gateway refuses before it reaches the model (400, 413 or 422)."""

    http_status = 422
    code = "invalid_input"

    def __init__(self, status: int, reason: str, *, field: str | None = None, row: int | None = None) -> None:
        self.status = status
        self.http_status = status
        self.field = field
        self.row = row
        self.reason = reason if row is None else f"row {row}: {reason}"
        super().__init__(self.reason if row is None else f"field {field!r} {self.reason}")

    def details(self) -> dict[str, object]:
        """What the error body carries beside the message: the field and row it is about."""
        return {"field": self.field, "row": self.row}

    def to_dict(self) -> dict[str, object]:
        return oip_body(self, **self.details())


@dataclass(frozen=True, slots=True)
class Decoded:
    """One request's columns: every schema field, in schema order, one value per row."""

    columns: dict[str, list[Any]]
    rows: int
    request_id: str | None = None  # the Open Inference Protocol "id"
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    outputs: object = None  # the Open Inference Protocol "outputs" as sent, read by ``binary.chosen_outputs``


# --- decoding ---------------------------------------------------------------------------------

_V1_FORMS = ("instances", "dataframe_records", "inputs", "dataframe_split")


def decode_v1(body: bytes, schema: InputSchema, *, max_rows: int = 10_000) -> Decoded:
    """Decode an MLflow scoring request: records, columns or ``dataframe_split``."""
    doc = load_json(body)
    forms = [key for key in _V1_FORMS if key in doc]
    if len(forms) != 1:
        found = f"got {', '.join(forms)}" if forms else f"got keys: {', '.join(map(repr, doc)) or 'none'}"
        raise InvalidInput(400, f"the body must have exactly one of {', '.join(_V1_FORMS)} ({found})")
    _refuse_extra_keys(doc, {forms[0], "params"}, "the body")
    parameters = _parameters(doc, "params")
    form = forms[0]
    if form == "inputs":
        columns, rows = _from_columns(doc[form], schema, max_rows)
    elif form == "dataframe_split":
        columns, rows = _from_split(doc[form], schema, max_rows)
    else:
        columns, rows = _from_records(doc[form], form, schema, max_rows)
    return Decoded(_validate(columns, rows, schema), rows, None, parameters)


_V2_KINDS = {
    **dict.fromkeys(("FP64", "FP32", "FP16", "BF16"), "float"),
    **dict.fromkeys(("INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8"), "int"),
    "BOOL": "bool",
    "BYTES": "bytes",
}
# Which tensor kinds each field type takes; values are then checked one by one, so an FP64
# tensor for an integer field passes only when every value is integral.
_V2_FITS = {
    "double": {"float", "int"},
    "float": {"float", "int"},
    "long": {"int", "float"},
    "integer": {"int", "float"},
    "boolean": {"bool"},
    "string": {"bytes"},
    "datetime": {"bytes"},
}
_V2_EXPECTED = {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32", "boolean": "BOOL"}


def decode_v2(body: bytes, schema: InputSchema, *, max_rows: int = 10_000) -> Decoded:
    """Decode an Open Inference Protocol (KServe V2) request: one input tensor per column."""
    return decode_v2_doc(load_json(body), schema, max_rows=max_rows)


def decode_v2_doc(doc: dict[str, Any], schema: InputSchema, *, max_rows: int = 10_000) -> Decoded:
    """Decode a parsed Open Inference Protocol request (its binary tensors, if any, already attached as data)."""
    _refuse_extra_keys(doc, {"id", "parameters", "inputs", "outputs"}, "the body")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput(400, f'"id" must be a string, got {show(request_id)}')
    if request_id and (len(request_id) > MAX_ID or not request_id.isprintable()):
        # It goes into a response header and the prediction log: no line breaks, no lone surrogates, no megabytes.
        raise InvalidInput(400, f'"id" must be printable text of at most {MAX_ID} characters, got {show(request_id)}')
    parameters = _parameters(doc, "parameters")
    tensors = doc.get("inputs")
    if not isinstance(tensors, list):
        raise InvalidInput(400, '"inputs" must be a list of tensors, one per column')
    columns: dict[str, list[Any]] = {}
    datatypes: dict[str, str] = {}
    rows = -1
    first = ""
    for tensor in tensors:
        name, datatype, data = _tensor(tensor)
        if name in columns:
            raise InvalidInput(400, f"tensor {name!r} is given twice", field=name)
        if rows < 0:
            rows, first = len(data), name
        elif len(data) != rows:
            raise InvalidInput(400, f"tensor {name!r} has {len(data)} rows but {first!r} has {rows}", field=name)
        columns[name], datatypes[name] = data, datatype
    rows = max(rows, 0)
    _check_rows(rows, max_rows)
    _check_names(columns.keys(), schema)
    for name, datatype in datatypes.items():
        field = schema.by_name[name]
        if _V2_KINDS[datatype] not in _V2_FITS[field.type]:
            expected = _V2_EXPECTED.get(field.type, "BYTES")
            reason = f"tensor {name!r} has datatype {datatype}, which does not fit a {field.type} column (send {expected})"
            raise InvalidInput(422, reason, field=name)
    return Decoded(_validate(columns, rows, schema), rows, request_id, parameters, doc.get("outputs"))


def _tensor(tensor: object) -> tuple[str, str, list[Any]]:
    if not isinstance(tensor, dict):
        raise InvalidInput(400, f"each input tensor must be an object, got {show(tensor)}")
    name = tensor.get("name")
    if not isinstance(name, str):
        raise InvalidInput(400, f'an input tensor has no "name" (got {show(name)})')
    _refuse_extra_keys(tensor, {"name", "shape", "datatype", "data", "parameters"}, f"tensor {name!r}")
    shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
    if not isinstance(datatype, str) or datatype not in _V2_KINDS:
        raise InvalidInput(
            400, f"tensor {name!r} has datatype {show(datatype)}; expected one of {', '.join(_V2_KINDS)}", field=name
        )
    if not isinstance(data, list):
        parameters = tensor.get("parameters")
        if data is None and isinstance(parameters, dict) and "binary_data_size" in parameters:
            reason = (
                f"tensor {name!r} is sent as binary data, but the request has no Inference-Header-Content-Length "
                "header saying where its JSON ends"
            )
            raise InvalidInput(400, reason, field=name)
        raise InvalidInput(400, f'tensor {name!r} needs a "data" list', field=name)
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or any(type(n) is not int or n < 0 for n in shape)
        or (len(shape) == 2 and shape[1] != 1)
    ):
        raise InvalidInput(400, f"tensor {name!r} has shape {show(shape)}; a column is [n] or [n, 1]", field=name)
    if data and type(data[0]) is list:
        try:
            if set(map(type, data)) != _LISTS:
                raise ValueError
            data = [v for (v,) in data]
        except ValueError:
            reason = f"tensor {name!r}: nested data must hold exactly one value per row, like [[1], [2]]"
            raise InvalidInput(400, reason, field=name) from None
    if len(data) != shape[0]:
        raise InvalidInput(400, f"tensor {name!r} has shape {show(shape)} but {len(data)} values", field=name)
    return name, datatype, data


_BINARY_HINT = (
    "; if binary tensor data follows the JSON, send the Inference-Header-Content-Length header saying where the JSON ends"
)


def load_json(body: bytes) -> dict[str, Any]:
    """A request body's JSON object; InvalidInput (400) saying where it is malformed."""
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno} (char {exc.pos})"
        hint = _BINARY_HINT if exc.msg == "Extra data" else ""
        raise InvalidInput(400, f"malformed JSON: {exc.msg} at {where}{hint}") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(400, f"the body is not UTF-8 text: {exc.reason} at byte {exc.start}{_BINARY_HINT}") from None
    except RecursionError:
        raise InvalidInput(400, "malformed JSON: nested too deeply") from None
    except ValueError as exc:
        # The one other ValueError json raises: an integer longer than Python converts (CVE-2020-10735).
        if "integer string conversion" in str(exc):
            raise InvalidInput(400, f"a number in the body has more than {sys.get_int_max_str_digits()} digits") from None
        raise InvalidInput(400, f"malformed JSON: {exc}") from None
    if type(doc) is not dict:
        raise InvalidInput(400, f"the body must be a JSON object, got {type(doc).__name__ if doc is not None else 'null'}")
    return doc


def _refuse_extra_keys(doc: dict[str, Any], known: set[str], where: str) -> None:
    extra = doc.keys() - known
    if extra:
        unknown = ", ".join(map(repr, sorted(extra)))
        raise InvalidInput(400, f"{where} has unknown keys {unknown} (expected: {', '.join(sorted(known))})")


def _parameters(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    if value is None:
        return {}
    if type(value) is not dict:
        raise InvalidInput(400, f'"{key}" must be an object, got {show(value)}')
    return value


def _check_rows(rows: int, max_rows: int) -> None:
    if rows == 0:
        raise InvalidInput(422, "no rows")
    if rows > max_rows:
        raise InvalidInput(413, f"too many rows: {rows} (at most {max_rows} per request)")


def _check_names(given: Iterable[str], schema: InputSchema) -> None:
    present = set(given)
    if present == schema.names:
        return
    unknown = sorted(present - schema.names)
    if unknown:
        which = "columns" if len(unknown) > 1 else "column"
        expected = ", ".join(f.name for f in schema.fields)
        raise InvalidInput(422, f"unknown {which} {', '.join(map(repr, unknown))} (expected: {expected})", field=unknown[0])
    for f in schema.fields:
        if f.required and f.name not in present:
            raise InvalidInput(422, f"missing column {f.name!r}", field=f.name)


def _from_records(records: object, form: str, schema: InputSchema, max_rows: int) -> tuple[dict[str, list[Any]], int]:
    if type(records) is not list:
        raise InvalidInput(400, f'"{form}" must be a list of records, one object per row')
    _check_rows(len(records), max_rows)
    if set(map(type, records)) != _DICTS:
        row = next(i for i, r in enumerate(records) if type(r) is not dict)
        raise InvalidInput(400, f'"{form}" row {row} must be an object of column values, got {show(records[row])}')
    if set(map(len, records)) == {len(schema.fields)}:
        # Same size as the schema and holding every field means exactly the schema's keys.
        try:
            return {name: list(map(itemgetter(name), records)) for name in schema.by_name}, len(records)
        except KeyError:
            pass
    # A column absent from every record is missing; absent from some is a missing value.
    seen: set[str] = set()
    seen.update(*records)
    _check_names(seen, schema)
    return {name: [r.get(name) for r in records] for name in schema.by_name}, len(records)


def _from_columns(columns: object, schema: InputSchema, max_rows: int) -> tuple[dict[str, list[Any]], int]:
    if type(columns) is not dict:
        raise InvalidInput(400, '"inputs" must be an object of columns, like {"a": [1, 2], "b": [3, 4]}')
    rows = -1
    first = ""
    for name, values in columns.items():
        if type(values) is not list:
            raise InvalidInput(400, f"column {name!r} must be a list of values, got {show(values)}", field=name)
        if rows < 0:
            rows, first = len(values), name
        elif len(values) != rows:
            raise InvalidInput(400, f"column {name!r} has {len(values)} values but {first!r} has {rows}", field=name)
    _check_rows(max(rows, 0), max_rows)
    _check_names(columns.keys(), schema)
    return columns, rows


def _from_split(split: object, schema: InputSchema, max_rows: int) -> tuple[dict[str, list[Any]], int]:
    if type(split) is not dict:
        raise InvalidInput(400, '"dataframe_split" must be an object with "columns" and "data"')
    _refuse_extra_keys(split, {"columns", "data", "index"}, '"dataframe_split"')
    names, data = split.get("columns"), split.get("data")
    if type(names) is not list or any(type(n) is not str for n in names):
        raise InvalidInput(400, '"dataframe_split" needs "columns", a list of column names')
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InvalidInput(400, f'"dataframe_split" names columns twice: {", ".join(map(repr, twice))}', field=twice[0])
    if type(data) is not list:
        raise InvalidInput(400, '"dataframe_split" needs "data", a list of rows')
    _check_rows(len(data), max_rows)
    width = len(names)
    for row, values in enumerate(data):
        if type(values) is not list or len(values) != width:
            raise InvalidInput(400, f'"dataframe_split" row {row} must be a list of {width} values, got {show(values)}')
    _check_names(names, schema)
    return {name: list(values) for name, values in zip(names, zip(*data, strict=True), strict=True)}, len(data)


# --- validation -------------------------------------------------------------------------------


class _Refused(Exception):
    """One value does not fit its field; the caller adds the field and row."""


def _validate(columns: dict[str, list[Any]], rows: int, schema: InputSchema) -> dict[str, list[Any]]:
    """Every schema field in schema order, each value checked and coerced; raises InvalidInput."""
    out: dict[str, list[Any]] = {}
    for field in schema.fields:
        values = columns.get(field.name)
        # An optional column may be left out of the request altogether.
        out[field.name] = [None] * rows if values is None else _FAST[field.type](field, values)
    return out


def _doubles(field: Field, values: list[Any]) -> list[Any]:
    try:
        kinds = set(map(type, values))
        # An infinite or NaN value makes the sum non-finite; a merely huge sum falls to the slow path.
        if kinds <= _NUMBERS and math.isfinite(sum(values)):
            return values if int not in kinds else [float(v) for v in values]
    except OverflowError:
        pass
    return _slow(field, values, _to_double)


def _ints(field: Field, values: list[Any]) -> list[Any]:
    lo, hi = _INT_RANGE[field.type]
    if set(map(type, values)) == _INTS and lo <= min(values) and max(values) <= hi:
        return values
    return _slow(field, values, _to_int)


def _bools(field: Field, values: list[Any]) -> list[Any]:
    if set(map(type, values)) == _BOOLS:
        return values
    return _slow(field, values, _to_bool)


def _strings(field: Field, values: list[Any]) -> list[Any]:
    if set(map(type, values)) == _STRS and (field.allowed is None or field.allowed.issuperset(values)):
        return values
    return _slow(field, values, _to_string)


def _datetimes(field: Field, values: list[Any]) -> list[Any]:
    return _slow(field, values, _to_datetime)


def _slow(field: Field, values: list[Any], convert: Callable[[Field, Any], Any]) -> list[Any]:
    out: list[Any] = []
    for row, value in enumerate(values):
        if value is None or (type(value) is float and value != value):
            if field.required:
                reason = "missing value" if value is None else "NaN is not allowed"
                raise InvalidInput(422, reason, field=field.name, row=row)
            out.append(None)
            continue
        try:
            out.append(convert(field, value))
        except _Refused as exc:
            raise InvalidInput(422, str(exc), field=field.name, row=row) from None
    return out


def _to_double(field: Field, value: Any) -> float:
    kind = type(value)
    if kind is float:
        if math.isinf(value):
            raise _Refused(f"{show(value)} is not allowed")
        return float(value)
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            raise _Refused(f"{show(value)} is too large for a {field.type}") from None
    raise _Refused(f"expected a number, got {show(value)}")


def _to_int(field: Field, value: Any) -> int:
    kind = type(value)
    if kind is float and value.is_integer():
        value = int(value)
    elif kind is not int:
        raise _Refused(f"expected an integer, got {show(value)}")
    lo, hi = _INT_RANGE[field.type]
    if not lo <= value <= hi:
        raise _Refused(f"{value} is outside the {field.type} range ({lo} to {hi})")
    return value  # type: ignore[no-any-return]


def _to_bool(field: Field, value: Any) -> bool:
    if type(value) is not bool:
        raise _Refused(f"expected true or false, got {show(value)}")
    return value


def _to_string(field: Field, value: Any) -> str:
    if type(value) is not str:
        raise _Refused(f"expected a string, got {show(value)}")
    if field.allowed is not None and value not in field.allowed:
        raise _Refused(f"unknown category {value!r} (allowed: {_listing(field.allowed)})")
    return value


def _to_datetime(field: Field, value: Any) -> datetime:
    if type(value) is str:
        try:
            moment = datetime.fromisoformat(value)
            # datetime64 columns hold no zone, and requests may use different ones: compare in UTC.
            return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
        except (ValueError, OverflowError):
            pass
    raise _Refused(f"expected an ISO-8601 date-time string, got {show(value)}")


_FAST: dict[str, Callable[[Field, list[Any]], list[Any]]] = {
    "double": _doubles,
    "float": _doubles,
    "long": _ints,
    "integer": _ints,
    "boolean": _bools,
    "string": _strings,
    "datetime": _datetimes,
}


def show(value: object) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    except RecursionError:  # a value nested just shallowly enough to parse can be too deep to print back
        return "a list nested too deeply to show" if type(value) is list else "an object nested too deeply to show"
    return text if len(text) <= 60 else text[:57] + "..."


def _listing(allowed: frozenset[str], limit: int = 20) -> str:
    names = sorted(allowed)
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, … ({len(names) - limit} more)"


# --- frames and responses ---------------------------------------------------------------------


def build_frame(batches: Sequence[Decoded], schema: InputSchema) -> pd.DataFrame:
    """One frame for a micro-batch: the decoded requests' rows in order, dtypes from the schema."""
    return frame_of(batch_columns(batches, schema))


def batch_columns(batches: Sequence[Decoded], schema: InputSchema) -> dict[str, Any]:
    """The micro-batch column by column, typed from the schema (what the frame and the prediction log are made of)."""
    import numpy as np
    import pandas as pd

    data: dict[str, Any] = {}
    for field in schema.fields:
        name = field.name
        if len(batches) == 1:
            values = batches[0].columns[name]
        else:
            values = []
            for batch in batches:
                values.extend(batch.columns[name])
        kind = field.type
        if kind in ("double", "float"):
            data[name] = np.array(values, dtype=np.float64)
        elif kind in ("long", "integer"):
            # Missing integers become NaN, as MLflow encodes integer columns with missing values.
            data[name] = np.array(values, dtype=np.float64 if _has_null(field, values) else np.int64)
        elif kind == "boolean":
            data[name] = pd.array(values, dtype="boolean") if _has_null(field, values) else np.array(values, dtype=bool)
        elif kind == "datetime":
            data[name] = np.array(values, dtype="datetime64[us]")
        else:
            data[name] = pd.array(values, dtype=_string_dtype())
    return data


def frame_of(columns: dict[str, Any]) -> pd.DataFrame:
    """A frame over typed columns; all-float columns become one 2-D block, which pandas builds and scikit-learn reads fastest."""
    import numpy as np
    import pandas as pd

    arrays = list(columns.values())
    rows = len(arrays[0]) if arrays else 0
    if arrays and all(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in arrays):
        return pd.DataFrame(np.column_stack(arrays), columns=list(columns), index=pd.RangeIndex(rows), copy=False)
    return pd.DataFrame(columns, index=pd.RangeIndex(rows), copy=False)


def _has_null(field: Field, values: list[Any]) -> bool:
    # Decoding refuses None in required columns, so only optional ones need the scan.
    return not field.required and None in values


@functools.cache
def _string_dtype() -> Any:
    """The dtype pandas itself gives a column of strings (str in pandas 3, object before)."""
    import pandas as pd

    return pd.Series(["a"]).dtype


def encode_v2_response(model: str, version: str, request_id: str | None, outputs: Mapping[str, Iterable[Any]]) -> bytes:
    """An Open Inference Protocol response body; a 2-D output (like class probabilities) keeps its shape."""
    tensors = [v2_tensor(name, values) for name, values in outputs.items()]
    response: dict[str, Any] = {"model_name": model, "model_version": version}
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = tensors
    return json.dumps(response, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def v2_tensor(name: str, values: Iterable[Any]) -> dict[str, Any]:
    """One output tensor of a response, its data flat in row-major order."""
    # numpy arrays and pandas series turn into native Python values, which json can write.
    data = values.tolist() if hasattr(values, "tolist") else list(values)
    shape = [len(data)]
    if data and type(data[0]) in (list, tuple):
        width = len(data[0])
        if any(type(v) not in (list, tuple) or len(v) != width for v in data):
            raise TypeError(f"output {name!r} mixes rows of different lengths")
        shape.append(width)
        data = [v for row in data for v in row]
    datatype = _datatype(name, data)
    if datatype == "FP64":
        data = _finite_or_null(data)
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def _datatype(name: str, data: list[Any]) -> str:
    kinds = set(map(type, data))
    if kinds <= {bool}:
        return "BOOL" if kinds else "FP64"
    if kinds <= _INTS:
        return "INT64"
    if kinds <= {int, float, type(None)}:
        return "FP64"
    if kinds <= {str, type(None)}:
        return "BYTES"
    raise TypeError(f"output {name!r} holds values the protocol cannot carry: {', '.join(sorted(k.__name__ for k in kinds))}")


def _finite_or_null(data: list[Any]) -> list[Any]:
    # JSON has no NaN or Infinity; a missing score travels as null.
    try:
        if None not in data and math.isfinite(sum(data)):
            return data
    except OverflowError:
        pass
    return [v if v is not None and math.isfinite(v) else None for v in data]
