"""Drift reports: Shipyard's profile + report beside Evidently 0.7's DataDriftPreset and a plain SciPy loop.

Generates seeded reference/current frames (20 numeric columns: normal, lognormal and
integer-valued with ties; 3 categorical; 5 columns shifted, one of them by only 0.05σ), gives
every column the same method and threshold on all three sides, and prints the seconds, the
ratio and whether the same columns are flagged. Evidently runs in its own virtual environment
(benchmarks/.venv-evidently, created on first use: Evidently 0.7.23 needs pandas < 3) reading
the same frames from Parquet files in a temporary folder.

    .venv/bin/python benchmarks/drift.py [--rows 100000] [--no-evidently] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EVIDENTLY_VENV = HERE / ".venv-evidently"
# Exact pins: Evidently 0.7.23 fails to import under pandas 3; the same NumPy and SciPy as the
# project keep the p-values comparable.
EVIDENTLY_PINS = ["evidently==0.7.23", "pandas==2.3.3", "numpy==2.4.6", "scipy==1.17.1", "pyarrow==25.0.1"]
SIZES = (100_000, 1_000_000)
EVIDENTLY_TIMEOUT = 1800  # seconds for one Evidently run; it took about 100 s at 1M rows

# Column → (what changes in the current data, the method and threshold every side uses).
COLUMNS: dict[str, tuple[str, str, float]] = {
    "n00": ("", "ks", 0.05),
    "n01": ("mean +0.5σ", "wasserstein", 0.1),
    "n02": ("", "ks", 0.05),
    "n03": ("mean +0.05σ", "ks", 0.05),
    "n04": ("", "wasserstein", 0.1),
    "n05": ("", "ks", 0.05),
    "n06": ("", "wasserstein", 0.1),
    "n07": ("", "ks", 0.05),
    "n08": ("", "wasserstein", 0.1),
    "n09": ("", "ks", 0.05),
    "n10": ("log-σ 1.0→1.15", "wasserstein", 0.1),
    "n11": ("", "ks", 0.05),
    "n12": ("", "wasserstein", 0.1),
    "n13": ("", "ks", 0.05),
    "n14": ("", "ks", 0.05),
    "n15": ("Poisson 4→4.4", "wasserstein", 0.1),
    "n16": ("", "ks", 0.05),
    "n17": ("", "wasserstein", 0.1),
    "n18": ("", "ks", 0.05),
    "n19": ("", "wasserstein", 0.1),
    "c0": ("", "jensenshannon", 0.1),
    "c1": ("one share +6 pts", "chisquare", 0.05),
    "c2": ("", "jensenshannon", 0.1),
}
NUMERIC = [name for name in COLUMNS if name.startswith("n")]
CATEGORICAL = [name for name in COLUMNS if name.startswith("c")]


def make_frames(rows: int, seed: int = 0) -> tuple[Any, Any]:
    """Reference and current frames drawn from the same distributions except the shifted columns."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)

    def draw(shifted: bool) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for i in range(8):  # normal, assorted location and scale
            loc, scale = 10.0 * i, 1.0 + i
            if i == 1 and shifted:
                loc += 0.5 * scale
            if i == 3 and shifted:
                loc += 0.05 * scale
            data[f"n{i:02d}"] = rng.normal(loc, scale, rows)
        for i in range(8, 14):  # lognormal, heavy right tail
            sigma = (1.15 if shifted else 1.0) if i == 10 else 0.3 + 0.05 * i
            data[f"n{i:02d}"] = rng.lognormal(0.0, sigma, rows)
        data["n14"] = rng.poisson(2.0, rows).astype(np.float64)  # integers: heavy ties
        data["n15"] = rng.poisson(4.4 if shifted else 4.0, rows).astype(np.float64)
        data["n16"] = rng.binomial(20, 0.3, rows).astype(np.float64)
        data["n17"] = np.round(rng.normal(50.0, 8.0, rows))
        data["n18"] = rng.integers(0, 100, rows).astype(np.float64)
        data["n19"] = rng.geometric(0.2, rows).astype(np.float64)
        data["n05"][rng.random(rows) < 0.01] = np.nan  # some missing values
        data["c0"] = rng.choice(["red", "green", "blue", "black"], rows, p=[0.4, 0.3, 0.2, 0.1])
        shares = np.array([0.30, 0.20, 0.15, 0.10, 0.10, 0.07, 0.05, 0.03])
        if shifted:
            shares = shares + np.array([-0.06, 0.0, 0.0, 0.06, 0.0, 0.0, 0.0, 0.0])
        data["c1"] = rng.choice([f"k{j}" for j in range(8)], rows, p=shares)
        zipf = 1.0 / np.arange(1, 31)
        c2 = rng.choice([f"v{j:02d}" for j in range(30)], rows, p=zipf / zipf.sum()).astype(object)
        c2[rng.random(rows) < 0.02] = None
        data["c2"] = c2
        return pd.DataFrame(data)[list(COLUMNS)]

    return draw(False), draw(True)


