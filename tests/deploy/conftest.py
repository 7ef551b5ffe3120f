"""Fixtures for the cluster exports: a project with a champion, and the real validators of what it exports."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.service import Shipyard


def ship(root: Path, version: int) -> None:
    with Shipyard.open(root, actor="alice", env={}) as service:
        service.promote("churn", version, "staging", reason="ready")
    with Shipyard.open(root, actor="vera", env={}) as service:
        service.approve("churn", version, "production", comment="ok")
    with Shipyard.open(root, actor="rui", env={}) as service:
        service.promote("churn", version, "production", reason="ship")


@pytest.fixture
def shipped(trained_project: Path) -> Path:
    """v1 in production; v2 approved for production, waiting in staging."""
    ship(trained_project, 1)
    with Shipyard.open(trained_project, actor="alice", env={}) as service:
        service.promote("churn", 2, "staging", reason="ready")
    with Shipyard.open(trained_project, actor="vera", env={}) as service:
        service.approve("churn", 2, "production", comment="ok")
    return trained_project
