"""Container build contexts: one registered version served by `shipyard serve --package`, or the project itself.

Shipyard is not on the package index, so its own wheel goes into the context (built from its source tree).
The model files travel with the sha256 digests recorded at registration; the gateway checks them before it
serves and refuses to start on a mismatch.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shipyard.domain.errors import BackendUnavailable, InvalidSpec

MANIFEST = "package/manifest.json"
MODEL_DIR = "package/model"
BASE_IMAGE = "python:3.11-slim"
PORT = 8080

VERSION_DOCKERFILE = """\
# syntax=docker/dockerfile:1
# Serves {model} version {version} (Open Inference Protocol); built by `shipyard package`.
ARG PYTHON_IMAGE={base}
FROM ${{PYTHON_IMAGE}}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 shipyard
WORKDIR /app
COPY requirements.txt ./
COPY wheels/ ./wheels/
RUN pip install --no-cache-dir -r requirements.txt ./wheels/*.whl
COPY package/ ./package/
USER 10001
EXPOSE {port}
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \\
  CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:{port}/v2/health/ready', timeout=3)"
ENTRYPOINT ["shipyard"]
CMD ["serve", "--package", "/app/package", "--host", "0.0.0.0", "--port", "{port}", "--no-worker", "--no-auth"]
"""

PROJECT_DOCKERFILE = """\
# syntax=docker/dockerfile:1
# The project {project}: its code, locked requirements and Shipyard, for the pipeline's steps, the worker and
# `shipyard serve` following the shared store; built by `shipyard package --project`.
ARG PYTHON_IMAGE={base}
FROM ${{PYTHON_IMAGE}}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 PIP_DISABLE_PIP_VERSION_CHECK=1 SHIPYARD_PROJECT=/app
RUN useradd --create-home --uid 10001 shipyard
WORKDIR /app
COPY requirements.txt ./
COPY wheels/ ./wheels/
RUN pip install --no-cache-dir -r requirements.txt ./wheels/*.whl
COPY project/ ./
RUN chown -R 10001 /app
USER 10001
EXPOSE {port}
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \\
  CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:{port}/v2/health/ready', timeout=3)"
ENTRYPOINT ["shipyard"]
CMD ["serve", "--host", "0.0.0.0", "--port", "{port}", "--no-worker"]
"""


def shipyard_wheel(dest: Path) -> Path:
    """Build Shipyard's wheel from the source tree it runs from (no dependencies, no network)."""
    import shipyard

    root = Path(shipyard.__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise BackendUnavailable(
            f"Shipyard runs from {Path(shipyard.__file__).parent}, not from a source tree, so its wheel cannot be built",
            hint="Run `shipyard package` from a Shipyard installed from its source (pip install -e).",
        )
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shipyard-wheel-") as tmp:
        # From a copy: setuptools builds in the source tree (build/, src/*.egg-info), so two builds from one
        # checkout at once collide, and a stale build/ could slip files pyproject.toml does not declare into it.
        source = Path(tmp) / "source"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        shutil.copytree(root / "src", source / "src", ignore=ignore)
        for name in ("pyproject.toml", "README.md"):
            if (root / name).is_file():
                shutil.copyfile(root / name, source / name)
        built = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", tmp, str(source)],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        wheels = list(Path(tmp).glob("shipyard-*.whl"))
        if built.returncode != 0 or len(wheels) != 1:
            raise BackendUnavailable(f"building Shipyard's wheel failed: {built.stderr.strip()[-500:]}")
        target = dest / wheels[0].name
        target.write_bytes(wheels[0].read_bytes())
    return target


def model_requirements(model_dir: Path) -> str:
    """The version's pinned requirements, as MLflow recorded them beside the model."""
    path = model_dir / "requirements.txt"
    if not path.is_file():
        raise InvalidSpec(f"the model files have no requirements.txt, so its requirements cannot be pinned ({model_dir})")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return "\n".join(line for line in lines if line and not line.startswith("#")) + "\n"


def locked_requirements(project: Path) -> str:
    """The project's own lock file when it has one, else every distribution installed here, pinned."""
    for name in ("requirements.lock", "requirements.txt"):
        if (project / name).is_file():
            return (project / name).read_text(encoding="utf-8")
    from importlib import metadata

    pins = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        direct = dist.read_text("direct_url.json") or ""
        if not name or name.lower() == "shipyard" or '"editable": true' in direct or '"url": "file:' in direct:
            continue
        pins[name.lower()] = f"{name}=={dist.version}"
    return "\n".join(pins[key] for key in sorted(pins)) + "\n"


def manifest(version: Any, files: dict[str, str], evidence: dict[str, Any] | None) -> dict[str, Any]:
    """What the package holds: the version, its run, data and commit, and each model file's sha256."""
    from shipyard import __version__

    return {
        "model": version.model,
        "version": version.version,
        "run_id": version.run_id,
        "data_uri": version.data_uri,
        "data_fingerprint": version.data_fingerprint,
        "git_commit": version.git_commit,
        "metrics": version.metrics,
        "registered_by": version.registered_by,
        "registered_at": version.registered_at.isoformat(),
        "files_sha256": files,
        "serving_equivalence": (evidence or {}).get("serving_equivalence"),
        "shipyard_version": __version__,
    }


def copied_sources(dockerfile: str) -> list[str]:
    """Every source path a Dockerfile's COPY instructions name (flags dropped)."""
    sources = []
    for line in dockerfile.splitlines():
        words = line.split()
        if words and words[0].upper() == "COPY":
            args = [w for w in words[1:] if not w.startswith("--")]
            sources.extend(args[:-1])
    return sources


def context_digest(out: Path, paths: Iterable[Path]) -> str:
    """One sha256 over every file of the context, by relative path: what the package is."""
    from shipyard.data import sha256_file

    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.relative_to(out).as_posix()):
        digest.update(f"{path.relative_to(out).as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())
