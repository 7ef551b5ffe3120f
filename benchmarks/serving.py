"""Serving throughput and latency: `mlflow models serve` beside `shipyard serve`, same model, same load.

Builds a project, registers and promotes the model through Shipyard, starts both
servers on loopback, drives each with wrk (Debian's `wrk` package) in
interleaved rounds, and prints requests/s, p50 and p99 for single-row requests
at concurrency 1 and 32, rows/s for 100-row requests, and the ratios. Every
load is bounded in time.

Two models: ``churn`` is the demo's champion (a one-hot-encoding scikit-learn
pipeline whose own predict_proba takes ~4 ms a call, so it bounds concurrency 1
on any server); ``wide`` is a 20-feature HistGradientBoosting on numeric
features, the reference model the serving targets were set on (~0.7 ms a call); ``lightgbm`` is the same
data with a LightGBM classifier (scikit-learn API, 100 trees), trained by the pipeline's train().

    .venv/bin/python benchmarks/serving.py [--model churn|wide|lightgbm] [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from shipyard.examples.churn.generator import SAMPLE_CUSTOMER
from shipyard.serving.server import free_port

BIN = Path(sys.executable).parent
WIDE_FEATURES = [f"x{i:02d}" for i in range(20)]
WIDE_TRAIN = """from sklearn.ensemble import HistGradientBoostingClassifier


def train(frame):
    return HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(frame.drop(columns=["y"]), frame["y"])
"""
LIGHTGBM_TRAIN = """from lightgbm import LGBMClassifier


def train(frame):
    return LGBMClassifier(n_estimators=100, verbose=-1, random_state=0).fit(frame.drop(columns=["y"]), frame["y"])
