"""Serving throughput and latency, side by side in one run: `mlflow models serve`, `shipyard serve` on its
fastest runtime and pinned to scikit-learn, `mlserver` where installed, and a constant Starlette route.

For each model, builds a project, trains and registers the model through Shipyard, puts it in
production through the store (what is served is under test here, not the gates), starts every
server on loopback, and drives each with wrk (Debian's `wrk` package) in interleaved rounds:
requests/s, p50 and p99 for single-row requests at concurrency 1 and 32, and rows/s for 100-row
requests. Every load is bounded in time.

The constant route (a Starlette route that reads the request and answers a fixed body, on the
same uvicorn settings: uvloop, httptools) is the yardstick: the machine's HTTP ceiling that
hour, so the gateway's figure reads as a share of it whatever else the machine is doing.

Models:
- ``churn``: the demo's champion, a one-hot-encoding gradient-boosting pipeline (numpy tree walk);
- ``wide``: a 20-feature HistGradientBoosting on numeric features (numpy tree walk);
- ``linear``: scaler + polynomial features + one-hot + logistic regression on the churn data (ONNX Runtime).
- ``lightgbm``: the ``wide`` data with LightGBM's classifier, 100 trees (ONNX Runtime where its conversion agrees).

    .venv/bin/python benchmarks/serving.py [--model churn wide linear] [--seconds 10] [--rounds 2]
        [--mlserver /path/to/venv/bin/mlserver] [--no-mlflow] [--no-plain] [--workers 2]

mlserver is not a dependency: install it for the benchmark only, in a virtual environment of its own
(`python -m venv /tmp/mlserver && /tmp/mlserver/bin/pip install mlserver mlserver-sklearn`), and pass
its `mlserver` command; it serves the same fitted model, saved with joblib, through its scikit-learn runtime.
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
from typing import Any

from shipyard.examples.churn.generator import SAMPLE_CUSTOMER
from shipyard.serving.server import free_port

BIN = Path(sys.executable).parent
WIDE_FEATURES = [f"x{i:02d}" for i in range(20)]
WIDE_TRAIN = """from sklearn.ensemble import HistGradientBoostingClassifier


def train(frame):
    return HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(frame.drop(columns=["y"]), frame["y"])
"""
# The same data with LightGBM's classifier (scikit-learn API), trained by the pipeline's train().
LIGHTGBM_TRAIN = """from lightgbm import LGBMClassifier


def train(frame):
    return LGBMClassifier(n_estimators=100, verbose=-1, random_state=0).fit(frame.drop(columns=["y"]), frame["y"])
"""
LINEAR_TRAIN = """from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler

CATEGORICAL = ["contract_type", "payment_method", "internet_service", "gender"]
NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "senior_citizen"]


def train(frame):
    numeric = Pipeline([("scale", StandardScaler()), ("poly", PolynomialFeatures(2))])
    encode = ColumnTransformer(
        [("numeric", numeric, NUMERIC), ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)]
    )
    model = Pipeline([("encode", encode), ("classify", LogisticRegression(max_iter=1000))])
    return model.fit(frame[NUMERIC + CATEGORICAL], frame["churned"])
"""
CONSTANT_ROUTE = """
import sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

BODY = b'{"model_name":"constant","outputs":[{"name":"predictions","datatype":"INT64","shape":[1],"data":[0]}]}'


async def constant(request):
    await request.body()
    return Response(BODY, media_type="application/json")


