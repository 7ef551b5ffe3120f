"""The footprint: what serving a model costs, measured at registration in a fresh child process.

Figures (the ``footprint`` evidence; the Kubernetes export sizes requests and limits from them):

- ``artifact_mb``: the model folder's files;
- ``load_s``: reading the model file as MLflow's scikit-learn loader does (skops, pickle or cloudpickle), and
  ``memory_mb``: the resident memory that adds to a process that has already imported the serving libraries;
- ``p50_ms``: the median time of one predict call through the gateway's path (typing the request's columns,
  then its runtime: numpy's tree walk, ONNX Runtime or scikit-learn) at 1, 64 and 1,024 rows, keyed "1",
  "64", "1024", on the thread's CPU clock (one thread, as the gateway predicts), so that time other processes
  take from it on a shared machine does not count;
- ``cpu_s_per_1k``: CPU seconds per 1,000 single-row predictions on that path (one thread, as the gateway
  runs with ``OMP_NUM_THREADS=1``);
- ``champion`` and ``latency_factor``: the champion measured in the same process, its calls interleaved
  with the candidate's, and the candidate's p50 over the champion's at each row count. Both measured side
  by side, so a loaded machine slows both alike.

The child gets a private copy of the files (the champion's checked against its recorded digests). It runs as
``python -m shipyard.serving.footprint`` with its instructions as JSON on stdin and answers JSON on stdout.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROWS = (1, 64, 1024)
REPEATS = {1: 41, 64: 15, 1024: 5}
CPU_CALLS = 300  # at most this many single-row calls timed for the CPU figure, scaled to 1,000
CPU_BUDGET_S = 0.15  # or until they have taken this much CPU time
TIMEOUT_S = 120
MB = 1024 * 1024


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class Probe:
    """The measuring process, started ahead of time: it imports its libraries while the pipeline trains and
    evaluates, then waits for its order on stdin. ``close`` ends it if it was never used."""

    def __init__(self) -> None:
        import subprocess

        import shipyard

        package_root = str(Path(shipyard.__file__).resolve().parents[1])
        path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shipyard.serving.footprint"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path},
        )

    def ask(self, order: dict[str, Any]) -> tuple[int, str, str]:
        """Send the order; the process's exit code, stdout and stderr (TimeoutError when it takes too long)."""
        import subprocess

        try:
            out, err = self.process.communicate(json.dumps(order), timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.close()
            raise TimeoutError from None
        return self.process.returncode, out, err

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def measure(
    model_dir: Path,
    sample: Any,
    *,
    equivalence: Mapping[str, Any] | None = None,
    champion: tuple[int, Path, Mapping[str, Any] | None] | None = None,
    probe: Probe | None = None,
) -> dict[str, Any]:
    """The ``footprint`` evidence of the model in ``model_dir`` (a private copy), on rows of ``sample`` (a frame of
    the model's input columns); ``champion``: its version, the folder of a checked copy of its files, its equivalence.
    ``probe``: a measuring process started earlier (one is started now otherwise); it answers once."""
    import tempfile

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shipyard-footprint-") as tmp:
        rows = sample.sample(max(ROWS), replace=len(sample) < max(ROWS), random_state=0).reset_index(drop=True)
        sample_path = Path(tmp) / "sample.parquet"
        rows.to_parquet(sample_path, index=False)
        order: dict[str, Any] = {
            "candidate": {"folder": str(model_dir), "equivalence": dict(equivalence or {})},
            "sample": str(sample_path),
        }
        if champion is not None:
            order["champion"] = {"folder": str(champion[1]), "equivalence": dict(champion[2] or {})}
        with probe or Probe() as child:
            try:
                code, out, err = child.ask(order)
            except TimeoutError:
                return {"available": False, "reason": f"measuring took longer than {TIMEOUT_S} s"}
        if code != 0:
            last = (err.strip().splitlines() or ["no message"])[-1]
            return {"available": False, "reason": f"the measuring process failed: {last[:500]}"}
        answer = json.loads(out)
    found: dict[str, Any] = {"available": True, "artifact_mb": round(folder_bytes(model_dir) / MB, 3), **answer["candidate"]}
    if champion is not None and answer.get("champion"):
        theirs = answer["champion"]
        found["champion"] = {"version": champion[0], "artifact_mb": round(folder_bytes(champion[1]) / MB, 3), **theirs}
        found["latency_factor"] = {
            rows: round(found["p50_ms"][rows] / theirs["p50_ms"][rows], 3)
            for rows in found["p50_ms"]
            if theirs["p50_ms"].get(rows)
        }
    else:
        found["champion"] = None
        found["latency_factor"] = None
    found["seconds"] = round(time.perf_counter() - started, 3)
    return found


# -- the child ----------------------------------------------------------------------------------------------


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # no /proc: the peak, which loading a model raises as much
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak) * (1 if sys.platform == "darwin" else 1024)