"""


def churn_project(root: Path) -> tuple[str, dict[str, object]]:
    done = subprocess.run([BIN / "shipyard", "demo", "--dir", str(root)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"`shipyard demo` failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return "churn", SAMPLE_CUSTOMER


def wide_project(root: Path, train: str = WIDE_TRAIN) -> tuple[str, dict[str, object]]:
    """A project whose only model is a 20-feature HistGradientBoosting, registered and promoted through Shipyard."""
    import numpy as np
    import pandas as pd
    import yaml
    from sklearn.datasets import make_classification

    subprocess.run([BIN / "shipyard", "init", str(root)], check=True, capture_output=True)
    x, y = make_classification(n_samples=20_000, n_features=20, n_informative=12, random_state=0)
    frame = pd.DataFrame(x, columns=WIDE_FEATURES)
    frame["y"] = y
    frame.to_parquet(root / "data" / "wide.parquet", index=False)
    (root / "train_wide.py").write_text(train)
    config = yaml.safe_load((root / "shipyard.yaml").read_text())
    # Gates fail closed: the benchmark's model passes them on purpose, through a policy that says so.
    (root / "policies" / "bench.yaml").write_text("allow_empty: true\nstaging: []\nproduction: []\n")
    config["models"] = {
        "wide": {
            "owner": "bench",
            "train": "train_wide.py:train",
            "policy": "policies/bench.yaml",
            "data": {"path": "data/wide.parquet", "target": "y"},
        }
    }
    (root / "shipyard.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    shipyard = [str(BIN / "shipyard"), "--project", str(root)]
    subprocess.run([*shipyard, "pipeline", "run", "wide"], check=True, capture_output=True)
    for stage in ("staging", "production"):
        subprocess.run(
            [*shipyard, "promote", "wide", "1", "--to", stage, "--reason", "benchmark"], check=True, capture_output=True
        )
    row = dict(zip(WIDE_FEATURES, np.round(x[0], 4).tolist(), strict=True))
    return "wide", row


def wait_http(url: str, since: float, timeout: float = 120.0) -> float:
    """Seconds from ``since`` until ``url`` answers 200."""
    while time.monotonic() - since < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - since
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def wrk(url: str, body: str, connections: int, seconds: int) -> dict[str, float]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\nwrk.headers["Content-Type"] = "application/json"\n'
        "done = function(summary, latency, requests)\n"
        "  local e = summary.errors\n"
        '  io.write(string.format("OK %d %d %d %d\\n", summary.requests, '
        "e.status + e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))\n"
        "end\n"
    )
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    )
    script.unlink()
    match = re.search(r"OK (\d+) (\d+) (\d+) (\d+)", done.stdout)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{done.stdout}")
    requests, errors, p50_us, p99_us = map(int, match.groups())
    return {"rps": requests / seconds, "errors": errors, "p50_ms": p50_us / 1000, "p99_ms": p99_us / 1000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", choices=["churn", "wide", "lightgbm"], default="churn")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    root = Path(tempfile.mkdtemp(prefix="shipyard-bench-")) / "project"
    if args.model == "churn":
        model, row = churn_project(root)
    else:
        model, row = wide_project(root, LIGHTGBM_TRAIN if args.model == "lightgbm" else WIDE_TRAIN)
    tracking = f"sqlite:///{root / '.shipyard' / 'mlflow.db'}"
    # mlflow starts its server by running `uvicorn` from PATH.
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "OMP_NUM_THREADS": "1", "PATH": f"{BIN}:{os.environ['PATH']}"}
    mlflow_port, shipyard_port = free_port(), free_port()
    peer_started = time.monotonic()
    peer = subprocess.Popen(
        [
            BIN / "mlflow",
            "models",
            "serve",
            "-m",
            f"models:/{model}@production",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "-p",
            str(mlflow_port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ours_started = time.monotonic()
    ours = subprocess.Popen(
        [BIN / "shipyard", "--project", str(root), "--actor", "ops.deployer", "serve", "--port", str(shipyard_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        mlflow_start = wait_http(f"http://127.0.0.1:{mlflow_port}/ping", peer_started, 180)
        shipyard_start = wait_http(f"http://127.0.0.1:{shipyard_port}/v2/health/ready", ours_started, 180)
        targets = {
            "mlflow": (f"http://127.0.0.1:{mlflow_port}/invocations", "dataframe_records"),
            "shipyard": (f"http://127.0.0.1:{shipyard_port}/v1/models/{model}:predict", "instances"),
        }
        loads = {"1 row, c=1": (1, 1), "1 row, c=32": (1, 32), "100 rows, c=1": (100, 1)}
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        for _ in range(args.rounds):  # interleaved, so machine noise hits both alike
            for load, (rows, connections) in loads.items():
                for name, (url, key) in targets.items():
                    body = json.dumps({key: [row] * rows})
                    wrk(url, body, connections, 2)  # warm-up
                    results.setdefault((name, load), []).append(wrk(url, body, connections, args.seconds))
        print(f"{model} champion, {args.rounds} interleaved rounds of {args.seconds} s each; medians")
        print(f"start-up to first answer: mlflow {mlflow_start:.1f} s, shipyard {shipyard_start:.1f} s")
        print(f"{'load':<14} {'server':<9} {'req/s':>9} {'rows/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for load, (rows, _) in loads.items():
            for name in targets:
                runs = results[(name, load)]
                rps = statistics.median(r["rps"] for r in runs)
                print(
                    f"{load:<14} {name:<9} {rps:>9.1f} {rps * rows:>9.0f} {statistics.median(r['p50_ms'] for r in runs):>8.2f} "
                    f"{statistics.median(r['p99_ms'] for r in runs):>8.2f} {sum(r['errors'] for r in runs):>7.0f}"
                )
            ratio = statistics.median(r["rps"] for r in results[("shipyard", load)]) / statistics.median(
                r["rps"] for r in results[("mlflow", load)]
            )
            print(f"{'':<14} {'ratio':<9} {ratio:>8.1f}×")
    finally:
        for process in (peer, ours):
            process.terminate()
        for process in (peer, ours):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
