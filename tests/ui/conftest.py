"""The web UI's fixtures: a real control-plane server on a free loopback port over the trained churn project,
and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conftest import IN_CI
from server.conftest import Team, start_team

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")  # Debian's (apt-get install chromium); .ci/run installs it


@pytest.fixture
def team(trained_project: Path) -> Iterator[Team]:
    running = start_team(trained_project, env={})
    yield running
    running.server.stop()
    running.service.close()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "playwright is not installed (pip install -e '.[dev]')"
    if problem is None and not CHROMIUM.is_file():
        problem = f"{CHROMIUM} is missing (apt-get install chromium)"
    if problem is not None:
        if IN_CI:
            pytest.fail(problem + " (CI=true: the browser tests must run, not skip)")
        pytest.skip(problem)
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    problems: list[str] = []
    opened.on("console", lambda message: problems.append(message.text) if "Content Security Policy" in message.text else None)
    opened.on("pageerror", lambda error: problems.append(str(error)))
    yield opened
    context.close()
    assert not problems, f"the page reported script errors or policy violations: {problems}"


@pytest.fixture
def screenshot(tmp_path: Path) -> Any:
    """Save a full-page screenshot under the test's tmp_path, and into $SHIPYARD_SCREENSHOTS when it names a folder."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    extra = os.environ.get("SHIPYARD_SCREENSHOTS")

    def take(page: Page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000, f"the screenshot of {name} is nearly empty"
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(extra) / path.name)
        return path

    return take