def _deserializer(flavor: Mapping[str, Any]) -> Callable[[Path], Any]:
    """How MLflow's scikit-learn loader reads the model file (``mlflow.sklearn._load_model_from_local_file``),
    without importing MLflow into the measuring process; its modules imported now, before the baseline."""
    found = str(flavor.get("serialization_format") or "cloudpickle")
    if found == "skops":
        import skops.io

        trusted = flavor.get("skops_trusted_types")
        return lambda path: skops.io.load(path, trusted=trusted)
    if found == "pickle":
        import pickle

        return lambda path: pickle.loads(path.read_bytes())  # the files registration decided to trust
    import cloudpickle

    return lambda path: cloudpickle.loads(path.read_bytes())


def _load(folder: Path, equivalence: Mapping[str, Any], frame: Any) -> tuple[dict[int, Callable[[], object]], dict[str, Any]]:
    """The model loaded as the gateway loads it, with the runtime it would choose; figures of the load."""
    import gc

    import yaml

    from shipyard.serving.inputs import Decoded, InputSchema, batch_columns
    from shipyard.serving.onnx import onnx_model
    from shipyard.serving.runtime import LoadedModel, array_model, encoded_model

    mlmodel = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))
    flavor = mlmodel["flavors"]["sklearn"]
    deserialize = _deserializer(flavor)
    gc.collect()
    before = _rss_bytes()
    started = time.perf_counter()
    model = deserialize(folder / str(flavor.get("pickled_model") or "model.pkl"))
    load_s = time.perf_counter() - started
    memory = _rss_bytes() - before
    schema = InputSchema.from_mlflow_signature((mlmodel.get("signature") or {})["inputs"])
    names = [f.name for f in schema.fields]
    example = {name: frame[name].head(5).tolist() for name in names}
    on_arrays = array_model(model, schema, example)
    encoded = None if on_arrays is not None else encoded_model(model, schema, example)
    onnx = None
    if encoded is None and (on_arrays is None or on_arrays.forest is None):
        onnx_file = folder / "model.onnx"
        data = onnx_file.read_bytes() if onnx_file.is_file() else None
        typed = batch_columns([Decoded(columns=example, rows=5)], schema)
        onnx, _ = onnx_model(data, equivalence, model, typed)
        if onnx is not None:
            on_arrays = None
    loaded = LoadedModel(
        name="footprint",
        version=0,
        model=model,
        schema=schema,
        load_seconds=load_s,
        on_arrays=on_arrays,
        encoded=encoded,
        onnx=onnx,
    )

    def call(rows: int) -> Callable[[], object]:
        decoded = Decoded(columns={name: frame[name].head(rows).tolist() for name in names}, rows=rows)
        return lambda: loaded.predict(batch_columns([decoded], schema))

    calls = {rows: call(rows) for rows in ROWS}
    return calls, {"load_s": round(load_s, 4), "memory_mb": round(max(memory, 0) / MB, 2), "runtime": loaded.runtime}


def _cpu_per_1k(single: Callable[[], object]) -> tuple[float, int]:
    calls = 0
    started = time.thread_time()
    while calls < CPU_CALLS and time.thread_time() - started < CPU_BUDGET_S:
        single()
        calls += 1
    return (time.thread_time() - started) / calls * 1000, calls


def _child() -> None:
    # What the gateway has imported before it loads a model, imported before the order comes.
    import pandas as pd
    import pyarrow.parquet  # noqa: F401
    import sklearn.pipeline  # noqa: F401
    import skops.io  # noqa: F401
    import yaml  # noqa: F401

    import shipyard.serving.onnx
    import shipyard.serving.runtime  # noqa: F401

    order = json.load(sys.stdin)
    frame = pd.read_parquet(order["sample"])
    names = [n for n in ("candidate", "champion") if n in order]
    models = {n: _load(Path(order[n]["folder"]), order[n]["equivalence"], frame) for n in names}
    timings: dict[str, dict[int, list[float]]] = {n: {rows: [] for rows in ROWS} for n in names}
    for rows in ROWS:
        for name in names:  # warm-up: first calls pay for lazy imports and caches
            models[name][0][rows]()
        for repeat in range(REPEATS[rows]):
            # Interleaved, each going first in turn, and timed on the thread's CPU clock: on a shared machine a
            # call that other processes preempt is not slower, and alternation alone would bias one of the two.
            for name in names[repeat % 2 :] + names[: repeat % 2]:
                predict = models[name][0][rows]
                started = time.thread_time()
                predict()
                timings[name][rows].append(time.thread_time() - started)
    answer: dict[str, Any] = {}
    for name in names:
        calls, figures = models[name]
        cpu, counted = _cpu_per_1k(calls[1])
        answer[name] = {
            **figures,
            "p50_ms": {str(rows): round(statistics.median(timings[name][rows]) * 1000, 4) for rows in ROWS},
            "repeats": {str(rows): REPEATS[rows] for rows in ROWS},
            "cpu_s_per_1k": round(cpu, 4),
            "cpu_calls_timed": counted,
        }
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    _child()
