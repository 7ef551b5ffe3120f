"""`shipyard init --from-data`: a project around one's own CSV or Parquet file.

Everything about the data is checked before anything is written, so a bad
column name or an unusable target is one clear error, not a half-made project.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import InvalidSpec

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.scaffold import Created

MIN_ROWS = 50  # a 20% holdout of fewer rows gives metrics too noisy to gate on
MIN_CLASS_ROWS = 10  # each class needs rows in both the training part and the holdout
MAX_GROUPS = 20  # a fairness report per value: more groups than this means the column needs binning first
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
POSITIVE_WORDS = frozenset({"1", "yes", "y", "true", "t", "positive", "pos"})
NEGATIVE_WORDS = frozenset({"0", "no", "n", "false", "f", "negative", "neg"})
SUFFIXES = (".csv", ".parquet", ".pq")
DATA_HINT = "Pass a CSV or Parquet file to --from-data."


@dataclass(frozen=True, slots=True, kw_only=True)
class Label:
    """The target's positive class, when the target is not already 0/1, and why it was picked."""

    value: str | int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What the scaffold writes, decided from the data."""

    model: str
    data_file: str
    rows: int
    target: str
    label: Label | None
    time_column: str | None
    id_column: str | None
    sensitive: list[str]
    features: list[str]
    notes: dict[str, str] = field(default_factory=dict)  # feature → a doubt worth a look
    skipped: dict[str, str] = field(default_factory=dict)  # column → why it is not a feature


def init_from_data(
    directory: Path,
    data: Path,
    *,
    target: str,
    time_column: str | None = None,
    id_column: str | None = None,
    sensitive: Sequence[str] = (),
    model: str | None = None,
    force: bool = False,
    git: bool = True,
    actor: str | None = None,
) -> Created:
    """Write shipyard.yaml, train.py, a policy, .gitignore and a copy of ``data`` into ``directory``; commit them."""
    from shipyard.scaffold import Created, check_folder, commit_all
    from shipyard.scaffold.render import GITIGNORE, TRAIN_PY, policy_yaml, project_yaml

    folder = check_folder(directory, force=force)
    name = model_name(data, model)
    frame = read_data(data)
    plan = plan_project(
        frame, data_file=data.name, model=name, target=target, time_column=time_column, id_column=id_column, sensitive=sensitive
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    (folder / "policies").mkdir(exist_ok=True)
    copy = folder / "data" / data.name
    if not (copy.exists() and copy.samefile(data)):
        shutil.copyfile(data, copy)
    (folder / "shipyard.yaml").write_text(project_yaml(plan, actor=actor), encoding="utf-8")
    (folder / "policies" / f"{name}.yaml").write_text(policy_yaml(plan), encoding="utf-8")
    (folder / "train.py").write_text(TRAIN_PY.replace("TARGET = None", f"TARGET = {plan.target!r}", 1), encoding="utf-8")
    (folder / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    _check_written(folder, plan)
    if git:
        commit_all(folder, f"Start a Shipyard project from {data.name}")
    return Created(root=folder, model=name, notes=_notes(plan))


def _notes(plan: Plan) -> list[str]:
    """What the scaffold decided on the user's behalf, in the words shipyard.yaml uses."""
    notes = []
    if plan.label is not None:
        notes.append(
            f"{plan.target}: {plan.label.value!r} counts as 1 ({plan.label.reason}); "
            "set data.positive_label in shipyard.yaml to predict the other"
        )
    for column in plan.notes:
        notes.append(f"{column!r} is unique in every row: if it is an id, make it data.id_column instead of a feature")
    if plan.skipped:
        shown = ", ".join(map(repr, plan.skipped))
        notes.append(f"left out of data.features as dates/times: {shown}; derive numbers from them to use them")
    return notes


def model_name(data: Path, model: str | None) -> str:
    """``model`` when given (it must be a plain name), else the data file's stem made into one."""
    if model is not None:
        if not MODEL_NAME.fullmatch(model):
            raise InvalidSpec(
                f"model name {model!r} is not allowed; expected letters, digits, '-' and '_', starting with a letter or digit",
                hint="Pass --model NAME, e.g. --model churn.",
            )
        return model
    stem = re.sub(r"[^a-z0-9_]+", "-", data.stem.lower()).strip("-_")[:64]
    return stem or "model"


def read_data(data: Path) -> pd.DataFrame:
    from shipyard.data import read_frame

    if data.is_dir():
        raise InvalidSpec(f"data file {data} is a folder; expected one CSV or Parquet file", hint=DATA_HINT)
    if data.is_file() and data.suffix.lower() not in SUFFIXES:
        raise InvalidSpec(f"data file {data} has suffix {data.suffix!r}; expected .csv or .parquet", hint=DATA_HINT)
    return read_frame(data, what="data file", hint=DATA_HINT)


