"""The real `shipyard server` process: the first admin's token printed once, the worker and the
checkpointer beside the API, a checkpoint in the file when it stops, and the audit verified with its key."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from server.conftest import declare_server
from shipyard.cli import app
from shipyard.serving.server import free_port


def start(root: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    return subprocess.Popen(
        [sys.executable, "-m", "shipyard", "-C", str(root), "server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_healthy(url: str, process: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"shipyard server did not answer on {url}")


def test_the_server_process_from_bootstrap_to_a_verified_audit(trained_project: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    declare_server(trained_project, url, checkpoint_seconds=1)
    server = start(trained_project, "--bootstrap-admin", "root")
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = re.search(r"(shp_[A-Za-z0-9_-]+)", line)
        assert match, line
        token = match.group(1)
        wait_healthy(url, server)
        env = {"SHIPYARD_URL": url, "SHIPYARD_TOKEN": token}
        runner = CliRunner()
        who = httpx.get(f"{url}/api/v1/whoami", headers={"authorization": f"Bearer {token}"}).json()["result"]
        assert who["name"] == "root" and "admin" in who["roles"]
        promoted = runner.invoke(app, ["promote", "churn", "1", "--to", "staging", "--reason", "r"], env=env)
        assert promoted.exit_code == 0, promoted.output
        checkpoints = trained_project / ".shipyard" / "server" / "checkpoints.jsonl"
        deadline = time.monotonic() + 30
        while not (checkpoints.exists() and checkpoints.read_text().strip()):  # signed within checkpoint_seconds
            assert time.monotonic() < deadline, "no checkpoint was signed"
            time.sleep(0.2)
        public_key = trained_project / "audit.pub"
        exported = runner.invoke(app, ["audit", "public-key", "--out", str(public_key)], env=env)
        assert exported.exit_code == 0, exported.output
        verified = runner.invoke(app, ["audit", "verify", "--json", "--public-key", str(public_key)], env=env)
        assert verified.exit_code == 0, verified.output
    finally:
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=60)
    assert server.returncode == 0, errors[-3000:]
    assert "Traceback" not in errors
    again = start(trained_project, "--bootstrap-admin", "root2")
    _, refused = again.communicate(timeout=60)
    assert again.returncode == 4 and "admin" in refused and "Traceback" not in refused


def test_shipyard_ui_opens_a_local_project_for_its_actor(trained_project: Path) -> None:
    """Embedded mode: `shipyard ui` serves this machine's project on loopback with a token for the actor,
    revoked when it stops."""
    from shipyard.service import Shipyard

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    command = [sys.executable, "-m", "shipyard", "-C", str(trained_project), "--actor", "vera", "ui", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        printed = "".join(process.stdout.readline() for _ in range(3))
        assert f"http://127.0.0.1:{port}/ui/" in printed and "Log in as vera" in printed, printed
        match = re.search(r"(shp_[A-Za-z0-9_-]+)", printed)
        assert match, printed
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process)
        who = httpx.get(f"{url}/api/v1/whoami", headers={"authorization": f"Bearer {match.group(1)}"}).json()["result"]
        assert who == {**who, "name": "vera", "roles": ["approver"]}
        assert httpx.get(f"{url}/ui/login").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=60)
    assert process.returncode == 0 and "Traceback" not in errors, errors[-3000:]
    with Shipyard.open(trained_project, actor="vera", env={}) as vera:
        (token,) = [t for t in vera.tokens() if t.name.startswith("ui-vera-")]
    assert token.revoked_at is not None and token.expires_at is not None
