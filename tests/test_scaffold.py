"""`shipyard init --from-data`: a governed project around one's own CSV or Parquet file."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from shipyard.config import load_spec
from shipyard.domain.errors import Conflict, InvalidSpec, NotFound, ShipyardError
from shipyard.policy.spec import FairnessRule, load_policy
from shipyard.scaffold.from_data import MAX_GROUPS, MIN_ROWS, init_from_data, model_name, positive_label
from shipyard.service import Shipyard

ACTOR = "alice"


def customers(rows: int = 600, seed: int = 1) -> pd.DataFrame:
    """Mixed types with missing values and a learnable signal: text, ints, floats, nullable ints, booleans, dates."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    plan = rng.choice(["basic", "pro", "team"], rows)
    spend = np.where(rng.random(rows) < 0.1, np.nan, rng.gamma(2.0, 30.0, rows))
    logit = (age - 45) / 12 + (plan == "pro") * 0.8 - np.nan_to_num(spend, nan=60.0) / 80
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "customer": [f"C{i:05d}" for i in range(rows)],
            "signup": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, rows), unit="D"),
            "age": age,
            "plan": np.where(rng.random(rows) < 0.05, None, plan),
            "spend": spend,
            "visits": pd.array(rng.integers(0, 9, rows), dtype="Int64"),
            "vip": rng.random(rows) < 0.2,
            "gender": rng.choice(["f", "m"], rows),
            "last_login": pd.Timestamp("2024-06-01") - pd.to_timedelta(rng.integers(0, 90, rows), unit="D"),
            "churned": np.where(churned, "Yes", "No"),
        }
    )
    frame.loc[7, "visits"] = pd.NA
    return frame


def write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)  # dates become ISO 8601 text, as in most CSV files
    else:
        frame.to_parquet(path, index=False)
    return path


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_project_from_mixed_data_trains_and_meets_its_staging_gate(tmp_path: Path, suffix: str) -> None:
    data = write(customers(), tmp_path / "source" / f"Customer Base{suffix}")
    created = init_from_data(
        tmp_path / "project",
        data,
        target="churned",
        time_column="signup",
        id_column="customer",
        sensitive=["gender"],
        actor=ACTOR,
    )
    root = created.root
    assert created.model == "customer-base"
    assert created.notes == [
        "churned: 'Yes' counts as 1 (the one of 'No' (314 rows) and 'Yes' (286 rows) that reads as yes); "
        "set data.positive_label in shipyard.yaml to predict the other",
        "left out of data.features as dates/times: 'last_login'; derive numbers from them to use them",
    ]

    spec = load_spec(root / "shipyard.yaml")
    assert list(spec.models) == ["customer-base"]
    model = spec.models["customer-base"]
    assert model.data.path == f"data/Customer Base{suffix}"
    assert (root / model.data.path).read_bytes() == data.read_bytes()
    assert (model.data.target, model.data.time_column, model.data.id_column) == ("churned", "signup", "customer")
    assert model.data.positive_label == "Yes"
    # Every column but the target, time and id, listed; the other date is shown but commented out.
    assert model.data.features == ["age", "plan", "spend", "visits", "vip", "gender"]
    assert "# - last_login" in (root / "shipyard.yaml").read_text(encoding="utf-8")
    assert spec.principals == {ACTOR: ["scientist", "deployer"]}

    policy = load_policy(root / model.policy) if model.policy else None
    assert policy is not None and policy.staging and policy.production
    assert policy.sensitive == ["gender"]
    assert {r.metric for r in policy.production if isinstance(r, FairnessRule) and r.sensitive == "gender"} == {
        "equalized_odds_difference",
        "demographic_parity_difference",
    }
    assert "data/retrain/" in (root / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert git(root, "log", "--format=%s").splitlines() == [f"Start a Shipyard project from Customer Base{suffix}"]
    assert git(root, "status", "--porcelain") == ""

    with Shipyard.open(root, actor=ACTOR, env={}) as service:
        result = service.run_pipeline("customer-base")
        staging = service.gate("customer-base", result.version.version, "staging")
        production = service.gate("customer-base", result.version.version, "production")
        evidence = service.evidence("customer-base", result.version.version)
    assert result.rows_train + result.rows_holdout == 600
    assert result.metrics["roc_auc"] > 0.7
    assert staging.passed, [(r.name, r.outcome.value, r.observed) for r in staging.results]
    outcomes = {r.name: r.outcome.value for r in production.results}
    assert outcomes["approvals (approver)"] == "failed" and outcomes["trained from committed code"] == "passed"
    assert "error" not in outcomes.values()
    assert evidence is not None and set(evidence["fairness"]["gender"]["by_group"]) == {"f", "m"}


def test_a_project_from_the_bundled_arrests_data(tmp_path: Path) -> None:
    from shipyard.examples.arrests import write_data

    data = tmp_path / "arrests.parquet"
    write_data(data)
    root = init_from_data(
        tmp_path / "project", data, target="released", time_column="year", sensitive=["colour", "sex"], actor=ACTOR
    ).root
    model = load_spec(root / "shipyard.yaml").models["arrests"]
    assert model.data.positive_label == "Yes"
    assert model.data.id_column is None
    assert model.data.features == ["colour", "age", "sex", "employed", "citizen", "checks"]
    with Shipyard.open(root, actor=ACTOR, env={}) as service:
        result = service.run_pipeline("arrests")
        evidence = service.evidence("arrests", result.version.version)
    assert result.metrics["roc_auc"] > 0.6
    assert evidence is not None and set(evidence["fairness"]["colour"]["by_group"]) == {"Black", "White"}


def test_names_from_the_data_are_data_in_every_file(tmp_path: Path) -> None:
    awkward = ["a: b", "# not a comment", "yes", "two\nlines", "café", "emoji 😀", 'say "hi"', "- item", "2024"]
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({name: rng.normal(size=MIN_ROWS * 2) for name in awkward})
    frame["label: y"] = np.tile([0, 1], MIN_ROWS)
    root = init_from_data(tmp_path / "project", write(frame, tmp_path / "odd.parquet"), target="label: y", git=False).root
    data = load_spec(root / "shipyard.yaml").models["odd"].data
    assert data.features == awkward and data.target == "label: y" and data.positive_label is None
    namespace: dict[str, Any] = {}
    exec(compile((root / "train.py").read_text(encoding="utf-8"), "train.py", "exec"), namespace)
    assert namespace["TARGET"] == "label: y"
    fitted = namespace["train"](frame)
    assert fitted.predict_proba(frame.drop(columns=["label: y"])).shape == (len(frame), 2)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["No"] * 30 + ["Yes"] * 20, "Yes"),  # reads as yes, even though the commoner one differs
        (["yes"] * 30 + ["no"] * 20, "yes"),
        (["stayed"] * 30 + ["left"] * 20, "left"),  # no yes/no: the rarer class
        (["b"] * 25 + ["a"] * 25, "b"),  # a tie: the later in sort order
        ([1] * 30 + [2] * 20, 2),  # numbers: the larger
        ([-1] * 20 + [1] * 30, 1),
        ([0] * 30 + [1] * 20, None),  # already 0/1
        ([True] * 30 + [False] * 20, None),
        ([0.0] * 30 + [1.0] * 20, None),
    ],
)
def test_the_positive_label_is_picked_sensibly(values: list[Any], expected: Any) -> None:
    label = positive_label(pd.Series(values), "target")
    assert (label.value if label else None) == expected
    if label is not None:
        assert type(label.value) is type(expected)


