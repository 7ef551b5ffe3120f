"""`shipyard init`: lay out a new project from a bundled example, or from one's own data (``from_data``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.domain.errors import Conflict, InvalidSpec

EXAMPLES = Path(__file__).parent.parent / "examples"
EXAMPLE = EXAMPLES / "churn"
KNOWN = ("churn", "arrests", "churn-features", "abalone", "penguins")


@dataclass(frozen=True, slots=True, kw_only=True)
class Created:
    """A new project: its folder, its model, and what the scaffold decided that its user should check."""

    root: Path
    model: str
    notes: list[str] = field(default_factory=list)


def start_project(
    directory: Path,
    *,
    example: str | None = None,
    from_data: Path | None = None,
    target: str | None = None,
    time_column: str | None = None,
    id_column: str | None = None,
    sensitive: Sequence[str] = (),
    model: str | None = None,
    force: bool = False,
    git: bool = True,
    actor: str | None = None,
) -> Created:
    """`shipyard init`: a bundled example (churn by default), or a project around ``from_data``."""
    if from_data is None:
        given = {
            "--target": target,
            "--time-column": time_column,
            "--id-column": id_column,
            "--sensitive": sensitive,
            "--model": model,
        }
        stray = [option for option, value in given.items() if value]
        if stray:
            raise InvalidSpec(
                f"{', '.join(stray)} {'applies' if len(stray) == 1 else 'apply'} only with --from-data FILE",
                hint="Add --from-data FILE to start from your own data, or drop those options to start from an example.",
            )
        name = example or "churn"
        return Created(root=init_project(directory, force=force, git=git, example=name, actor=actor), model=name)
    if example is not None:
        raise InvalidSpec(
            "--example and --from-data are alternatives: a project starts from a bundled example or from your data",
            hint="Pass one of them.",
        )
    if not target:
        raise InvalidSpec(
            "--from-data needs --target COLUMN: the column the model predicts",
            hint=f"For example: shipyard init {directory} --from-data {from_data} --target churned",
        )
    from shipyard.scaffold.from_data import init_from_data

    return init_from_data(
        directory,
        from_data,
        target=target,
        time_column=time_column,
        id_column=id_column,
        sensitive=sensitive,
        model=model,
        force=force,
        git=git,
        actor=actor,
    )


def init_project(
    target: Path, *, force: bool = False, git: bool = True, example: str = "churn", actor: str | None = None
) -> Path:
    """Write shipyard.yaml, train.py, the policy and the example's data into ``target``.

    ``actor`` (whoever runs init) is added to the principals as a scientist and deployer.
    """
    example = example.replace("_", "-")  # the folder's name (churn_features) names its example too
    if example not in KNOWN:
        raise InvalidSpec(f"unknown example {example!r}; expected one of: {', '.join(KNOWN)}")
    target = check_folder(target, force=force)
    template = EXAMPLES / example.replace("-", "_") / "template"
    target.mkdir(parents=True, exist_ok=True)
    for source in template.rglob("*"):
        if source.is_dir() or "__pycache__" in source.parts:
            continue
        relative = source.relative_to(template)
        name = ".gitignore" if relative.as_posix() == "gitignore" else relative.as_posix()
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    (target / "data").mkdir(exist_ok=True)
    if example == "churn":
        shutil.copyfile(EXAMPLE / "churn.parquet", target / "data" / "churn.parquet")
    elif example == "churn-features":
        from shipyard.examples.churn_features import write_data as write_features
        from shipyard.features import apply

        write_features(target, EXAMPLE / "churn.parquet")
        apply(target / "feature_repo")  # registers the feature views, so the project trains straight away
    else:
        import importlib

        # Real data that a package ships (scikit-lego), written into the project: no download.
        write_data = importlib.import_module(f"shipyard.examples.{example}").write_data
        write_data(target / "data" / f"{example}.parquet")
    if actor:
        _add_principal(target / "shipyard.yaml", actor)
    if git:
        commit_all(target, f"Start a Shipyard project from the {example} example")
    return target


def check_folder(target: Path, *, force: bool) -> Path:
    """The resolved folder to write a project into; an existing, non-empty one only with ``force``."""
    target = target.resolve()
    if target.exists() and not target.is_dir():
        raise Conflict(f"{target} exists and is not a folder", hint="Pick a new folder for the project.")
    if target.exists() and any(target.iterdir()) and not force:
        raise Conflict(
            f"{target} already exists and is not empty",
            hint="Pick a new folder, or pass --force to overwrite Shipyard's files in it.",
        )
    return target


def _add_principal(config: Path, actor: str) -> None:
    import yaml

    text = config.read_text(encoding="utf-8")
    principals = (yaml.safe_load(text) or {}).get("principals") or {}
    if actor not in principals:
        config.write_text(text.rstrip() + f"\n  {json.dumps(actor)}: [scientist, deployer]\n", encoding="utf-8")


def commit_all(folder: Path, message: str) -> str | None:
    """Commit everything in ``folder`` (initialising a repository); None when git is missing."""
    if shutil.which("git") is None:
        return None
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Shipyard",
        "GIT_AUTHOR_EMAIL": "shipyard@localhost",
        "GIT_COMMITTER_NAME": "Shipyard",
        "GIT_COMMITTER_EMAIL": "shipyard@localhost",
    }

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, env=env, check=False)

    if not (folder / ".git").exists() and git("init", "-q", "-b", "main").returncode != 0:
        return None
    git("add", "-A")
    if git("commit", "-q", "-m", message).returncode != 0:
        return None
    head = git("rev-parse", "HEAD")
    return head.stdout.strip() if head.returncode == 0 else None
