"""The text of the files `shipyard init --from-data` writes, commented for a first read.

Column names and other values from the data go through ``quote``: plain when
they can only read as themselves, else double-quoted with escapes, so no name
can end a comment, start a key or change the document.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.scaffold.from_data import Plan

GITIGNORE = """\
.shipyard/
__pycache__/
data/retrain/
"""

# Generic training code: any mix of text, categorical, boolean and numeric columns,
# with missing values. Only top-level scikit-learn and numpy objects go into the
# pipeline: the registry saves models with skops, which loads nothing else.
TRAIN_PY = '''\
"""Training code: a plain function from the training rows to a fitted model.

Shipyard calls ``train(frame)`` with the feature columns listed in shipyard.yaml
plus the target, then evaluates, logs and registers what it returns. Change
anything here; keep the signature.
"""

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

TARGET = None


def train(frame):
    features = frame.drop(columns=[TARGET])
    numeric = features.select_dtypes(["number", "bool", "boolean"]).columns.tolist()
    categorical = [column for column in features.columns if column not in numeric]
    encode = ColumnTransformer(
        [
            # Text and categories as text (a missing value is one more value), then one 0/1
            # column for each of the 20 most frequent values; rarer and unseen ones share one.
            (
                "categorical",
                make_pipeline(
                    FunctionTransformer(np.asarray, kw_args={"dtype": "U"}, feature_names_out="one-to-one"),
                    OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=20, sparse_output=False),
                ),
                categorical,
            ),
            # Numbers and booleans as they are: the classifier handles missing values itself.
            ("numeric", "passthrough", numeric),
        ],
        sparse_threshold=0.0,
    ).set_output(transform="pandas")  # keeps pandas' missing-value markers out of a numpy array
    # Cautious settings that suit most tables: small steps, few large leaves, and training stops
    # when a tenth of the rows set aside stops improving; scores then move little with small input changes.
    classify = HistGradientBoostingClassifier(
        learning_rate=0.05,
        max_iter=300,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        early_stopping=True,
        random_state=0,
    )
    model = Pipeline([("encode", encode), ("classify", classify)])
    return model.fit(features, frame[TARGET])
'''

PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# Words YAML 1.1 reads as booleans or null when unquoted.
SPECIAL = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def quote(value: object) -> str:
    """``value`` as a YAML scalar: plain when it can only read as that text, else double-quoted with escapes."""
    text = str(value)
    if PLAIN.fullmatch(text) and text.lower() not in SPECIAL:
        return text
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _line(text: str, comment: str, width: int = 38) -> str:
    return f"{text:<{width}}# {comment}" if len(text) < width else f"{text}  # {comment}"


def project_yaml(plan: Plan, *, actor: str | None) -> str:
    """shipyard.yaml: the project, its one model and who may act on it."""
    model = quote(plan.model)
    lines = [
        f"# Shipyard project for {quote(plan.data_file)}, made by `shipyard init --from-data`.",
        "# Every key is explained in the README; this file and the policy are the project's configuration.",
        f"project: {model}",
        "",
        "# store:",
        "#   url: postgresql+psycopg://shipyard@db.internal:5432/shipyard   # default: SQLite under .shipyard/",
        "# mlflow:",
        "#   tracking_uri: http://mlflow.internal:5000                       # default: SQLite under .shipyard/",
        "",
        "models:",
        f"  {model}:",
        _line(f"    owner: {quote(actor or 'you@example.com')}", "who answers for this model"),
        f"    description: {quote('Predicts ' + plan.target + ' from ' + plan.data_file + '.')}",
        _line("    risk_tier: medium", "low, medium or high"),
        _line("    train: train.py:train", "FILE.py:FUNCTION, called with the training rows"),
        _line("    primary_metric: roc_auc", "what the champion comparison and the registry rank by"),
        f"    policy: {quote('policies/' + plan.model + '.yaml')}",
        "    data:",
        _line(f"      path: {quote('data/' + plan.data_file)}", "CSV or Parquet, relative to this folder"),
        _line(f"      target: {quote(plan.target)}", "the label the model predicts"),
    ]
    if plan.label is not None:
        lines.append(_line(f"      positive_label: {_scalar(plan.label.value)}", f"counts as 1: {plan.label.reason}"))
    else:
        lines.append(_line('      # positive_label: "yes"', "for a target that is not 0/1: the value that counts as 1"))
    if plan.time_column is not None:
        lines.append(_line(f"      time_column: {quote(plan.time_column)}", "the holdout is the newest rows by this column"))
    else:
        lines.append(_line("      # time_column: signup_date", "hold out the newest rows (default: a seeded random holdout)"))
    if plan.id_column is not None:
        lines.append(_line(f"      id_column: {quote(plan.id_column)}", "one per row; matches labels to predictions"))
    else:
        lines.append(_line("      # id_column: customer_id", "a unique row id, kept out of the model"))
    lines.append(
        _line(
            "      features:",
            "the model's inputs, signature and drift profile: delete a line to keep a column (a leak, an id) out",
        )
    )
    for column in plan.features:
        note = plan.notes.get(column)
        lines.append(_line(f"        - {quote(column)}", note) if note else f"        - {quote(column)}")
    lines += [_line(f"        # - {quote(column)}", reason) for column, reason in plan.skipped.items()]
    lines += [
        _line("      holdout_fraction: 0.2", "share of rows held out to evaluate on"),
        _line("      seed: 42", "the random holdout and the checks are repeatable"),
        "",
        "# Who may do what. Roles: viewer, scientist, approver, deployer, admin.",
        "# The production gate needs an approval from an approver who did not train the version.",
    ]
    if actor:
        lines += ["principals:", f"  {quote(actor)}: [scientist, deployer]", "  # reviewer@example.com: [approver]"]
    else:
        lines += [
            "# principals:                       # without this section every actor holds every role but admin",
            "#   you@example.com: [scientist, deployer]",
            "#   reviewer@example.com: [approver]",
        ]
    return "\n".join(lines) + "\n"


def _scalar(value: str | int) -> str:
    return str(value) if isinstance(value, int) else quote(value)


def policy_yaml(plan: Plan) -> str:
    """The model's promotion policy: gates any tabular model can be held to, fairness on the sensitive columns."""
    sensitive = ", ".join(quote(column) for column in plan.sensitive)
    lines = [
        f"# Promotion policy for {quote(plan.model)}, as code. Every rule names what it checks; a rule with",
        '# `severity: warn` reports without blocking. See the README\'s "Policies" for every kind.',
        "",
        _line(f"sensitive: [{sensitive}]", "columns to report fairness by, e.g. [gender]", width=34),
        "# slices: [region]                # columns to report metrics by, per value",
        "# constraints:                    # bounds on top of the schema inferred from the first training data",
        "#   age: {min: 0, max: 120}",
        "break_glass: {allowed: false}     # true lets an admin override a blocked gate, flagged in the audit log",
        "",
        "staging:",
        "  - kind: metric                  # a floor, not a target: it only stops a model no better than chance",
        "    metric: roc_auc",
        '    op: ">="',
        "    value: 0.6",
        "    message: Below 0.6 AUC the model has learnt little; raise this floor to what the use needs.",
        "  - kind: data_validation         # the data still matches the schema of the first training data",
        "    max_failure_rate: 0.01",
        "  - kind: robustness              # small input noise moves scores only a little; no probe crashes it",
        "    max_mean_change: 0.02",
        "  - kind: artifacts",
        "    required: [model_card.md, lineage.json, requirements.txt]",
        "  - kind: data_sources            # trained only on files in this project's data/ folder",
        '    approved: ["file://*/data/*"]',
        "",
        "production:",
        "  - kind: compare_champion        # non-inferior: the CI of the AUC change must stay above -0.01",
        "    metric: roc_auc",
        "    max_drop: 0.01",
        "    alpha: 0.05",
    ]
    for column in plan.sensitive:
        lines += [
            "  - kind: fairness                # true and false positive rates close across groups",
            "    metric: equalized_odds_difference",
            f"    sensitive: {quote(column)}",
            "    max: 0.1",
            "  - kind: fairness                # predicted positive rates; they differ wherever actual rates do",
            "    metric: demographic_parity_difference",
            f"    sensitive: {quote(column)}",
            "    max: 0.1",
            "    severity: warn",
        ]
    if not plan.sensitive:
        lines += [
            "  # - kind: fairness              # name a column in `sensitive` above, then gate on it",
            "  #   metric: equalized_odds_difference",
            "  #   sensitive: gender",
            "  #   max: 0.1",
        ]
    lines += [
        "  - kind: approvals",
        "    count: 1",
        "    role: approver",
        "  - kind: expr",
        "    name: trained from committed code",
        "    expr: evidence.lineage.git_clean == true",
        "    message: Commit the training code before asking for production.",
    ]
    return "\n".join(lines) + "\n"
