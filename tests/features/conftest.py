"""A Redis key prefix per test, and a trained churn-features project."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def redis_project() -> Iterator[str]:
    """A Feast project name unique to the test (Redis keys are prefixed by it); its keys are deleted afterwards."""
    import redis

    name = f"shipyard_test_{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        for key in client.scan_iter(match=f"*{name}*"):  # Feast's Redis keys end with the project's name
            client.delete(key)
    finally:
        client.close()


@pytest.fixture(scope="session")
def features_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The churn-features example, scaffolded and trained once (version 1, a candidate)."""
    from conftest import PRINCIPALS, declare_principals
    from shipyard.scaffold import init_project
    from shipyard.service import Shipyard

    root = init_project(tmp_path_factory.mktemp("features") / "project", example="churn-features")
    declare_principals(root, PRINCIPALS)
    with Shipyard.open(root, actor="alice", env={}) as service:
        service.run_pipeline("churn")
    return root


@pytest.fixture
def features_project(features_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "project"
    shutil.copytree(features_template, target)
    return target
