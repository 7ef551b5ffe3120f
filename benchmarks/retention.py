"""How long a retention pass takes on months of prediction log, beside a bare pyarrow rewrite of the same days.

Writes DAYS days of log with the real writer (FLUSHES files per version and day, ROWS rows each) into a
fresh project, then times `retention plan` and `retention apply` (compact after 1 day, drop inputs after
30, delete after 90) and, on an identical copy, the floor: pyarrow reading each day's files and writing
one file per day, with no profiles, no renames, no fsync and no audit. Prints both and their ratio, and
the log's size before and after.

    PYTHONPATH=src .venv/bin/python benchmarks/retention.py [--days 120] [--flushes 20] [--rows 50]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from retention.synthetic import LOG_RULES, set_retention, write_log


def size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def floor(root: Path) -> float:
    import pyarrow as pa
    import pyarrow.parquet as pq

    started = time.perf_counter()
    for day in sorted(root.glob("model=*/date=*")):
        files = sorted(day.glob("part-*.parquet"))
        table = pa.concat_tables([pq.read_table(p) for p in files], promote_options="permissive")
        pq.write_table(table, day / "merged.parquet.tmp", compression="zstd")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--flushes", type=int, default=20)
    parser.add_argument("--rows", type=int, default=50)
    args = parser.parse_args()

    from shipyard.scaffold import init_project
    from shipyard.service import Shipyard

    with tempfile.TemporaryDirectory() as tmp:
        root = init_project(Path(tmp) / "project", example="churn")
        set_retention(root, LOG_RULES)
        log = root / ".shipyard" / "predictions"
        write_log(log, end=datetime.now(UTC), days=args.days, files_per_day=args.flushes, rows=args.rows)
        peer = Path(tmp) / "peer"
        shutil.copytree(log, peer)
        before, files = size(log), sum(1 for _ in log.rglob("*.parquet"))
        with Shipyard.open(root, actor="ops.deployer", env={}) as service:
            started = time.perf_counter()
            plan = service.retention_plan()
            planned = time.perf_counter() - started
            started = time.perf_counter()
            service.retention_apply()
            applied = time.perf_counter() - started
        bare = floor(peer)
        rows = args.days * args.flushes * 2 * args.rows
        print(f"log: {rows:,} rows in {files:,} files, {before / 1e6:.1f} MB over {args.days} days")
        print(f"retention plan:  {planned:6.2f} s  ({len(plan.actions)} actions, >= {plan.bytes_freed / 1e6:.1f} MB)")
        print(f"retention apply: {applied:6.2f} s  -> {size(log) / 1e6:.1f} MB in {sum(1 for _ in log.rglob('*.parquet'))} files")
        print(f"pyarrow rewrite of every day (floor): {bare:6.2f} s; apply / floor = {applied / bare:.1f}x")


if __name__ == "__main__":
    main()