def shipyard_spec() -> Any:
    from shipyard.monitoring.drift import ChiSquareMethod, DriftSpec, JensenShannonMethod, KSMethod, WassersteinMethod

    methods: dict[str, Any] = {}
    for name, (_, method, threshold) in COLUMNS.items():
        if method == "ks":
            methods[name] = KSMethod(alpha=threshold)
        elif method == "wasserstein":
            methods[name] = WassersteinMethod(threshold=threshold)
        elif method == "jensenshannon":
            methods[name] = JensenShannonMethod(threshold=threshold)
        else:  # Evidently's chisquare is a goodness-of-fit test
            methods[name] = ChiSquareMethod(alpha=threshold, test="goodness_of_fit")
    return DriftSpec(features=methods)


def run_shipyard(reference: Any, current: Any, repeat: int) -> dict[str, Any]:
    """Best-of-``repeat`` seconds for the profile build and the report, and the report's verdicts."""
    from shipyard.monitoring.drift import drift_report
    from shipyard.monitoring.profile import build_profile

    spec = shipyard_spec()
    builds, reports = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        profile = build_profile(reference, categorical=CATEGORICAL)
        middle = time.perf_counter()
        report = drift_report(profile, current, spec=spec)
        reports.append(time.perf_counter() - middle)
        builds.append(middle - start)
    auto = drift_report(profile, current)  # the defaults: significance and effect size together
    values = {name: next(iter(feature.observed.values())) for name, feature in report.features.items()}
    return {
        "profile": min(builds),
        "report": min(reports),
        "drifted": sorted(report.drifted),
        "auto": sorted(auto.drifted),
        "values": values,
        "details": {name: auto.features[name].reason for name in ("n03", "n00")},
    }


def run_scipy(reference: Any, current: Any) -> dict[str, Any]:
    """A plain loop: one SciPy call per column on the raw data, as a notebook would."""
    import numpy as np
    from scipy import stats
    from scipy.spatial import distance

    start = time.perf_counter()
    drifted, values = [], {}
    for name, (_, method, threshold) in COLUMNS.items():
        ref, cur = reference[name].dropna(), current[name].dropna()
        if method == "ks":
            value = float(stats.ks_2samp(ref.to_numpy(), cur.to_numpy()).pvalue)
            flagged = value < threshold
        elif method == "wasserstein":
            value = stats.wasserstein_distance(ref.to_numpy(), cur.to_numpy()) / max(float(np.std(ref.to_numpy())), 0.001)
            flagged = value >= threshold
        else:
            ref_counts, cur_counts = ref.value_counts(), cur.value_counts()
            keys = sorted(set(ref_counts.index) | set(cur_counts.index))
            r = ref_counts.reindex(keys, fill_value=0).to_numpy(dtype=float)
            c = cur_counts.reindex(keys, fill_value=0).to_numpy(dtype=float)
            if method == "jensenshannon":
                value = float(distance.jensenshannon(r, c))
                flagged = value >= threshold
            else:
                value = float(stats.chisquare(c, r * (c.sum() / r.sum())).pvalue)
                flagged = value < threshold
        values[name] = value
        if flagged:
            drifted.append(name)
    return {"seconds": time.perf_counter() - start, "drifted": sorted(drifted), "values": values}


def ensure_evidently() -> Path:
    """The Evidently interpreter, installing the pinned environment on first use."""
    python = EVIDENTLY_VENV / "bin" / "python"
    stamp = EVIDENTLY_VENV / ".pins"
    if python.exists() and stamp.exists() and stamp.read_text() == " ".join(EVIDENTLY_PINS):
        return python
    base = shutil.which("python3.11") or sys.executable
    print(f"creating {EVIDENTLY_VENV.relative_to(HERE.parent)} with {' '.join(EVIDENTLY_PINS)} …", flush=True)
    subprocess.run([base, "-m", "venv", "--clear", str(EVIDENTLY_VENV)], check=True, timeout=300)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *EVIDENTLY_PINS], check=True, timeout=1200)
    stamp.write_text(" ".join(EVIDENTLY_PINS))
    return python