def test_model_name_comes_from_the_file_stem_or_a_valid_option() -> None:
    assert model_name(Path("/x/Telco Customer-Churn (2024).csv"), None) == "telco-customer-churn-2024"
    assert model_name(Path("/x/____.csv"), None) == "model"
    assert model_name(Path("/x/a.csv"), "churn_v2") == "churn_v2"
    with pytest.raises(InvalidSpec, match=r"model name '\.\./x' is not allowed"):
        model_name(Path("/x/a.csv"), "../x")


def _bad(frame: pd.DataFrame | None = None, **changes: Any) -> dict[str, Any]:
    return {"frame": customers() if frame is None else frame, **changes}


def _with(**columns: Any) -> pd.DataFrame:
    frame = customers()
    for name, values in columns.items():
        frame[name] = values
    return frame


REPEATED_IDS = [f"C{i % 590:05d}" for i in range(600)]
BAD_INPUTS: dict[str, tuple[dict[str, Any], type[ShipyardError], list[str]]] = {
    "unknown target": (_bad(target="churn"), InvalidSpec, ["--target 'churn' is not a column", "'customer', 'signup'"]),
    "unknown time column": (_bad(time_column="joined"), InvalidSpec, ["--time-column 'joined' is not a column", "'churned'"]),
    "unknown id column": (_bad(id_column="id"), InvalidSpec, ["--id-column 'id' is not a column"]),
    "unknown sensitive column": (_bad(sensitive=["gender", "race"]), InvalidSpec, ["--sensitive 'race' is not a column"]),
    "text time column": (_bad(time_column="gender"), InvalidSpec, ["time column 'gender' holds", "ISO 8601"]),
    "boolean time column": (_bad(time_column="vip"), InvalidSpec, ["time column 'vip' holds bool", "date/time or a number"]),
    "time column with gaps": (_bad(time_column="spend"), InvalidSpec, ["time column 'spend' has", "missing values"]),
    "repeated ids": (
        _bad(_with(customer=REPEATED_IDS), id_column="customer"),
        InvalidSpec,
        ["id column 'customer' is not unique", "'C00000' ×2"],
    ),
    "missing ids": (
        _bad(_with(customer=[None] + [f"C{i}" for i in range(599)]), id_column="customer"),
        InvalidSpec,
        ["id column", "missing"],
    ),
    "too few rows": (_bad(customers().head(MIN_ROWS - 1)), InvalidSpec, [f"has {MIN_ROWS - 1} rows", f"at least {MIN_ROWS}"]),
    "three classes": (_bad(_with(churned=np.resize(["a", "b", "c"], 600))), InvalidSpec, ["3 distinct value(s)", "expected two"]),
    "one class": (_bad(_with(churned="No")), InvalidSpec, ["1 distinct value(s) ('No')"]),
    "rare class": (_bad(_with(churned=["Yes"] * 5 + ["No"] * 595)), InvalidSpec, ["too few rows of one class", "'Yes': 5"]),
    "unlabelled rows": (_bad(_with(churned=[None] * 3 + ["Yes", "No"] * 298 + ["No"])), InvalidSpec, ["3 missing values"]),
    "fractional classes": (_bad(_with(churned=np.resize([0.5, 1.5], 600))), InvalidSpec, ["whole number or text"]),
    "two roles for one column": (
        _bad(id_column="churned"),
        InvalidSpec,
        ["'churned' is named both as the target and the id column"],
    ),
    "sensitive target": (_bad(sensitive=["churned"]), InvalidSpec, ["--sensitive 'churned' is the target"]),
    "many groups": (_bad(sensitive=["age"]), InvalidSpec, ["--sensitive 'age' has", f"at most {MAX_GROUPS}", "band"]),
    "no features": (
        _bad(customers()[["customer", "signup", "churned"]], id_column="customer"),
        InvalidSpec,
        ["no feature columns"],
    ),
    "bad model name": (_bad(model="my model"), InvalidSpec, ["model name 'my model' is not allowed"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_are_refused_before_anything_is_written(tmp_path: Path, case: str) -> None:
    arguments, error, phrases = BAD_INPUTS[case]
    options = {"target": "churned", "time_column": None, "id_column": None, "sensitive": (), **arguments}
    data = write(options.pop("frame"), tmp_path / "customers.parquet")
    target = tmp_path / "project"
    with pytest.raises(error) as caught:
        init_from_data(target, data, **options)
    said = f"{caught.value.message}\n{caught.value.hint}"  # the CLI prints both
    for phrase in phrases:
        assert phrase in said, said
    assert not target.exists()


@pytest.mark.parametrize(
    ("name", "content", "error", "phrase"),
    [
        ("absent.csv", None, NotFound, "does not exist"),
        ("folder.parquet", "folder", InvalidSpec, "is a folder"),
        ("notes.txt", "a,b\n1,2\n", InvalidSpec, "expected .csv or .parquet"),
        ("broken.parquet", "not parquet", InvalidSpec, "could not be read"),
    ],
)
def test_a_missing_or_unreadable_file_is_refused(
    tmp_path: Path, name: str, content: str | None, error: type, phrase: str
) -> None:
    data = tmp_path / name
    if content == "folder":
        data.mkdir()
    elif content is not None:
        data.write_text(content)
    with pytest.raises(error, match=phrase) as caught:
        init_from_data(tmp_path / "project", data, target="churned")
    assert str(data) in caught.value.message and caught.value.hint and "--from-data" in caught.value.hint
    assert not (tmp_path / "project").exists()


def test_a_folder_in_use_needs_force(tmp_path: Path) -> None:
    data = write(customers(), tmp_path / "customers.parquet")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "notes.md").write_text("mine")
    with pytest.raises(Conflict, match="not empty"):
        init_from_data(tmp_path / "project", data, target="churned")
    root = init_from_data(tmp_path / "project", data, target="churned", force=True, git=False).root
    assert (root / "notes.md").read_text() == "mine" and (root / "data" / "customers.parquet").is_file()
    # Started from the copy inside the project, the data stays where it is.
    again = init_from_data(root, root / "data" / "customers.parquet", target="churned", force=True, git=False).root
    assert (again / "data" / "customers.parquet").read_bytes() == data.read_bytes()
    assert (
        yaml.safe_load((again / "shipyard.yaml").read_text())["models"]["customers"]["data"]["path"] == "data/customers.parquet"
    )


def test_a_likely_id_is_flagged_and_dates_are_shown_but_left_out(tmp_path: Path) -> None:
    root = init_from_data(tmp_path / "project", write(customers(), tmp_path / "c.parquet"), target="churned", git=False).root
    text = (root / "shipyard.yaml").read_text(encoding="utf-8")
    data = load_spec(root / "shipyard.yaml").models["c"].data
    assert data.features == ["customer", "age", "plan", "spend", "visits", "vip", "gender"]
    [customer] = [line for line in text.splitlines() if line.strip().startswith("- customer")]
    assert "an id?" in customer
    assert [line.split("#")[1].strip() for line in text.splitlines() if line.strip().startswith("# - ")] == [
        "- signup",
        "- last_login",
    ]
    # No actor: no principals section, so the project does not lock anyone out.
    assert load_spec(root / "shipyard.yaml").principals is None


@pytest.mark.parametrize("example", ["churn", "arrests", "from-data"])
def test_retraining_data_is_not_an_untracked_file(tmp_path: Path, example: str) -> None:
    from shipyard.scaffold import init_project

    if example == "from-data":
        root = init_from_data(
            tmp_path / "project", write(customers(), tmp_path / "c.parquet"), target="churned", actor=ACTOR
        ).root
        model = "c"
    else:
        root, model = init_project(tmp_path / "project", example=example, actor=ACTOR), example
    with Shipyard.open(root, actor=ACTOR, env={}) as service:
        path = service.retraining_data(model).path
    assert path.parent == root / "data" / "retrain" and path.is_file()
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""


@pytest.mark.parametrize("example", ["churn", "arrests"])
def test_the_bundled_templates_list_their_features_and_show_positive_label(tmp_path: Path, example: str) -> None:
    from shipyard.scaffold import init_project

    root = init_project(tmp_path / "project", example=example, git=False)
    data = load_spec(root / "shipyard.yaml").models[example].data
    columns = pd.read_parquet(root / data.path).columns
    assert data.features == [c for c in columns if c not in (data.target, data.time_column, data.id_column)]
    assert "positive_label:" in (root / "shipyard.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        ({"target": "churned"}, "--target applies only with --from-data FILE"),
        ({"sensitive": ["gender"], "model": "m"}, "--sensitive, --model apply only with --from-data FILE"),
        ({"from_data": Path("c.csv"), "example": "churn", "target": "churned"}, "--example and --from-data are alternatives"),
        ({"from_data": Path("c.csv")}, "--from-data needs --target COLUMN"),
        ({"example": "iris"}, "unknown example 'iris'"),
    ],
)
def test_init_options_that_do_not_fit_together_are_refused(tmp_path: Path, options: dict[str, Any], phrase: str) -> None:
    from shipyard.scaffold import start_project

    with pytest.raises(InvalidSpec) as caught:
        start_project(tmp_path / "project", **options)
    assert phrase in caught.value.message
    assert not (tmp_path / "project").exists()


def test_init_starts_from_an_example_or_from_data(tmp_path: Path) -> None:
    from shipyard.scaffold import start_project

    example = start_project(tmp_path / "a", git=False)
    assert (example.model, example.notes) == ("churn", []) and (example.root / "data" / "churn.parquet").is_file()
    data = write(customers(), tmp_path / "c.parquet")
    own = start_project(tmp_path / "b", from_data=data, target="churned", model="retention", git=False)
    assert own.model == "retention" and (own.root / "policies" / "retention.yaml").is_file()
    assert any("'customer' is unique in every row" in note for note in own.notes)


FROM_DATA = ("--id-column", "customer", "--sensitive", "gender")


def test_the_command_line_starts_a_project_from_data(tmp_path: Path) -> None:
    """`shipyard init --from-data` as a user types it: the real command in its own process."""
    import sys

    data = write(customers(), tmp_path / "accounts.csv")
    shipyard = str(Path(sys.executable).with_name("shipyard"))
    done = subprocess.run(
        [shipyard, "--actor", "dana", "init", str(tmp_path / "p"), "--from-data", str(data), "--target", "churned", *FROM_DATA],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "shipyard pipeline run accounts" in done.stdout and "dana is a scientist and deployer" in done.stdout
    spec = load_spec(tmp_path / "p" / "shipyard.yaml")
    assert spec.models["accounts"].data.target == "churned" and "customer" not in (spec.models["accounts"].data.features or [])
    refused = subprocess.run([shipyard, "init", str(tmp_path / "q"), "--target", "churned"], capture_output=True, text=True)
    assert refused.returncode == 2 and "--target applies only with --from-data FILE" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "q").exists()
