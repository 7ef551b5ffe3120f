"""The web UI's fixtures: a real control-plane server on a free loopback port over the trained churn project."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.conftest import Team, start_team


@pytest.fixture
def team(trained_project: Path) -> Iterator[Team]:
    running = start_team(trained_project, env={})
    yield running
    running.server.stop()
    running.service.close()
