"""Data validation: a schema inferred from reference data, checked against new data with pandera.

A schema is stored as pandera's own JSON form (``DataFrameSchema.to_json()``
parsed into a dict), so ``load_schema`` is pandera's loader and the stored
document stays readable. ``validate`` reports every problem at once.

Counting rules for a violation's ``failures`` (and for ``failing_rows``): a
check on values counts the rows whose value failed; a problem with the whole
column (missing, wrong dtype, a check that cannot run on its values) counts
every row. ``unique`` counts the repeats, not the first occurrence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shipyard.domain.errors import InvalidSpec

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa

MISSING_COLUMN = "column_in_dataframe"
ALLOWED = "allowed"
_FAILURE_COLUMNS = ("column", "check", "check_number", "failure_case", "index")


class ColumnConstraint(BaseModel):
    """Extra checks on one column, from a policy's ``constraints: {column: {...}}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | None = None
    max: float | None = None
    allowed: list[str | int | float | bool] | None = Field(default=None, min_length=1)
    nullable: bool | None = None
    unique: bool | None = None

    @model_validator(mode="after")
    def _bounds_in_order(self) -> ColumnConstraint:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max}); expected min <= max")
        return self


def infer_schema(frame: pd.DataFrame, *, id_column: str | None = None, max_categories: int = 50) -> dict[str, Any]:
    """The schema of ``frame`` as a JSON-ready dict: dtypes, nullability, numeric ranges, categories, id uniqueness."""
    import json

    import pandera.pandas as pa

    _require_frame(frame, "infer_schema")
    if id_column is not None and id_column not in frame.columns:
        raise InvalidSpec(
            f"id column {id_column!r} is not in the data; columns are {_names(frame)}",
            hint="Set data.id_column in shipyard.yaml to one of the columns, or leave it out.",
        )
    if max_categories < 0:
        raise InvalidSpec(f"max_categories must be 0 or more, got {max_categories}")

    inferred = cast("pa.DataFrameSchema", pa.infer_schema(frame))
    columns = {}
    for name, column in inferred.columns.items():
        is_id = name == id_column
        columns[name] = pa.Column(
            "str" if _holds_only_text(frame[name]) else column.dtype,
            checks=_reference_checks(frame[name], column.checks, is_id=is_id, max_categories=max_categories),
            nullable=column.nullable,
            unique=is_id,
            report_duplicates="exclude_first" if is_id else "all",
        )
    # No coercion: a changed dtype is a finding, not something to paper over.
    # No index: row labels are not part of the data's contract.
    schema = pa.DataFrameSchema(columns, coerce=False)
    parsed: dict[str, Any] = json.loads(schema.to_json())
    return parsed


def load_schema(schema: Mapping[str, Any]) -> pa.DataFrameSchema:
    """Turn a dict from ``infer_schema`` (or any pandera JSON schema) back into a ``DataFrameSchema``."""
    import json

    import pandera.pandas as pa

    if not isinstance(schema, Mapping) or schema.get("schema_type") != "dataframe":
        seen = sorted(schema) if isinstance(schema, Mapping) else type(schema).__name__
        raise InvalidSpec(
            f"not a stored data schema: expected a mapping with schema_type 'dataframe', got {seen}",
            hint="Use the dict infer_schema() returned.",
        )
    try:
        return pa.DataFrameSchema.from_json(json.dumps(dict(schema)))
    except Exception as exc:  # pandera raises many kinds here; all mean the document is damaged
        raise InvalidSpec(
            f"the stored data schema cannot be loaded: {type(exc).__name__}: {exc}",
            hint="Infer the schema again from the reference data.",
        ) from exc


def validate(
    schema: Mapping[str, Any],
    frame: pd.DataFrame,
    constraints: Mapping[str, ColumnConstraint] | None = None,
    *,
    max_examples: int = 5,
) -> dict[str, Any]:
    """Check ``frame`` against a stored schema plus policy constraints; every violation, counted, with examples."""
    from pandera.errors import SchemaErrors

    _require_frame(frame, "validate")
    if max_examples < 0:
        raise InvalidSpec(f"max_examples must be 0 or more, got {max_examples}")
    checked = _with_constraints(load_schema(schema), constraints or {})
    # Positional labels make "distinct failing rows" exact even when the caller's index repeats.
    data = frame.reset_index(drop=True)
    try:
        checked.validate(data, lazy=True)
    except SchemaErrors as exc:
        violations, failing_rows = _summarise(exc.failure_cases, data, max_examples)
    else:
        violations, failing_rows = [], 0
    return {"passed": not violations, "rows": len(data), "failing_rows": failing_rows, "violations": violations}


def _require_frame(frame: object, caller: str) -> None:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise InvalidSpec(f"{caller} needs a pandas DataFrame, got {type(frame).__name__}")


def _names(frame: pd.DataFrame) -> str:
    return ", ".join(str(c) for c in frame.columns) or "(none)"


def _is_categorical(series: pd.Series) -> bool:
    import pandas as pd
    from pandas.api import types

    dtype = series.dtype
    # is_string_dtype is also true for object columns, whatever they hold.
    return bool(types.is_string_dtype(dtype) or types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype))


def _holds_only_text(series: pd.Series) -> bool:
    """An object column of strings: stored as text, which pandas 3 reads strings as, and which object strings still pass."""
    from pandas.api import types

    return bool(types.is_object_dtype(series.dtype) and types.infer_dtype(series, skipna=True) == "string")


