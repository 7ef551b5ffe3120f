"""How fast the command line answers, beside the floor any Typer + Rich program pays.

Builds the demo's project once (`shipyard demo --dir`, about two minutes) unless
``--project`` names one, then times each command as a user runs it — a new process
every time — in interleaved rounds with a baseline of `python -c "import typer, rich"`,
and prints medians, the difference to the baseline and the target for each:

- read commands (`models list`, `models show`, `evidence show`, `audit verify`,
  `kpis`) within 0.6 s of the baseline, `gate check` with current evidence within
  1 s, `--help` within 0.15 s;
- `pipeline run`'s own time outside the user's `train()`: under 4 s for the churn
  example (wall time of the command minus the time of the user's code — importing
  train.py and calling train() — as the pipeline reports it in `train_seconds`).

    .venv/bin/python benchmarks/cli.py [--project DIR] [--rounds 5]
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
SHIPYARD = str(BIN / "shipyard")
# As a user's installation runs: with bytecode. (An environment that sets PYTHONDONTWRITEBYTECODE would
# have every command compile Shipyard's modules again; installed wheels carry their bytecode.)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=ENV)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):  # gate check exits 1 when the gate blocks: still an answer
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds


def demo_project(root: Path) -> None:
    print(f"building the demo's project in {root} (shipyard demo, about two minutes)…", flush=True)
    done = subprocess.run([SHIPYARD, "demo", "--dir", str(root)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"`shipyard demo` failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def champion(root: Path) -> int:
    done = subprocess.run([SHIPYARD, "-C", str(root), "models", "list", "--json"], capture_output=True, text=True, check=True)
    versions = [v for m in json.loads(done.stdout)["models"] for v in m["versions"] if v["model"] == "churn"]
    return max(v["version"] for v in versions if v["stage"] == "production")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, help="an existing demo project (default: build one)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    root = args.project
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="shipyard-cli-bench-")) / "demo"
        demo_project(root)
    version = champion(root)
    project = [SHIPYARD, "-C", str(root)]
    gate = [*project, "gate", "check", "churn", str(version), "--to", "production"]
    timed(gate)  # evidence is current after one check: the timed ones only judge the rules
    commands: dict[str, tuple[list[str], float]] = {
        "baseline: python -c 'import typer, rich'": ([sys.executable, "-c", "import typer, rich"], 0.0),
        "shipyard --help": ([SHIPYARD, "--help"], 0.15),
        "models list": ([*project, "models", "list"], 0.6),
        f"models show churn {version}": ([*project, "models", "show", "churn", str(version)], 0.6),
        f"evidence show churn {version}": ([*project, "evidence", "show", "churn", str(version)], 0.6),
        f"gate check churn {version} --to production": (gate, 1.0),
        "audit verify": ([*project, "audit", "verify"], 0.6),
        "kpis": ([*project, "kpis"], 0.6),
    }
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for command, _target in commands.values():
        timed(command)  # a warm-up: bytecode written, files in the page cache
    for _ in range(args.rounds):
        for name, (command, _target) in commands.items():
            samples[name].append(timed(command))
    base = statistics.median(samples["baseline: python -c 'import typer, rich'"])
    print(f"\n{'command':<48} {'median s':>9} {'- baseline':>11} {'target':>8}  met")
    for name, (_command, target) in commands.items():
        median = statistics.median(samples[name])
        if name.startswith("baseline"):
            print(f"{name:<48} {median:>9.3f}")
            continue
        extra = median - base
        print(f"{name:<48} {median:>9.3f} {extra:>+11.3f} {f'+{target:g}':>8}  {'yes' if extra <= target else 'NO'}")

    print("\npipeline run churn (a new candidate each time): wall time minus the user's code")
    overheads = []
    for _ in range(max(1, args.rounds // 2)):
        started = time.perf_counter()
        # The demo's project declares its people: its scientist trains.
        done = subprocess.run(
            [*project, "--actor", "dana.scientist", "pipeline", "run", "churn", "--json"], capture_output=True, text=True, env=ENV
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"pipeline run failed ({done.returncode}):\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout)
        train = float(result["train_seconds"])
        overheads.append(wall - train)
        inside = result["seconds"]
        print(f"  wall {wall:.2f} s, user code {train:.2f} s, in-process pipeline {inside:.2f} s: own {wall - train:.2f} s")
    own = statistics.median(overheads)
    print(f"pipeline's own time (median): {own:.2f} s; target < 4 s: {'yes' if own < 4 else 'NO'}")


if __name__ == "__main__":
    main()