def plan_project(
    frame: pd.DataFrame,
    *,
    data_file: str,
    model: str,
    target: str,
    time_column: str | None,
    id_column: str | None,
    sensitive: Sequence[str],
) -> Plan:
    """Check every column the user named and decide features and the positive label; InvalidSpec on the first problem."""

    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis="columns")
    named = [("--target", target), ("--time-column", time_column), ("--id-column", id_column)]
    named += [("--sensitive", column) for column in sensitive]
    for option, column in named:
        if column is not None and column not in columns:
            raise InvalidSpec(
                f"{option} {column!r} is not a column of {data_file}; its columns are {', '.join(map(repr, columns))}",
                hint=f"Pass one of those to {option} (names are case-sensitive).",
            )
    roles = {"target": target, "time column": time_column, "id column": id_column}
    seen: dict[str, str] = {}
    for role, column in roles.items():
        if column is not None and column in seen:
            raise InvalidSpec(f"column {column!r} is named both as the {seen[column]} and the {role}; each needs its own column")
        if column is not None:
            seen[column] = role
    for column in sensitive:
        if column in seen:
            raise InvalidSpec(
                f"--sensitive {column!r} is the {seen[column]}; a sensitive column describes people, not the label or the row",
                hint="Name a column such as gender or age band.",
            )
    if len(frame) < MIN_ROWS:
        raise InvalidSpec(
            f"{data_file} has {len(frame)} rows; at least {MIN_ROWS} are needed to train and hold out a fifth for evaluation",
            hint="Use a larger extract of the data.",
        )
    label = positive_label(frame[target], target)
    if time_column is not None:
        _check_time(frame[time_column], time_column)
    if id_column is not None:
        _check_id(frame[id_column], id_column)
    for column in dict.fromkeys(sensitive):
        groups = frame[column].nunique(dropna=False)
        if groups > MAX_GROUPS:
            raise InvalidSpec(
                f"--sensitive {column!r} has {groups} distinct values; fairness is reported per group, at most {MAX_GROUPS}",
                hint=f"Add a column that groups {column!r} into bands (e.g. age_band) and name that one.",
            )
    skipped = {
        c: "a date/time: derive numbers from it (e.g. days since) to use it"
        for c in columns
        if c not in seen and _is_time(frame[c])
    }
    features = [c for c in columns if c not in seen and c not in skipped]
    notes = {c: "unique in every row: an id? make it id_column instead" for c in features if _looks_like_id(frame[c])}
    if not features:
        raise InvalidSpec(
            f"{data_file} has no feature columns besides the target, time and id columns",
            hint="The model needs at least one column to learn from.",
        )
    return Plan(
        model=model,
        data_file=data_file,
        rows=len(frame),
        target=target,
        label=label,
        time_column=time_column,
        id_column=id_column,
        sensitive=list(dict.fromkeys(sensitive)),
        features=features,
        notes=notes,
        skipped=skipped,
    )


def positive_label(series: pd.Series, name: str) -> Label | None:
    """None for a target already 0/1 (or boolean); else the positive one of its two values, and why."""
    missing = int(series.isna().sum())
    if missing:
        raise InvalidSpec(
            f"target {name!r} has {missing} missing values; every training row needs a label",
            hint="Drop the unlabelled rows from the file, or fill them.",
        )
    counts = series.value_counts()
    if len(counts) != 2:
        shown = ", ".join(repr(_plain(v)) for v in counts.index[:5]) + (", …" if len(counts) > 5 else "")
        raise InvalidSpec(
            f"target {name!r} has {len(counts)} distinct value(s) ({shown}); Shipyard trains binary classifiers: expected two",
            hint="Name a column with two values, or add one (e.g. churned = status == 'cancelled').",
        )
    if int(counts.min()) < MIN_CLASS_ROWS:
        _too_rare(name, counts)
    values = [_plain(v) for v in counts.index]
    if set(values) <= {0, 1}:
        return None
    tally = " and ".join(f"{v!r} ({int(n)} rows)" for v, n in zip(values, counts.tolist(), strict=True))
    if all(isinstance(v, (int, float)) for v in values):
        if not all(float(v).is_integer() for v in values):
            raise InvalidSpec(
                f"target {name!r} has the values {tally}; a positive label must be a whole number or text",
                hint="Add a 0/1 column for the class to predict and pass it as --target.",
            )
        high = int(max(values))
        return Label(value=high, reason=f"the larger of {tally}")
    if not all(isinstance(v, (str, int)) for v in values):
        raise InvalidSpec(
            f"target {name!r} has the values {tally}; a label must be text or a whole number",
            hint="Add a 0/1 column for the class to predict and pass it as --target.",
        )
    words = [str(v).strip().lower() for v in values]
    positive = [v for v, w in zip(values, words, strict=True) if w in POSITIVE_WORDS]
    negative = [v for v, w in zip(values, words, strict=True) if w in NEGATIVE_WORDS]
    if len(positive) == 1 and len(negative) == 1:
        return Label(value=positive[0], reason=f"the one of {tally} that reads as yes")
    # value_counts puts the commoner first. The rarer class is usually the event a model
    # is built to find (churn, fraud, default); a tie is broken by sort order, stably.
    if counts.iloc[1] < counts.iloc[0]:
        return Label(value=values[1], reason=f"the rarer of {tally}")
    return Label(value=sorted(values, key=str)[1], reason=f"the later in sort order of {tally}")


