"""`shipyard package`: the build context holds every file its Dockerfile copies, and the image's install and start
commands, run in a fresh virtual environment made from the context, serve the version (no container engine here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

import shipyard
from shipyard.cli import app
from shipyard.deploy.package import copied_sources
from shipyard.serving.server import free_port


def run(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def fresh_venv(folder: Path) -> Path:
    """A new virtual environment seeing this environment's installed packages through a .pth file, so the pinned
    requirements resolve offline without reinstalling scikit-learn and MLflow; Shipyard itself comes from the
    context's wheel (an editable install's finder is not loaded through a .pth path)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "shared-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def install_and_start(python: Path, context: Path, port: int) -> subprocess.Popen[str]:
    # The Dockerfile's RUN line, offline: `pip install --no-cache-dir -r requirements.txt ./wheels/*.whl`. This
    # environment's own (editable) Shipyard is visible through the .pth file, so pip would count the wheel as
    # installed already: the wheel is installed in a second call that ignores it.
    wheels = [str(w) for w in (context / "wheels").glob("*.whl")]
    pip = [str(python), "-m", "pip", "install", "--no-cache-dir", "--no-index", "--disable-pip-version-check"]
    for extra in (["-r", "requirements.txt"], ["--no-deps", "--ignore-installed", *wheels]):
        installed = subprocess.run([*pip, *extra], cwd=context, capture_output=True, text=True, timeout=600)
        assert installed.returncode == 0, installed.stdout + installed.stderr
    shipyard = python.parent / "shipyard"
    assert shipyard.exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "PYTHONPATH"))}
    # The Dockerfile's ENTRYPOINT and CMD, on a free port instead of 8080.
    command = [str(shipyard), "serve", "--package", str(context / "package"), "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(
        [*command, "--no-worker", "--no-auth"], cwd=context, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_package_builds_a_context_that_serves_the_version(shipped: Path, tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    result = run("--project", str(shipped), "--actor", "alice", "package", "churn", "1", "--out", str(context), "--json")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    summary = json.loads(result.stdout)  # type: ignore[attr-defined]

    dockerfile = (context / "Dockerfile").read_text()
    for source in copied_sources(dockerfile):
        assert (context / source).exists(), f"the Dockerfile copies {source}, which the context lacks"
    assert "USER 10001" in dockerfile and "HEALTHCHECK" in dockerfile and "/v2/health/ready" in dockerfile
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in dockerfile
    requirements = (context / "requirements.txt").read_text().splitlines()
    assert requirements and all("==" in line for line in requirements)  # pinned
    manifest = json.loads((context / "package" / "manifest.json").read_text())
    assert (manifest["model"], manifest["version"]) == ("churn", 1)
    assert manifest["run_id"] and manifest["data_fingerprint"] and manifest["files_sha256"]
    assert "git_commit" in manifest

    from shipyard.service import Shipyard

    with Shipyard.open(shipped, actor="alice", env={}) as service:
        [event] = [e for e in service.audit_log() if e.action == "version.packaged"]
    assert event.subject == "churn/1" and event.details["package_sha256"] == summary["package_sha256"]

    python = fresh_venv(tmp_path / "venv")
    port = free_port()
    server = install_and_start(python, context, port)
    try:
        deadline = time.monotonic() + 120
        ready = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert ready is not None and ready.status_code == 200, server.stdout.read() if server.poll() is not None else ""
        served = httpx.get(f"http://127.0.0.1:{port}/v2/models/churn", timeout=5).json()
        assert served["versions"] == ["1"]
    finally:
        server.terminate()
        server.communicate(timeout=30)  # also closes its output pipe

    # A model file that differs from its recorded digest: the gateway refuses to start.
    model_file = next(p for p in (context / "package" / "model").rglob("*.skops"))
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    refused = install_and_start(python, context, free_port())
    output, _ = refused.communicate(timeout=120)
    assert refused.returncode != 0
    assert "churn/1" in output and model_file.name in output and "Traceback" not in output


def test_bad_input_writes_nothing(shipped: Path, tmp_path: Path) -> None:
    out = tmp_path / "bad"
    for args, expected in [(("nosuch", "1"), "nosuch"), (("churn", "9"), "no version 9"), (("churn",), "VERSION")]:
        result = run("--project", str(shipped), "--actor", "alice", "package", *args, "--out", str(out))
        assert result.exit_code != 0 and expected in result.stderr, result.output  # type: ignore[attr-defined]
        assert not out.exists()


def _build_dirs(checkout: Path) -> dict[str, float | None]:
    """The modification times of the folders setuptools builds in, in Shipyard's own source tree (None: absent)."""
    folders = [checkout / "build", *(checkout / "src").glob("*.egg-info")]
    return {str(f): (f.stat().st_mtime if f.exists() else None) for f in folders}


def test_the_project_package_holds_code_locked_requirements_and_shipyard(shipped: Path, tmp_path: Path) -> None:
    out = tmp_path / "project-ctx"
    checkout = Path(shipyard.__file__).resolve().parents[2]
    before = _build_dirs(checkout)
    result = run("--project", str(shipped), "package", "--project", "--out", str(out))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    # Shipyard's wheel is built from a copy: two builds from one checkout at once collided in its build/ folder.
    assert _build_dirs(checkout) == before
    dockerfile = (out / "Dockerfile").read_text()
    for source in copied_sources(dockerfile):
        assert (out / source).exists(), f"the Dockerfile copies {source}, which the context lacks"
    assert (out / "project" / "shipyard.yaml").is_file() and (out / "project" / "train.py").is_file()
    assert not (out / "project" / ".shipyard").exists()  # the store and model files stay out
    pins = (out / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("scikit-learn==") for line in pins) and not any(p.startswith("shipyard==") for p in pins)
    assert len(list((out / "wheels").glob("shipyard-*.whl"))) == 1
