"""Online features in the gateway: requests that carry only the entity key (the gateway fetches the features
from Feast's online store) beside requests that carry every feature, same model, same load.

Builds the churn-features example, trains it (``churn``: from the feature service) and the same training code on
the same rows as a plain file (``churn_plain``), materializes the online store and promotes both. Then, for the
SQLite online store inside the project and for Redis on 127.0.0.1:6379 (under a project name of its own, whose
keys are deleted afterwards), it starts `shipyard serve` and drives both models with wrk (Debian's `wrk`) in
interleaved rounds at concurrency 1 and 32. It prints requests/s, p50 and p99, the ratio entity-key / all
features, and the gateway's own count of predict calls (one online lookup each) against requests. Every load is
bounded in time.

    .venv/bin/python benchmarks/feature_serving.py [--seconds 10] [--rounds 2] [--stores sqlite,redis]
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
import uuid
from pathlib import Path

from serving import wait_http, wrk
from shipyard.serving.server import free_port

BIN = Path(sys.executable).parent
POLICY = "allow_empty: true\nstaging: []\nproduction: []\n"


def build(root: Path) -> dict[str, object]:
    """The example with a second model on the same rows as a file; both trained, materialized and in production."""
    import yaml

    def shipyard(*args: str) -> None:
        done = subprocess.run([str(BIN / "shipyard"), "--project", str(root), "--actor", "ada.admin", *args],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            sys.exit(f"shipyard {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    subprocess.run([BIN / "shipyard", "init", str(root), "--example", "churn-features"], check=True, capture_output=True)
    from shipyard.config import load_settings
    from shipyard.features import training_frame

    settings = load_settings(root, env={})
    spec = settings.model("churn").data.feast
    assert spec is not None
    built = training_frame(root, spec)
    built.frame.to_parquet(root / "data" / "churn_plain.parquet", index=False)
    (root / "policies" / "bench.yaml").write_text(POLICY)
    config = yaml.safe_load((root / "shipyard.yaml").read_text())
    config["models"]["churn"]["policy"] = "policies/bench.yaml"
    config["models"]["churn_plain"] = {
        "owner": "bench",
        "policy": "policies/bench.yaml",
        "data": {"path": "data/churn_plain.parquet", "target": "churned", "time_column": "signup_date",
                 "id_column": "customer_id", "features": built.features},
    }  # fmt: skip
    config["principals"]["ada.admin"] = ["admin", "scientist", "deployer"]
    (root / "shipyard.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for model in ("churn", "churn_plain"):
        shipyard("pipeline", "run", model)
    shipyard("features", "materialize", "churn")
    for model in ("churn", "churn_plain"):
        for stage in ("staging", "production"):
            shipyard("promote", model, "1", "--to", stage, "--reason", "benchmark")
    first = built.frame.iloc[0]
    return {"customer_id": str(first["customer_id"]), **{name: _plain(first[name]) for name in built.features}}


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


def use_redis(root: Path, project: str) -> None:
    path = root / "feature_repo" / "feature_store.yaml"
    text = path.read_text().replace("project: churn_features", f"project: {project}")
    text = re.sub(r"online_store:\n  type: sqlite.*\n  path: data/online.db\n",
                  'online_store:\n  type: redis\n  connection_string: "127.0.0.1:6379"\n', text)  # fmt: skip
    path.write_text(text)
    subprocess.run([BIN / "feast", "-c", str(path.parent), "apply"], check=True, capture_output=True)
    subprocess.run([BIN / "shipyard", "--project", str(root), "--actor", "ada.admin", "features", "materialize", "churn"],
                   check=True, capture_output=True)  # fmt: skip


def drop_redis_keys(project: str) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        for key in client.scan_iter(match=f"*{project}*"):
            client.delete(key)
    finally:
        client.close()


def batches(url: str, model: str) -> tuple[float, float]:
    """The gateway's predict calls and rows for a model, from /metrics (each call of `churn` is one online lookup)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    count = sum(float(m) for m in re.findall(rf'shipyard_batch_rows_count{{model="{model}",[^}}]*}} (\S+)', text))
    rows = sum(float(m) for m in re.findall(rf'shipyard_batch_rows_sum{{model="{model}",[^}}]*}} (\S+)', text))
    return count, rows


def measure(root: Path, row: dict[str, object], seconds: int, rounds: int) -> dict[tuple[str, int], list[dict[str, float]]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env_bin = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(
        [BIN / "shipyard", "--project", str(root), "--actor", "ops.deployer", "serve", "--port", str(port)],
        env=env_bin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_http(f"{url}/v2/health/ready", time.monotonic(), 180)
        bodies = {
            "churn": json.dumps({"instances": [{"customer_id": row["customer_id"]}]}),
            "churn_plain": json.dumps({"instances": [{k: v for k, v in row.items() if k != "customer_id"}]}),
        }
        results: dict[tuple[str, int], list[dict[str, float]]] = {}
        for _ in range(rounds):
            for connections in (1, 32):
                for model, body in bodies.items():
                    target = f"{url}/v1/models/{model}:predict"
                    wrk(target, body, connections, 2)  # warm-up
                    calls_before, rows_before = batches(url, model)
                    run = wrk(target, body, connections, seconds)
                    calls_after, rows_after = batches(url, model)
                    run["calls"], run["rows"] = calls_after - calls_before, rows_after - rows_before
                    results.setdefault((model, connections), []).append(run)
        return results
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def report(store: str, results: dict[tuple[str, int], list[dict[str, float]]]) -> None:
    print(f"\n{store} online store")
    print(f"{'load':<6} {'request':<13} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'rows/call':>9} {'errors':>6}")
    for connections in (1, 32):
        for model, label in (("churn", "entity key"), ("churn_plain", "all features")):
            runs = results[(model, connections)]
            per_call = sum(r["rows"] for r in runs) / max(1.0, sum(r["calls"] for r in runs))
            print(
                f"c={connections:<4} {label:<13} {statistics.median(r['rps'] for r in runs):>8.0f} "
                f"{statistics.median(r['p50_ms'] for r in runs):>7.2f} {statistics.median(r['p99_ms'] for r in runs):>7.2f} "
                f"{per_call:>9.1f} {sum(r['errors'] for r in runs):>6.0f}"
            )
        ratio = statistics.median(r["rps"] for r in results[("churn", connections)]) / statistics.median(
            r["rps"] for r in results[("churn_plain", connections)]
        )
        print(f"c={connections:<4} {'ratio':<13} {ratio:>7.2f}×  (entity key / all features)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--stores", default="sqlite,redis")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    root = Path(tempfile.mkdtemp(prefix="shipyard-bench-")) / "project"
    project = f"shipyard_bench_{uuid.uuid4().hex[:8]}"
    try:
        row = build(root)
        print(f"churn (entity key, online features) beside churn_plain (all features sent); {args.rounds} interleaved "
              f"rounds of {args.seconds} s; medians")  # fmt: skip
        for store in args.stores.split(","):
            if store == "redis":
                use_redis(root, project)
            report(store, measure(root, row, args.seconds, args.rounds))
    finally:
        if "redis" in args.stores:
            drop_redis_keys(project)
        shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
