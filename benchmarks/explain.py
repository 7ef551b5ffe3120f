"""What explanations and the footprint cost: at registration, and per request at the gateway's explain verb.

Uses the demo's project (`shipyard demo --dir`, about two minutes, unless ``--project`` names one) and its
churn champion, and prints, in interleaved rounds, medians beside a peer run side by side:

- registration's ``explanations`` (budget 3 s for the churn example): a fresh process, with pandas and
  scikit-learn imported as registration has them, running `shipyard.checks.explanations.explain` with the
  champion compared on the same rows (shap's import included), beside shap's bare TreeExplainer on the
  same encoded rows in the same kind of process;
- registration's ``footprint`` (budget 5 s): `measure_footprint` as the pipeline calls it (a fresh child
  process measuring the version and the champion side by side), beside a process that only imports what the
  child imports (the floor any fresh process pays);
- the explain verb (target: a single row under 20 ms): `shipyard serve` in its own process, single-row
  ``:explain`` requests at concurrency 1, beside single-row ``:predict`` requests to the same gateway.

    .venv/bin/python benchmarks/explain.py [--project DIR] [--rounds 3] [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent

EXPLAIN_CHILD = """
import json, sys, time
from pathlib import Path
import numpy as np, pandas as pd, sklearn.pipeline, sklearn.ensemble  # registration has these already
from shipyard.service import Shipyard
from shipyard.pipeline.prepare import prepare
root, which = sys.argv[1], sys.argv[2]
with Shipyard.open(Path(root), actor="bench", env={}) as service:
    champion = service.champion("churn")
    model = service.registry.load_version(champion).model
    spec = service.settings.model("churn")
    holdout = prepare(service.settings, spec).parts.holdout
features = [str(c) for c in model.feature_names_in_]
started = time.perf_counter()
if which == "shipyard":
    from shipyard.checks.explanations import explain
    found = explain(model, holdout, features, seed=42, slices=["contract_type"], sensitive=["gender", "senior_citizen"],
                    champion=(champion.version, model, features))
    assert found["available"], found
else:  # shap alone: the same 500 rows, encoded, one TreeExplainer call
    import shap
    rows = holdout[features].sample(500, random_state=42)
    shap.TreeExplainer(model[-1]).shap_values(model[:-1].transform(rows))
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

FOOTPRINT_CHILD = """
import json, sys, time
from pathlib import Path
from shipyard.service import Shipyard
from shipyard.pipeline.evidence import measure_footprint
from shipyard.pipeline.prepare import prepare
with Shipyard.open(Path(sys.argv[1]), actor="bench", env={}) as service:
    versions = sorted(service.versions("churn"), key=lambda v: v.version)
    champion = service.champion("churn")
    other = next(v for v in reversed(versions) if v.version != champion.version)
    prepared = prepare(service.settings, service.settings.model("churn"))
    evidence = service.evidence("churn", other.version) or {}
    started = time.perf_counter()
    found = measure_footprint(service.store, service.registry, "churn", other.source, prepared,
                              equivalence=evidence.get("serving_equivalence"), excluding=other.version)
    assert found["available"], found
print(json.dumps({"seconds": time.perf_counter() - started, "footprint": found}))
"""

IMPORT_FLOOR = "import pandas, pyarrow.parquet, sklearn.pipeline, skops.io, yaml, shipyard.serving.runtime, shipyard.serving.onnx"


def run_child(code: str, *args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"a measuring process failed:\n{done.stderr[-3000:]}")
    answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def timed_process(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - started


def demo_project(root: Path) -> None:
    print(f"building the demo's project in {root} (shipyard demo, about two minutes)…", flush=True)
    done = subprocess.run([BIN / "shipyard", "demo", "--dir", str(root)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"`shipyard demo` failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def gateway_latency(root: Path, requests: int, rounds: int) -> tuple[list[float], list[float]]:
    import httpx

    from shipyard.examples.churn.generator import SAMPLE_CUSTOMER
    from shipyard.serving.server import free_port

    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [str(BIN / "shipyard"), "--project", str(root), "serve", "--port", str(port), "--no-worker"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    body = json.dumps({"instances": [SAMPLE_CUSTOMER]})
    explain: list[float] = []
    predict: list[float] = []
    try:
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.get(f"{url}/v2/health/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    sys.exit(f"the gateway did not start: {process.stderr.read().decode()[-2000:] if process.stderr else ''}")
                time.sleep(0.2)
            first = client.post(f"{url}/v1/models/churn:explain", content=body)  # builds the explainer
            if first.status_code != 200:
                sys.exit(f"explain failed: {first.status_code} {first.text}")
            for _ in range(rounds):
                for _ in range(requests):  # interleaved: both see the same machine
                    for path, into in ((":explain", explain), (":predict", predict)):
                        started = time.perf_counter()
                        answer = client.post(f"{url}/v1/models/churn{path}", content=body)
                        into.append(time.perf_counter() - started)
                        if answer.status_code != 200:
                            sys.exit(f"{path} failed: {answer.status_code} {answer.text}")
    finally:
        process.terminate()
        process.wait(timeout=30)
    return explain, predict


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, help="a demo project (built with `shipyard demo --dir` when not given)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.project
        if root is None:
            root = Path(tmp) / "demo"
            demo_project(root)
        ours, bare, footprint, floor = [], [], [], []
        figures: dict[str, object] = {}
        for _ in range(args.rounds):
            ours.append(float(run_child(EXPLAIN_CHILD, str(root), "shipyard")["seconds"]))  # type: ignore[arg-type]
            bare.append(float(run_child(EXPLAIN_CHILD, str(root), "shap")["seconds"]))  # type: ignore[arg-type]
            measured = run_child(FOOTPRINT_CHILD, str(root))
            footprint.append(float(measured["seconds"]))  # type: ignore[arg-type]
            figures = measured["footprint"]  # type: ignore[assignment]
            floor.append(timed_process(IMPORT_FLOOR))
        explain, predict = gateway_latency(root, args.requests, args.rounds)
    load = os.getloadavg()[0]
    print(f"machine load average (1 min) at the end: {load:.1f} on {os.cpu_count()} cores")
    print(
        f"explanations at registration: {statistics.median(ours):.2f} s (budget 3 s; shap imported inside) "
        f"vs shap's bare TreeExplainer, same rows: {statistics.median(bare):.2f} s "
        f"(×{statistics.median(ours) / statistics.median(bare):.2f}; Shipyard also explains the champion, groups and slices)"
    )
    print(
        f"footprint at registration: {statistics.median(footprint):.2f} s (budget 5 s) vs a process importing the same "
        f"libraries: {statistics.median(floor):.2f} s (×{statistics.median(footprint) / statistics.median(floor):.2f})"
    )
    keys = ("memory_mb", "load_s", "p50_ms", "cpu_s_per_1k", "latency_factor")
    print(f"footprint figures: {json.dumps({k: figures.get(k) for k in keys})}")
    print(
        f"gateway, one row, concurrency 1: :explain p50 {ms(explain)} (target < 20 ms), p99 "
        f"{sorted(explain)[int(len(explain) * 0.99) - 1] * 1000:.2f} ms; :predict p50 {ms(predict)} "
        f"(explain ×{statistics.median(explain) / statistics.median(predict):.1f})"
    )


if __name__ == "__main__":
    main()