def _too_rare(name: str, counts: pd.Series) -> None:
    tally = ", ".join(f"{_plain(v)!r}: {int(n)}" for v, n in counts.items())
    raise InvalidSpec(
        f"target {name!r} has too few rows of one class ({tally}); each class needs at least {MIN_CLASS_ROWS}",
        hint="Use a larger extract of the data, with more examples of the rare class.",
    )


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones, so they print and compare plainly."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _check_time(series: pd.Series, name: str) -> None:
    import pandas as pd

    kinds = "a date/time or a number (the holdout is the newest rows by this column)"
    if series.isna().any():
        raise InvalidSpec(
            f"time column {name!r} has {int(series.isna().sum())} missing values; every row needs a time to be ordered by",
            hint="Fill or drop those rows, or leave --time-column out for a seeded random holdout.",
        )
    if pd.api.types.is_datetime64_any_dtype(series):
        return
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return
    if pd.api.types.is_string_dtype(series) and _iso_text(series):
        return
    example = _plain(series.iloc[0])
    raise InvalidSpec(
        f"time column {name!r} holds {series.dtype} values such as {example!r}; expected {kinds}",
        hint="Dates as text must be ISO 8601 (2024-05-31 or 2024-05-31T12:00:00) so that they sort in time order.",
    )


def _looks_like_id(series: pd.Series) -> bool:
    """Text or whole numbers that never repeat: a row id, which a model would only memorise."""
    import pandas as pd

    if pd.api.types.is_float_dtype(series) or pd.api.types.is_bool_dtype(series):
        return False
    return bool(series.notna().all() and series.is_unique)


def _is_time(series: pd.Series) -> bool:
    """Dates and times, also as ISO 8601 text (how a CSV holds them): not usable as model inputs as they are."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return True
    values = series.dropna()
    return pd.api.types.is_string_dtype(series) and len(values) > 0 and _iso_text(values)


def _iso_text(series: pd.Series) -> bool:
    """Text dates the pipeline can sort as text: ISO 8601, whose text order is their time order."""
    import pandas as pd

    text = series.astype(str)
    try:
        parsed = pd.to_datetime(text, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        return False
    by_text = parsed.iloc[text.argsort(kind="stable").to_numpy()]
    return bool(by_text.is_monotonic_increasing)


def _check_id(series: pd.Series, name: str) -> None:
    missing = int(series.isna().sum())
    if missing:
        raise InvalidSpec(
            f"id column {name!r} has {missing} missing values; an id names every row once",
            hint="Fill the missing ids, or leave --id-column out.",
        )
    repeated = series[series.duplicated(keep=False)]
    if len(repeated):
        shown = ", ".join(f"{_plain(v)!r} ×{int(n)}" for v, n in repeated.value_counts().head(3).items())
        raise InvalidSpec(
            f"id column {name!r} is not unique: {repeated.nunique()} values repeat ({shown})",
            hint="Name a column with one value per row, or leave --id-column out.",
        )


def _check_written(folder: Path, plan: Plan) -> None:
    """shipyard.yaml reads back as planned: names from the data cannot have changed its meaning."""
    from shipyard.config import load_spec

    data = load_spec(folder / "shipyard.yaml").models[plan.model].data
    wanted = (plan.target, plan.time_column, plan.id_column, plan.features, plan.label.value if plan.label else None)
    if (data.target, data.time_column, data.id_column, data.features, data.positive_label) != wanted:
        raise InvalidSpec(f"{folder / 'shipyard.yaml'} does not read back as it was written; please report this as a bug")