app = Starlette(routes=[Route("/predict", constant, methods=["POST"]), Route("/ping", lambda r: Response(b"ok"))])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", loop="uvloop", http="httptools")
"""


def build(root: Path, model: str) -> tuple[str, dict[str, Any]]:
    """A project serving ``model`` (its registered name, and one request row), its version 1 in production."""
    import numpy as np
    import pandas as pd
    import yaml

    from shipyard.domain.stages import Stage
    from shipyard.scaffold import init_project
    from shipyard.service import Shipyard

    init_project(root, example="churn")
    name, row = "churn", dict(SAMPLE_CUSTOMER)
    if model == "linear":
        (root / "train.py").write_text(LINEAR_TRAIN)
    elif model in ("wide", "lightgbm"):
        from sklearn.datasets import make_classification

        x, y = make_classification(n_samples=20_000, n_features=20, n_informative=12, random_state=0)
        frame = pd.DataFrame(x, columns=WIDE_FEATURES)
        frame["y"] = y
        frame.to_parquet(root / "data" / "wide.parquet", index=False)
        (root / "train_wide.py").write_text(LIGHTGBM_TRAIN if model == "lightgbm" else WIDE_TRAIN)
        config = yaml.safe_load((root / "shipyard.yaml").read_text())
        config["models"] = {
            "wide": {"owner": "bench", "train": "train_wide.py:train", "data": {"path": "data/wide.parquet", "target": "y"}}
        }
        (root / "shipyard.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        name, row = "wide", dict(zip(WIDE_FEATURES, np.round(x[0], 4).tolist(), strict=True))
    with Shipyard.open(root, actor="ada.admin", env={}) as service:
        service.run_pipeline(name)
        for stage in (Stage.STAGING, Stage.PRODUCTION):
            service.store.transition(actor="ada.admin", model=name, version=1, to=stage, reason="benchmark")
    return name, row


def mlserver_folder(root: Path, name: str) -> Path:
    """The production version's model as a joblib file with its model-settings.json, for mlserver-sklearn."""
    import joblib

    from shipyard.service import Shipyard

    with Shipyard.open(root, actor="ada.admin", env={}) as service:
        model = service.registry.load_version(service.store.get_version(name, 1)).model
    folder = root / "mlserver" / name
    folder.mkdir(parents=True)
    joblib.dump(model, folder / "model.joblib")
    settings = {"name": name, "implementation": "mlserver_sklearn.SKLearnModel", "parameters": {"uri": "./model.joblib"}}
    (folder / "model-settings.json").write_text(json.dumps(settings))
    (root / "mlserver" / "settings.json").write_text(json.dumps({"host": "127.0.0.1", "parallel_workers": 0}))
    return folder


def oip_body(row: dict[str, Any], rows: int, *, pd_codec: bool) -> str:
    """An Open Inference Protocol request of ``rows`` copies of ``row``, one input per column."""
    inputs = []
    for column, value in row.items():
        kind = "BYTES" if isinstance(value, str) else ("INT64" if isinstance(value, int) else "FP64")
        inputs.append({"name": column, "datatype": kind, "shape": [rows, 1], "data": [value] * rows})
    body: dict[str, Any] = {"inputs": inputs}
    if pd_codec:
        body["parameters"] = {"content_type": "pd"}
    return json.dumps(body)


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
    threads = 2 if connections > 1 else 1
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script), url],
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


