"""CI templates (`shipyard init --ci github|gitlab|jenkins`): install the project, run its tests, run the governed
pipeline, show the staging gate's report, keep the evidence, and on the main branch promote to staging.

Production stays behind its gate and approvals: no template promotes there. In team mode (SHIPYARD_URL and
SHIPYARD_TOKEN set as CI secrets) the jobs are clients of the server; Shipyard's own wheel is installed from
the project's wheels/ folder, since Shipyard is not on the package index.
"""

from __future__ import annotations

import json
from pathlib import Path

FLAVOURS = {"github": ".github/workflows/shipyard.yml", "gitlab": ".gitlab-ci.yml", "jenkins": "Jenkinsfile"}

INSTALL = (
    "python -m pip install --upgrade pip && "
    "if [ -f requirements.txt ]; then pip install -r requirements.txt; fi && pip install ./wheels/shipyard-*.whl"
)
TESTS = "if [ -d tests ]; then python -m pytest -q tests; else echo 'no tests/ folder'; fi"
# One shell script per model: train and register, gate report (kept even when blocked), evidence.
GOVERN = """\
set -eu
shipyard pipeline run "$MODEL" --json > pipeline.json
VERSION=$(python -c 'import json; print(json.load(open("pipeline.json"))["version"]["version"])')
echo "$VERSION" > version.txt
status=0
shipyard gate check "$MODEL" "$VERSION" --to staging --json > gate.json || status=$?
shipyard evidence show "$MODEL" "$VERSION" --json > evidence.json
cat gate.json
exit $status"""
PROMOTE = 'shipyard promote "$MODEL" "$(cat version.txt)" --to staging --reason "CI on the main branch, commit $COMMIT"'


def render(flavour: str, models: list[str]) -> tuple[str, str]:
    """(relative path, text) of the CI file for ``flavour``."""
    if flavour not in FLAVOURS:
        raise ValueError(flavour)
    return FLAVOURS[flavour], {"github": github, "gitlab": gitlab, "jenkins": jenkins}[flavour](models)


def _yaml(data: object) -> str:
    import yaml

    class Literal(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Literal.add_representer(str, text)
    Literal.ignore_aliases = lambda self, data: True  # type: ignore[method-assign]  # repeated lists stay written out
    return yaml.dump(data, Dumper=Literal, sort_keys=False, width=200)


def github(models: list[str]) -> str:
    summary = 'echo "### Staging gate: $MODEL v$(cat version.txt)" >> "$GITHUB_STEP_SUMMARY"\n'
    summary += 'printf \'```json\\n%s\\n```\\n\' "$(cat gate.json)" >> "$GITHUB_STEP_SUMMARY"'
    workflow = {
        "name": "shipyard",
        "on": {"push": {"branches": ["main"]}, "pull_request": {}},
        "permissions": {"contents": "read"},
        "jobs": {
            "govern": {
                "runs-on": "ubuntu-latest",
                "strategy": {"fail-fast": False, "matrix": {"model": models}},
                "env": {
                    "MODEL": "${{ matrix.model }}",
                    "COMMIT": "${{ github.sha }}",
                    "SHIPYARD_URL": "${{ vars.SHIPYARD_URL }}",
                    "SHIPYARD_TOKEN": "${{ secrets.SHIPYARD_TOKEN }}",
                },
                "steps": [
                    {"uses": "actions/checkout@v4"},
                    {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}},
                    {"name": "Install the project", "run": INSTALL},
                    {"name": "Run the project's tests", "run": TESTS},
                    {"name": "Governed pipeline and staging gate", "id": "govern", "run": GOVERN},
                    {"name": "Gate report as the job summary", "if": "always()", "run": summary},
                    {
                        "name": "Keep the evidence",
                        "if": "always()",
                        "uses": "actions/upload-artifact@v4",
                        "with": {"name": "shipyard-${{ matrix.model }}", "path": "pipeline.json\ngate.json\nevidence.json"},
                    },
                    {
                        "name": "Promote to staging (main branch only; production stays behind its gate and approvals)",
                        "if": "github.ref == 'refs/heads/main'",
                        "run": PROMOTE,
                    },
                ],
            }
        },
    }
    return _yaml(workflow)


def gitlab(models: list[str]) -> str:
    pipeline = {
        "stages": ["test", "govern", "promote"],
        "default": {"image": "python:3.11-slim", "before_script": [INSTALL]},
        "variables": {"COMMIT": "$CI_COMMIT_SHA"},
        "tests": {"stage": "test", "script": [TESTS]},
        "govern": {
            "stage": "govern",
            "parallel": {"matrix": [{"MODEL": models}]},
            "script": [GOVERN],
            "artifacts": {
                "when": "always",
                "expose_as": "shipyard evidence",
                "paths": ["pipeline.json", "gate.json", "evidence.json", "version.txt"],
            },
        },
        "promote-staging": {
            "stage": "promote",
            "parallel": {"matrix": [{"MODEL": models}]},
            "needs": [{"job": "govern", "artifacts": True, "parallel": {"matrix": [{"MODEL": models}]}}],
            "rules": [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}],
            "script": [PROMOTE],
        },
    }
    return "# Production stays behind its gate and approvals: this pipeline promotes to staging only.\n" + _yaml(pipeline)


def jenkins(models: list[str]) -> str:
    names = json.dumps(models)[1:-1].replace('"', "'")

    def sh(script: str) -> str:
        return "sh '''\n" + script.replace("\\", "\\\\").replace("'''", "") + "\n'''"

    def indent(text: str, spaces: int) -> str:
        return "\n".join((" " * spaces + line) if line else line for line in text.splitlines())

    return f"""// Production stays behind its gate and approvals: this pipeline promotes to staging only.
pipeline {{
    agent {{ docker {{ image 'python:3.11-slim' }} }}
    environment {{
        SHIPYARD_URL = credentials('shipyard-url')
        SHIPYARD_TOKEN = credentials('shipyard-token')
        COMMIT = "${{env.GIT_COMMIT}}"
    }}
    stages {{
        stage('Install') {{ steps {{
{indent(sh(INSTALL), 12)}
        }} }}
        stage('Tests') {{ steps {{
{indent(sh(TESTS), 12)}
        }} }}
        stage('Govern') {{ steps {{ script {{
            for (m in [{names}]) {{
                withEnv(["MODEL=${{m}}"]) {{
                    try {{
{indent(sh(GOVERN), 24)}
                    }} finally {{
                        sh 'mkdir -p "evidence/$MODEL" && cp ./*.json version.txt "evidence/$MODEL/" || true'
                        archiveArtifacts artifacts: "evidence/${{m}}/*", allowEmptyArchive: true
                    }}
                    if (env.BRANCH_NAME == 'main') {{
{indent(sh(PROMOTE), 24)}
                    }}
                }}
            }}
        }} }} }}
    }}
}}
"""


def add_ci(root: Path, flavour: str, models: list[str]) -> list[Path]:
    """Write the CI file for ``flavour`` into the project at ``root``, and Shipyard's wheel into wheels/."""
    from shipyard.deploy.package import shipyard_wheel
    from shipyard.domain.errors import Conflict, InvalidSpec

    if flavour not in FLAVOURS:
        raise InvalidSpec(f"unknown CI {flavour!r}; expected {', '.join(FLAVOURS)}")
    relative, text = render(flavour, models)
    path = root / relative
    if path.exists():
        raise Conflict(f"{path} exists already; nothing was written", hint="Remove or rename it to write the template.")
    wheel = shipyard_wheel(root / "wheels")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return [path, wheel]
