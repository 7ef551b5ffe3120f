"""`shipyard serve --workers N`: several gateway processes on one port, each with its own log writer."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import httpx
import pytest
from harness import ROW, ServeProcess, ship, wait_for

from shipyard.predlog import read_log


@pytest.fixture
def served(trained_project: Path) -> Path:
    ship(trained_project, 1)
    return trained_project


def gateway_processes(parent: int) -> set[int]:
    """The processes `serve` spawned to answer requests (not multiprocessing's resource tracker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == parent and b"spawn_main" in command:
            found.add(int(entry.name))
    return found


def send(url: str, ids: list[str], answered: list[str], failures: list[object]) -> None:
    """One client, a new connection per request (as a load balancer spreads them)."""
    for request_id in ids:
        try:
            response = httpx.post(
                f"{url}/v1/models/churn:predict", content=json.dumps({"instances": [ROW]}), headers={"x-request-id": request_id}
            )
        except httpx.HTTPError as exc:
            failures.append(repr(exc))
            continue
        if response.status_code == 200:
            answered.append(request_id)
        else:
            failures.append(response.status_code)


def test_two_processes_share_the_port_survive_a_crash_and_lose_no_logged_prediction(served: Path) -> None:
    answered: list[str] = []
    failures: list[object] = []
    with ServeProcess(served, args=("--workers", "2", "--no-worker")) as server:
        assert server.process is not None
        first = gateway_processes(server.process.pid)
        assert len(first) == 2
        clients = [
            threading.Thread(target=send, args=(server.url, [f"a{c}-{i}" for i in range(25)], answered, failures))
            for c in range(6)
        ]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(timeout=120)
        # One process dies: the other keeps answering on the same port, and `serve` starts a replacement.
        os.kill(min(first), signal.SIGKILL)
        send(server.url, [f"b-{i}" for i in range(20)], answered, failures)
        wait_for(lambda: len(gateway_processes(server.process.pid) - first) == 1, timeout=60)
        wait_for(lambda: httpx.get(f"{server.url}/v2/health/ready").status_code == 200, timeout=60)
        send(server.url, [f"c-{i}" for i in range(20)], answered, failures)
        status, errors = server.terminate()  # SIGTERM reaches both processes: each drains and flushes its log
    assert status == 0, errors[-2000:]
    assert failures == [] and len(answered) == 6 * 25 + 40
    assert "exited with -9; starting another" in errors
    logged = read_log(served / ".shipyard" / "predictions", model="churn").column("request_id").to_pylist()
    # The killed process lost what it had not flushed yet; every other answered request is in the log.
    survivors = [r for r in answered if not r.startswith("a")]
    assert set(survivors) <= set(logged)
    assert len(set(logged)) == len(logged)


def test_workers_must_be_at_least_one(served: Path) -> None:
    from typer.testing import CliRunner

    from shipyard.cli import app

    done = CliRunner().invoke(app, ["--project", str(served), "serve", "--workers", "0"])
    assert done.exit_code == 2 and "--workers" in done.output