class Servers:
    """The servers under test for one model, started as processes and stopped on exit."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.targets: dict[str, tuple[str, Any]] = {}  # name -> (url, body for (row, rows))
        self.started: dict[str, float] = {}

    def start(self, name: str, command: list[str], *, ready: str, url: str, body: Any, env: dict[str, str], cwd: Path) -> None:
        since = time.monotonic()
        self.processes.append(subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.started[name] = wait_http(ready, since, 180)
        self.targets[name] = (url, body)

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *_exc: object) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def measure(model: str, args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="shipyard-bench-")) / "project"
    try:
        name, row = build(root, model)
        tracking = f"sqlite:///{root / '.shipyard' / 'mlflow.db'}"
        # mlflow starts its server by running `uvicorn` from PATH.
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "OMP_NUM_THREADS": "1", "PATH": f"{BIN}:{os.environ['PATH']}"}
        shipyard = [str(BIN / "shipyard"), "--project", str(root), "--actor", "ops.deployer", "serve", "--no-worker"]
        v1 = lambda rows: json.dumps({"instances": [row] * rows})  # noqa: E731
        with Servers() as servers:
            port = free_port()
            servers.start(
                "constant",
                [sys.executable, "-c", CONSTANT_ROUTE, str(port)],
                ready=f"http://127.0.0.1:{port}/ping",
                url=f"http://127.0.0.1:{port}/predict",
                body=v1,
                env=env,
                cwd=root,
            )
            port = free_port()
            servers.start(
                "shipyard",
                [*shipyard, "--port", str(port)],
                ready=f"http://127.0.0.1:{port}/v2/health/ready",
                url=f"http://127.0.0.1:{port}/v1/models/{name}:predict",
                body=v1,
                env=env,
                cwd=root,
            )
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/{name}") as response:
                fastest = json.load(response)["parameters"]["runtime"]
            if args.workers > 1:
                port = free_port()
                servers.start(
                    f"shipyard-w{args.workers}",
                    [*shipyard, "--port", str(port), "--workers", str(args.workers)],
                    ready=f"http://127.0.0.1:{port}/v2/health/ready",
                    url=f"http://127.0.0.1:{port}/v1/models/{name}:predict",
                    body=v1,
                    env=env,
                    cwd=root,
                )
            if fastest != "scikit-learn" and not args.no_plain:
                port = free_port()
                servers.start(
                    "shipyard-sk",
                    [*shipyard, "--port", str(port), "--runtime", "scikit-learn"],
                    ready=f"http://127.0.0.1:{port}/v2/health/ready",
                    url=f"http://127.0.0.1:{port}/v1/models/{name}:predict",
                    body=v1,
                    env=env,
                    cwd=root,
                )
            if not args.no_mlflow:
                port = free_port()
                mlflow = [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{name}/1", "--env-manager", "local"]
                servers.start(
                    "mlflow",
                    [*mlflow, "--host", "127.0.0.1", "-p", str(port)],
                    ready=f"http://127.0.0.1:{port}/ping",
                    url=f"http://127.0.0.1:{port}/invocations",
                    body=lambda rows: json.dumps({"dataframe_records": [row] * rows}),
                    env=env,
                    cwd=root,
                )
            if args.mlserver:
                folder = mlserver_folder(root, name)
                port, grpc = free_port(), free_port()
                ports = {"MLSERVER_HTTP_PORT": str(port), "MLSERVER_GRPC_PORT": str(grpc), "MLSERVER_METRICS_PORT": "0"}
                mlserver_env = {**env, **ports}
                servers.start(
                    "mlserver",
                    [args.mlserver, "start", str(folder.parent)],
                    ready=f"http://127.0.0.1:{port}/v2/health/ready",
                    url=f"http://127.0.0.1:{port}/v2/models/{name}/infer",
                    body=lambda rows: oip_body(row, rows, pd_codec=True),
                    env=mlserver_env,
                    cwd=folder.parent,
                )
            report(model, fastest, servers, args)
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)


def report(model: str, fastest: str, servers: Servers, args: argparse.Namespace) -> None:
    loads = {"1 row, c=1": (1, 1), "1 row, c=32": (1, 32), "100 rows, c=1": (100, 1)}
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for _ in range(args.rounds):  # interleaved, so machine noise hits every server alike
        for load, (rows, connections) in loads.items():
            for name, (url, body) in servers.targets.items():
                wrk(url, body(rows), connections, 2)  # warm-up
                results.setdefault((name, load), []).append(wrk(url, body(rows), connections, args.seconds))

    def median(name: str, load: str, key: str) -> float:
        return statistics.median(r[key] for r in results[(name, load)])

    print(f"\n{model}: shipyard's runtime {fastest}; {args.rounds} interleaved rounds of {args.seconds} s; medians")
    print("start-up to first answer: " + ", ".join(f"{n} {s:.1f} s" for n, s in servers.started.items()))
    print(f"{'load':<14} {'server':<12} {'req/s':>9} {'rows/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs mlflow':>10}")
    for load, (rows, _) in loads.items():
        for name in servers.targets:
            rps = median(name, load, "rps")
            ratio = f"{rps / median('mlflow', load, 'rps'):.1f}×" if "mlflow" in servers.targets else "-"
            errors = sum(r["errors"] for r in results[(name, load)])
            print(
                f"{load:<14} {name:<12} {rps:>9.1f} {rps * rows:>9.0f} {median(name, load, 'p50_ms'):>8.2f} "
                f"{median(name, load, 'p99_ms'):>8.2f} {errors:>7.0f} {ratio:>10}"
            )
    share = median("shipyard", "1 row, c=32", "rps") / median("constant", "1 row, c=32", "rps")
    extra = median("shipyard", "1 row, c=1", "p50_ms") - median("constant", "1 row, c=1", "p50_ms")
    print(
        f"shipyard against the constant route: c=32 {share:.1%} of its req/s (target 35%), "
        f"p99 {median('shipyard', '1 row, c=32', 'p99_ms'):.1f} ms (target < 15); c=1 p50 +{extra:.2f} ms (target < 0.5)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--model", nargs="+", choices=["churn", "wide", "linear", "lightgbm"], default=["churn", "wide", "linear"]
    )
    parser.add_argument("--mlserver", help="the `mlserver` command of a virtual environment with mlserver-sklearn")
    parser.add_argument("--no-mlflow", action="store_true", help="leave `mlflow models serve` out (it is slow to start)")
    parser.add_argument("--no-plain", action="store_true", help="leave out `shipyard serve --runtime scikit-learn`")
    parser.add_argument("--workers", type=int, default=1, help="also `shipyard serve --workers N` (indicative on 2 cores)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    for model in args.model:
        measure(model, args)


if __name__ == "__main__":
    main()
