"""The real validators of exported objects: kubectl kustomize, promtool, the Prometheus Operator's CRD schemas."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

PROMOP = Path(__file__).parent / "promop"


def operator_validator() -> Path:
    """The Prometheus Operator validators from npm (installed here from the lockfile when missing; .ci/run does it too)."""
    if not (PROMOP / "node_modules").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=PROMOP, check=True, capture_output=True, timeout=600
        )
    return PROMOP / "validate.mjs"


def validate_operator_objects(objects: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    script = operator_validator()
    return subprocess.run(
        ["node", str(script)], input=json.dumps(objects), capture_output=True, text=True, cwd=PROMOP, timeout=120
    )


def kustomize(folder: Path) -> list[dict[str, Any]]:
    import yaml

    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl (with kustomize) is needed: the machine image ships it"
    built = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def promtool_check(rules: dict[str, Any], tmp: Path) -> subprocess.CompletedProcess[str]:
    import yaml

    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is needed: Debian's prometheus package (.ci/run installs it)"
    path = tmp / "rules.yaml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)


def promtool_test(rules: dict[str, Any], tests: list[dict[str, Any]], tmp: Path) -> subprocess.CompletedProcess[str]:
    """`promtool test rules`: ``tests`` (input series, expected alerts at given times) against ``rules``."""
    import yaml

    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is needed: Debian's prometheus package (.ci/run installs it)"
    (tmp / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    path = tmp / "rules_test.yaml"
    path.write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}, sort_keys=False))
    return subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60, cwd=tmp)