def run_evidently(python: Path, folder: Path, reference: Any, current: Any) -> dict[str, Any]:
    reference.to_parquet(folder / "reference.parquet")
    current.to_parquet(folder / "current.parquet")
    done = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--evidently-worker", str(folder)],
        capture_output=True,
        text=True,
        timeout=EVIDENTLY_TIMEOUT,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"the Evidently run failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def evidently_worker(folder: Path) -> None:
    """Runs inside the Evidently environment: DataDriftPreset with the same per-column methods, timed."""
    import warnings

    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    warnings.simplefilter("ignore")
    reference = pd.read_parquet(folder / "reference.parquet")
    current = pd.read_parquet(folder / "current.parquet")
    start = time.perf_counter()
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    preset = DataDriftPreset(
        per_column_method={name: method for name, (_, method, _) in COLUMNS.items()},
        per_column_threshold={name: threshold for name, (_, _, threshold) in COLUMNS.items()},
    )
    snapshot = Report([preset], include_tests=True).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    seconds = time.perf_counter() - start
    result = snapshot.dict()
    values = {m["config"]["column"]: float(m["value"]) for m in result["metrics"] if m["config"]["type"].endswith(":ValueDrift")}
    drifted = [t["metric_config"]["params"]["column"] for t in result["tests"] if t["id"] == "drift" and t["status"] == "FAIL"]
    print(json.dumps({"seconds": seconds, "drifted": sorted(drifted), "values": values}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, action="append", help="frame size (repeatable); default: 100000 and 1000000")
    parser.add_argument("--no-evidently", action="store_true", help="skip Evidently (no extra virtual environment)")
    parser.add_argument("--repeat", type=int, default=3, help="Shipyard runs per size (best taken)")
    parser.add_argument("--evidently-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.evidently_worker:
        evidently_worker(args.evidently_worker)
        return
    python = None if args.no_evidently else ensure_evidently()
    rows_list = args.rows or list(SIZES)
    summary = []
    for rows in rows_list:
        reference, current = make_frames(rows)
        ours = run_shipyard(reference, current, args.repeat)
        loop = run_scipy(reference, current)
        theirs = None
        if python is not None:
            with tempfile.TemporaryDirectory(prefix="shipyard-drift-") as folder:
                theirs = run_evidently(python, Path(folder), reference, current)
        summary.append((rows, ours, loop, theirs))
        print_details(rows, ours, loop, theirs)
    print_summary(summary)


def print_details(rows: int, ours: dict[str, Any], loop: dict[str, Any], theirs: dict[str, Any] | None) -> None:
    print(f"\n{rows:,} rows: 20 numeric + 3 categorical columns, 5 shifted; value = the configured method's p-value or distance")
    print(f"{'column':<7} {'shift':<17} {'method':<14} {'shipyard':>11} {'scipy loop':>11} {'evidently':>11}  flagged by")
    for name, (shift, method, threshold) in COLUMNS.items():
        flags = [
            side
            for side, result in (("shipyard", ours), ("scipy", loop), ("evidently", theirs))
            if result and name in result["drifted"]
        ]
        other = f"{theirs['values'][name]:>11.3g}" if theirs else f"{'-':>11}"
        print(
            f"{name:<7} {shift:<17} {method + f' {threshold:g}':<14} {ours['values'][name]:>11.3g} {loop['values'][name]:>11.3g} "
            f"{other}  {', '.join(flags) or '-'}"
        )
    print(f"shipyard defaults (auto: significance and effect size) flag: {', '.join(ours['auto'])}")
    for name, reason in ours["details"].items():
        print(f"  {name}: {reason}")


def print_summary(summary: list[tuple[int, dict[str, Any], dict[str, Any], dict[str, Any] | None]]) -> None:
    print(
        f"\n{'rows':>9} {'shipyard s':>11} {'(profile':>9} {'+ report)':>9} {'evidently s':>12} {'scipy loop s':>13} "
        f"{'ratio':>7} {'ratio, report':>14}  same verdicts"
    )
    for rows, ours, loop, theirs in summary:
        total = ours["profile"] + ours["report"]
        seconds = theirs["seconds"] if theirs else None
        ratio = f"{seconds / total:.0f}×" if seconds else "-"
        ratio_report = f"{seconds / ours['report']:.0f}×" if seconds else "-"
        same = ours["drifted"] == loop["drifted"] and (theirs is None or ours["drifted"] == theirs["drifted"])
        print(
            f"{rows:>9,} {total:>11.3f} {ours['profile']:>9.3f} {ours['report']:>9.3f} "
            f"{(f'{seconds:.2f}' if seconds else '-'):>12} {loop['seconds']:>13.2f} "
            f"{ratio:>7} {ratio_report:>14}  "
            f"{'yes' if same else 'no'} ({', '.join(ours['drifted'])})"
        )
        if not same:
            print(f"{'':>9} scipy: {', '.join(loop['drifted'])}; evidently: {', '.join(theirs['drifted']) if theirs else '-'}")


if __name__ == "__main__":
    main()
