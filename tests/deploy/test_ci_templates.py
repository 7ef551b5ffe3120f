"""`shipyard init --ci`: the GitHub Actions and GitLab CI templates against check-jsonschema's built-in schemas."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli import app

SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    return subprocess.run([tool, "--builtin-schema", schema, str(path)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("flavour", ["github", "gitlab", "jenkins"])
def test_ci_template_is_added_to_a_project(project: Path, flavour: str) -> None:
    result = CliRunner().invoke(app, ["init", str(project), "--ci", flavour])
    assert result.exit_code == 0, result.output
    path = {"github": ".github/workflows/shipyard.yml", "gitlab": ".gitlab-ci.yml", "jenkins": "Jenkinsfile"}[flavour]
    text = (project / path).read_text()
    assert len(list((project / "wheels").glob("shipyard-*.whl"))) == 1  # what the jobs install Shipyard from
    for command in ("shipyard pipeline run", "shipyard gate check", "--to staging", "evidence.json", "pytest"):
        assert command in text, command
    assert "--to production" not in text  # production stays behind its gate and approvals
    if flavour in SCHEMAS:
        checked = check_jsonschema(SCHEMAS[flavour], project / path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    again = CliRunner().invoke(app, ["init", str(project), "--ci", flavour])
    assert again.exit_code != 0 and "exists already" in again.stderr


def test_the_schema_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "workflow.yml"
    bad.write_text("name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps: nope\n")
    assert check_jsonschema(SCHEMAS["github"], bad).returncode != 0
    bad_gitlab = tmp_path / ".gitlab-ci.yml"
    bad_gitlab.write_text("job:\n  script: 3\n  when: sometimes\n")
    assert check_jsonschema(SCHEMAS["gitlab"], bad_gitlab).returncode != 0


def test_unknown_ci_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new"
    result = CliRunner().invoke(app, ["init", str(target), "--ci", "travis"])
    assert result.exit_code != 0 and "travis" in result.stderr and not target.exists()
