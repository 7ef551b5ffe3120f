"""A Git working tree that Argo CD or Flux watches: manifests written there as one commit per change.

Every write first checks the tree (a Git work tree, nothing uncommitted), so a commit holds exactly what
Shipyard wrote; a failure restores the tree and raises, naming the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shipyard.deploy.files import render
from shipyard.domain.errors import BackendUnavailable, Conflict, InvalidSpec


class GitOpsRepo:
    def __init__(self, root: Path, path: str) -> None:
        self.root = root
        self.path = path

    def _git(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        if shutil.which("git") is None:
            raise BackendUnavailable("git is not installed, so the GitOps repository cannot be written")
        return subprocess.run(
            ["git", "-C", str(self.root), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env={**os.environ, **(env or {})},
        )

    def check(self) -> str:
        """The HEAD commit of a clean work tree; else a clear error naming the repository."""
        hint = "Set deploy.gitops.repo in shipyard.yaml to a clone of the repository Argo CD or Flux watches."
        if not self.root.is_dir():
            raise InvalidSpec(f"GitOps repository {self.root} does not exist", hint=hint)
        inside = self._git("rev-parse", "--show-toplevel")
        if inside.returncode != 0 or Path(inside.stdout.strip()).resolve() != self.root.resolve():
            raise InvalidSpec(f"GitOps repository {self.root} is not the top of a Git work tree", hint=hint)
        head = self._git("rev-parse", "--verify", "-q", "HEAD")
        if head.returncode != 0:
            raise InvalidSpec(
                f"GitOps repository {self.root} has no commit yet", hint="Make a first commit there, then try again."
            )
        status = self._git("status", "--porcelain", "--untracked-files=all")
        if status.returncode != 0 or status.stdout.strip():
            changed = ", ".join(line[3:] for line in status.stdout.splitlines()[:5])
            raise Conflict(
                f"GitOps repository {self.root} has uncommitted changes ({changed}); nothing was changed",
                hint="Commit or discard them there (git status shows them), then try again.",
            )
        return head.stdout.strip()

    def commit(self, files: dict[str, Any], remove: list[str], message: str, *, author: str) -> Callable[[], None]:
        """Write ``files`` under the configured path, delete ``remove``, commit; return how to undo the commit."""
        before = self.check()
        folder = self.root / self.path
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, content in files.items():
                (folder / name).write_text(render(content), encoding="utf-8")
            for name in remove:
                (folder / name).unlink(missing_ok=True)
            self._run("add", "-A", "--", self.path)
            env = {
                "GIT_AUTHOR_NAME": author,
                "GIT_AUTHOR_EMAIL": f"{author}@shipyard.invalid",
                "GIT_COMMITTER_NAME": "Shipyard",
                "GIT_COMMITTER_EMAIL": "shipyard@shipyard.invalid",
            }
            self._run("commit", "-q", "--allow-empty", "-m", message, env=env)
        except BaseException:
            self._restore(before)
            raise
        return lambda: self._restore(before)

    def _run(self, *args: str, env: dict[str, str] | None = None) -> None:
        done = self._git(*args, env=env)
        if done.returncode != 0:
            raise BackendUnavailable(
                f"GitOps repository {self.root}: git {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}"
            )

    def _restore(self, head: str) -> None:
        """Back to ``head`` (the tree was clean before the write, so nothing of anyone else's is lost)."""
        self._git("reset", "-q", "--hard", head)
        self._git("clean", "-q", "-fd", "--", self.path)

    def log(self) -> list[str]:
        done = self._git("log", "--format=%s")
        return done.stdout.splitlines() if done.returncode == 0 else []
