"""The built wheel carries every file the package needs, and `shipyard init` works from it alone.

An editable install reads files straight from src/, so a file missing from the
wheel only shows up for users who `pip install shipyard`. This test builds the
wheel, installs it into a new virtual environment and runs the installed
`shipyard init` for every bundled example.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "shipyard"
EXAMPLES = PACKAGE / "examples"


def _run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd, check=False)
    assert done.returncode == 0, f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _clean_env() -> dict[str, str]:
    """The environment without anything that would put the development checkout on sys.path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _shipped_files() -> set[str]:
    """Every file under src/shipyard that is not Python bytecode, as its path inside the wheel."""
    return {
        path.relative_to(PACKAGE.parent).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    }


def _build_wheel(folder: Path) -> Path:
    """Build from a clean copy of the sources.

    A checkout's build/ and src/*.egg-info (its SOURCES.txt is read as a manifest)
    could put files into the wheel that pyproject.toml does not declare. pip's
    default build isolation fetches the build backend pyproject.toml names, as
    `pip install` from a source tree does.
    """
    source = folder / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, source / name)
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", folder, source, env=_clean_env(), cwd=folder)
    [wheel] = folder.glob("shipyard-*.whl")
    return wheel


def _venv_with_wheel(folder: Path, wheel: Path) -> Path:
    """A new environment holding the wheel, with this environment's dependencies importable behind it.

    The dependencies come from a .pth file naming this interpreter's site-packages
    folders. A folder named in a .pth file is put on sys.path as is: the .pth files
    inside it (among them the editable install's, which adds the checkout's src/)
    are not processed, so the checkout cannot shadow the installed wheel.
    """
    _run(sys.executable, "-m", "venv", "--without-pip", folder)
    python = folder / "bin" / "python"
    env = _clean_env()
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel, env=env)
    purelib = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", env=env).strip())
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()] or [sysconfig.get_path("purelib")]
    (purelib / "zz_shipyard_test_dependencies.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    return python


def test_wheel_ships_every_package_file_and_init_works_from_it(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = sorted(_shipped_files() - names)
    assert not missing, f"the wheel lacks {missing}; fix [tool.setuptools.package-data] in pyproject.toml"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")], "the wheel carries bytecode from the checkout"

    python = _venv_with_wheel(tmp_path / "venv", wheel)
    env = _clean_env()
    where = _run(python, "-c", "import shipyard, sys; print(shipyard.__file__); print(*sys.path, sep='\\n')", env=env).split("\n")
    assert Path(where[0]).is_relative_to(tmp_path / "venv"), f"shipyard imported from {where[0]}, not the installed wheel"
    assert str(ROOT / "src") not in where[1:], "the development checkout's src/ is on the installed environment's path"

    examples = sorted(p.name for p in EXAMPLES.iterdir() if (p / "template").is_dir())
    assert examples, "no bundled examples found"
    for example in examples:
        target = tmp_path / "projects" / example
        _run(python.parent / "shipyard", "--actor", "packager", "init", target, "--example", example, env=env, cwd=tmp_path)
        template = EXAMPLES / example / "template"
        for source in (p for p in template.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            relative = source.relative_to(template).as_posix()
            written = target / (".gitignore" if relative == "gitignore" else relative)
            assert written.is_file(), f"`shipyard init --example {example}` did not write {written.name}"
            expected = source.read_bytes()
            assert written.read_bytes()[: len(expected)] == expected, f"{written} differs from the bundled {relative}"
        data = {"churn_features": "labels"}.get(example, example)  # a feature store's entity file, or the data file
        assert (target / "data" / f"{data}.parquet").stat().st_size > 0
        assert "packager" in (target / "shipyard.yaml").read_text(encoding="utf-8")
        log = _run("git", "-C", target, "log", "--format=%s", env=env).split("\n")
        assert len([line for line in log if line]) == 1, log
