"""GitOps mode: a canary rollout and its promotion as commits in the watched repository; bad trees change nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from shipyard.domain.errors import Conflict, InvalidSpec
from shipyard.service import Shipyard


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    import os

    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env={**os.environ, **env})
    return done.stdout


def gitops_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "cluster-config"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("watched by Argo CD\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "start")
    return repo


def enable_gitops(root: Path, repo: Path) -> None:
    config = root / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["deploy"] = {"gitops": {"repo": str(repo), "path": "overlays/prod"}}
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def at(repo: Path, rev: str) -> dict:
    return yaml.safe_load(git(repo, "show", f"{rev}:overlays/prod/churn-inferenceservice.yaml"))


def test_a_canary_rollout_is_one_commit_per_step_then_the_promotion(shipped: Path, tmp_path: Path) -> None:
    repo = gitops_repo(tmp_path)
    enable_gitops(shipped, repo)
    with Shipyard.open(shipped, actor="rui", env={}) as service:
        service.start_rollout("churn", 2, steps=[25, 50, 100])
        # The controller's decisions after passing analyses, applied through the store as the worker applies them.
        for action in ("next", "next", "promote"):
            service.store.advance_rollout(actor="shipyard.monitor", model="churn", action=action)
        events = {e.action: e.seq for e in service.audit_log() if e.action.startswith("rollout.")}
        nexts = [e.seq for e in service.audit_log() if e.action == "rollout.next"]
    messages = git(repo, "log", "--format=%s").splitlines()[::-1][1:]  # oldest first, without the repository's own
    assert messages == [
        f"churn v2: rollout step 25% (audit event {events['rollout.started']})",
        f"churn v2: rollout step 50% (audit event {nexts[0]})",
        f"churn v2: rollout step 100% (audit event {nexts[1]})",
        f"churn v2: promoted to production after the rollout (audit event {events['rollout.promote']})",
    ]
    weights = [at(repo, f"HEAD~{n}")["spec"]["predictor"].get("canaryTrafficPercent") for n in (3, 2, 1, 0)]
    assert weights == [25, 50, 100, None]
    final = at(repo, "HEAD")
    assert final["spec"]["predictor"]["model"]["image"] == "churn-demo-churn:v2"
    assert final["metadata"]["annotations"]["shipyard.dev/champion"] == "2"
    authors = git(repo, "log", "--format=%an", "-4").split()
    assert authors == ["shipyard.monitor", "shipyard.monitor", "shipyard.monitor", "rui"]
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize("problem", ["dirty", "not a repository"])
def test_a_bad_tree_refuses_and_leaves_the_store_unchanged(shipped: Path, tmp_path: Path, problem: str) -> None:
    repo = gitops_repo(tmp_path)
    if problem == "dirty":
        (repo / "stray.yaml").write_text("kind: Stray\n")
        expected: type[Exception] = Conflict
    else:
        repo = tmp_path / "plain-folder"
        repo.mkdir()
        expected = InvalidSpec
    enable_gitops(shipped, repo)
    with Shipyard.open(shipped, actor="rui", env={}) as service:
        before = service.deployments()
        with pytest.raises(expected) as refused:
            service.start_rollout("churn", 2, steps=[25, 50, 100])
        assert str(repo) in refused.value.message
        assert service.rollout_status("churn")[0] is None
        assert service.deployments() == before
        assert not any(e.action == "rollout.started" for e in service.audit_log())
        with pytest.raises(expected):
            service.promote("churn", 2, "production", reason="ship")
        assert service.champion("churn").version == 1  # type: ignore[union-attr]
    if problem == "dirty":
        assert git(repo, "log", "--format=%s").splitlines() == ["start"]
        assert (repo / "stray.yaml").exists() and not (repo / "overlays").exists()