def _is_numeric(series: pd.Series) -> bool:
    from pandas.api import types

    return bool(types.is_numeric_dtype(series.dtype) and not types.is_bool_dtype(series.dtype))


def _reference_checks(series: pd.Series, inferred: list[Any], *, is_id: bool, max_categories: int) -> list[pa.Check]:
    """One in_range for numbers, one isin for few categories; nothing else.

    pandera also infers ranges for datetimes, but new data is newer by nature
    (a time-split holdout always is), so a date range would always fail.
    """
    import math

    import pandera.pandas as pa

    if is_id:
        return []
    if _is_categorical(series):
        values = series.dropna().unique().tolist()
        if len(values) > max_categories or not all(isinstance(v, str | int | float | bool) for v in values):
            return []
        return [pa.Check.isin(sorted(values, key=lambda v: (type(v).__name__, v)))]
    if _is_numeric(series):
        bounds: dict[str, Any] = {}
        for check in inferred:
            bounds.update(check.statistics or {})
        low, high = bounds.get("min_value"), bounds.get("max_value")
        if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
            return [pa.Check.in_range(float(low), float(high))]
    return []


def _with_constraints(schema: pa.DataFrameSchema, constraints: Mapping[str, ColumnConstraint]) -> pa.DataFrameSchema:
    import pandera.pandas as pa

    updates: dict[str, dict[str, Any]] = {}
    additions: dict[str, pa.Column] = {}
    for name, rule in constraints.items():
        if not isinstance(rule, ColumnConstraint):
            raise InvalidSpec(f"constraint for column {name!r} must be a ColumnConstraint, got {type(rule).__name__}")
        extra: list[pa.Check] = []
        if rule.min is not None and rule.max is not None:
            extra.append(pa.Check.in_range(rule.min, rule.max))
        elif rule.min is not None:
            extra.append(pa.Check.ge(rule.min))
        elif rule.max is not None:
            extra.append(pa.Check.le(rule.max))
        if rule.allowed is not None:
            extra.append(pa.Check.isin(rule.allowed, error=ALLOWED))
        column = schema.columns.get(name)
        if column is None:
            # Absent from the schema: only what the policy asks for, so nulls pass unless it says otherwise.
            additions[name] = pa.Column(
                None,
                checks=extra,
                nullable=True if rule.nullable is None else rule.nullable,
                unique=bool(rule.unique),
                report_duplicates="exclude_first",
            )
            continue
        update: dict[str, Any] = {"checks": [*column.checks, *extra]}
        if rule.nullable is not None:
            update["nullable"] = rule.nullable
        if rule.unique is not None:
            update["unique"] = rule.unique
            update["report_duplicates"] = "exclude_first"
        updates[name] = update
    if updates:
        schema = schema.update_columns(updates)
    if additions:
        schema = schema.add_columns(additions)
    return schema


def _label(check: str) -> str:
    if check == "field_uniqueness":
        return "unique"
    if check.startswith("isin("):
        return "isin"
    return check


def _summarise(cases: pd.DataFrame, data: pd.DataFrame, max_examples: int) -> tuple[list[dict[str, Any]], int]:
    """Group pandera's failure cases into one violation per (column, check)."""
    import pandas as pd
    from pandas.api.types import is_object_dtype

    rows = len(data)
    found: dict[tuple[Any, str, Any], dict[str, Any]] = {}
    failing: set[int] = set()
    whole_column = False
    # Examples in row order: pandera's order of failure cases differs between pandas versions.
    cases = cases.sort_values("index", kind="stable", na_position="first", key=lambda s: pd.to_numeric(s, errors="coerce"))
    for column, check, number, value, index in zip(*(cases[c].tolist() for c in _FAILURE_COLUMNS), strict=True):
        label = _label(str(check))
        if label == MISSING_COLUMN:
            column, value = value, None
        column = None if _is_missing(column) else column
        present = column is not None and column in data.columns
        # pandera reports a dtype mismatch on a typed column either as the dtype or as the values that would not
        # convert; either way the whole column is off contract. Only object columns fail value by value.
        per_value = not _is_missing(index) and not (label.startswith("dtype(") and present and not is_object_dtype(data[column]))
        key = (column, label, None if _is_missing(number) else number)
        entry = found.setdefault(key, {"column": column, "check": label, "failures": 0, "examples": [], "_seen": set()})
        if per_value:
            entry["failures"] += 1
            failing.add(int(index))
        else:
            whole_column = True
            entry["failures"] = rows
            if label.startswith("dtype(") and present:
                value = str(data[column].dtype)
            elif label == MISSING_COLUMN:
                continue
        example = _plain(value)
        marker = (type(example).__name__, repr(example))
        if len(entry["examples"]) < max_examples and marker not in entry["_seen"]:
            entry["_seen"].add(marker)
            entry["examples"].append(example)
    violations = [{k: v for k, v in entry.items() if k != "_seen"} for entry in found.values()]
    violations.sort(key=lambda v: (str(v["column"]), v["check"]))
    return violations, rows if whole_column else len(failing)


def _is_missing(value: object) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _plain(value: object) -> Any:
    """A JSON-safe Python value: missing becomes None, infinities and other objects become text."""
    import datetime as dt
    import math

    import numpy as np
    import pandas as pd

    if isinstance(value, np.datetime64 | np.timedelta64):
        value = pd.Timestamp(value) if isinstance(value, np.datetime64) else pd.Timedelta(value)
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or _is_missing(value):
        return None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return str(value)
